// Command brokerctl is an operator's command line over the broker's admin API: pool
// counts, listings, one sandbox's history, job runs and the repairs (retry a deletion,
// delete stale records). It needs the API's URL and an admin token, and uses nothing but
// the API, so it works the same against AWS and the local stack.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the API refused, could not be reached, or a waited-for run failed
	exitUsage = 2
)

const usage = `Usage: brokerctl [flags] COMMAND [ARGS] [flags]

Commands:
  stats                            counts per status, available sandboxes per name prefix
  list [--status S] [--prefix P] [--limit N] [--max N]
                                   sandboxes, following the cursor to the end (or --max)
  show ID                          one sandbox and its history, newest first
  sync [--wait]                    start a sync run now; --wait waits for its outcome
                                   (polling every --interval, default 1s, for at most
                                   --wait-timeout, default 15m)
  cleanup [--wait]                 start a cleanup run now; --wait as for sync
  jobs NAME [--limit N]            the last runs of a job (sync, cleanup, expiry, ...)
  retry ID                         give a deletion_failed sandbox back to cleanup
  delete-stale [--grace-hours N]   delete the records of sandboxes stale for N hours (default 24)
  bulk-delete --status S           delete the records of every stale or deletion_failed sandbox

Flags (before or after the command):
  --url URL       the API, e.g. http://127.0.0.1:8080 (default $BROKER_URL)
  --token TOKEN   an admin token (default $BROKER_ADMIN_TOKEN; prefer the variable: a
                  flag is visible to other users in the process list)
  --json          print the API's JSON instead of tables
  --timeout D     timeout of each request (default 30s)

Exit status: 0 done, 1 the API refused or could not be reached (or a waited-for run
failed), 2 usage error.
`

// options are the flags every command takes.
type options struct {
	url, token string
	json       bool
	timeout    time.Duration
}

func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.url, "url", o.url, "")
	fs.StringVar(&o.token, "token", o.token, "")
	fs.BoolVar(&o.json, "json", o.json, "")
	fs.DurationVar(&o.timeout, "timeout", o.timeout, "")
}

// command is one subcommand: the names of its positional arguments, and setup, which
// registers its own flags and returns what it does.
type command struct {
	args  []string
	setup func(fs *flag.FlagSet) func(ctx context.Context, x *invocation) error
}

// invocation is one run of a command.
type invocation struct {
	c      *client
	opts   options
	args   []string
	stdout io.Writer
}

var commands = map[string]command{
	"stats":        {setup: statsCmd},
	"list":         {setup: listCmd},
	"show":         {args: []string{"ID"}, setup: showCmd},
	"sync":         {setup: triggerCmd("sync")},
	"cleanup":      {setup: triggerCmd("cleanup")},
	"jobs":         {args: []string{"NAME"}, setup: jobsCmd},
	"retry":        {args: []string{"ID"}, setup: retryCmd},
	"delete-stale": {setup: deleteStaleCmd},
	"bulk-delete":  {setup: bulkDeleteCmd},
}

// run is brokerctl with its arguments, environment and output passed in; it returns the
// exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	opts := options{url: getenv("BROKER_URL"), token: getenv("BROKER_ADMIN_TOKEN"), timeout: 30 * time.Second}
	global := flag.NewFlagSet("brokerctl", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	opts.register(global)
	if err := global.Parse(args); err != nil {
		return usageError(stdout, stderr, err)
	}
	if global.NArg() == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	name := global.Arg(0)
	cmd, ok := commands[name]
	if !ok {
		return usageError(stdout, stderr, fmt.Errorf("unknown command %q", name))
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	opts.register(fs)
	do := cmd.setup(fs)
	positional, err := parseInterleaved(fs, global.Args()[1:])
	if err != nil {
		return usageError(stdout, stderr, err)
	}
	if len(positional) != len(cmd.args) {
		want := "no arguments"
		if len(cmd.args) > 0 {
			want = strings.Join(cmd.args, " ")
		}
		return usageError(stdout, stderr, fmt.Errorf("%s takes %s", name, want))
	}
	switch {
	case opts.url == "":
		fmt.Fprintln(stderr, "brokerctl: no API URL: pass --url or set BROKER_URL")
		return exitUsage
	case opts.token == "":
		fmt.Fprintln(stderr, "brokerctl: no admin token: set BROKER_ADMIN_TOKEN or pass --token")
		return exitUsage
	}
	c, err := newClient(opts.url, opts.token, &http.Client{Timeout: opts.timeout})
	if err != nil {
		fmt.Fprintln(stderr, "brokerctl:", err)
		return exitUsage
	}
	if err := do(ctx, &invocation{c: c, opts: opts, args: positional, stdout: stdout}); err != nil {
		var u usageErr
		if errors.As(err, &u) {
			return usageError(stdout, stderr, err)
		}
		fmt.Fprintln(stderr, "brokerctl:", err)
		return exitError
	}
	return exitOK
}

// usageErr is a command's complaint about its flags.
type usageErr struct{ error }

// usageError prints the usage for -h (on stdout, exit 0) and a one-line complaint for
// anything else (on stderr, exit 2).
func usageError(stdout, stderr io.Writer, err error) int {
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	fmt.Fprintf(stderr, "brokerctl: %v (brokerctl -h for help)\n", err)
	return exitUsage
}

// parseInterleaved parses flags that may come before, between or after the positional
// arguments ("show 3000001 --json").
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func statsCmd(*flag.FlagSet) func(context.Context, *invocation) error {
	return func(ctx context.Context, x *invocation) error {
		st, body, err := get[map[string]json.RawMessage](ctx, x.c, "GET", "/v1/admin/stats", nil)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		var byPrefix map[string]int
		if err := json.Unmarshal(st["available_by_prefix"], &byPrefix); err != nil {
			return fmt.Errorf("stats: available_by_prefix: %w", err)
		}
		return x.table(func(w io.Writer) {
			fmt.Fprintln(w, "STATUS\tCOUNT")
			for _, s := range append(slices.Clone(wire.Statuses), "total") {
				fmt.Fprintf(w, "%s\t%s\n", s, st[s])
			}
			fmt.Fprintln(w)
			fmt.Fprintln(w, "PREFIX\tAVAILABLE")
			for _, p := range slices.Sorted(maps.Keys(byPrefix)) {
				fmt.Fprintf(w, "%s\t%d\n", p, byPrefix[p])
			}
		})
	}
}

func listCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	status := fs.String("status", "", "")
	prefix := fs.String("prefix", "", "")
	limit := fs.Int("limit", 100, "")
	maxCount := fs.Int("max", 0, "")
	return func(ctx context.Context, x *invocation) error {
		if *limit < 1 || *limit > 100 || *maxCount < 0 {
			return usageErr{errors.New("list: --limit is a page size from 1 to 100, --max a count (0: all)")}
		}
		var all []json.RawMessage
		var cursor *string
		for {
			q := url.Values{"limit": {strconv.Itoa(*limit)}}
			if *maxCount > 0 {
				q.Set("limit", strconv.Itoa(min(*limit, *maxCount-len(all))))
			}
			for k, v := range map[string]string{"status": *status, "prefix": *prefix} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if cursor != nil {
				q.Set("cursor", *cursor)
			}
			page, _, err := get[struct {
				Sandboxes []json.RawMessage `json:"sandboxes"`
				Cursor    *string           `json:"cursor"`
			}](ctx, x.c, "GET", "/v1/admin/sandboxes", q)
			if err != nil {
				return err
			}
			all, cursor = append(all, page.Sandboxes...), page.Cursor
			if cursor == nil || (*maxCount > 0 && len(all) >= *maxCount) {
				break
			}
		}
		if x.opts.json {
			body, err := json.Marshal(map[string]any{"sandboxes": all, "count": len(all), "cursor": cursor})
			return x.printJSON(body, err)
		}
		err := x.table(func(w io.Writer) {
			fmt.Fprintln(w, "SANDBOX_ID\tNAME\tSTATUS\tOWNER\tALLOCATED\tEXPIRES\tATTEMPTS\tUPDATED")
			for _, raw := range all {
				var s wire.Sandbox
				_ = json.Unmarshal(raw, &s) // the page decoded above; a missing field shows as "-"
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", s.SandboxID, s.Name, s.Status, text(s.AllocatedToTrack),
					unix(s.AllocatedAt), unix(s.ExpiresAt), s.Attempts, unix(s.UpdatedAt))
			}
		})
		if err != nil {
			return err
		}
		more := ""
		if cursor != nil {
			more = fmt.Sprintf(" (stopped at --max %d; more match)", *maxCount)
		}
		fmt.Fprintf(x.stdout, "%d sandboxes%s\n", len(all), more)
		return nil
	}
}

func showCmd(*flag.FlagSet) func(context.Context, *invocation) error {
	return func(ctx context.Context, x *invocation) error {
		d, body, err := get[struct {
			Sandbox *wire.Sandbox       `json:"sandbox"`
			History []wire.HistoryEntry `json:"history"`
		}](ctx, x.c, "GET", "/v1/admin/sandboxes/"+url.PathEscape(x.args[0]), nil)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		return x.table(func(w io.Writer) {
			if s := d.Sandbox; s == nil {
				fmt.Fprintf(w, "sandbox %s is deleted; its history is kept until the history TTL\n", x.args[0])
			} else {
				for _, f := range [][2]string{
					{"sandbox_id", s.SandboxID}, {"name", s.Name}, {"status", s.Status}, {"external_id", s.ExternalID},
					{"sfdc_account_id", text(s.SFDCAccountID)}, {"owner", text(s.AllocatedToTrack)}, {"idempotency_key", text(s.IdempotencyKey)},
					{"track_name", text(s.TrackName)}, {"client", text(s.Client)}, {"allocated_at", unix(s.AllocatedAt)},
					{"expires_at", unix(s.ExpiresAt)}, {"deletion_requested_at", unix(s.DeletionRequestedAt)},
					{"attempts", strconv.Itoa(s.Attempts)}, {"next_attempt_at", unix(s.NextAttemptAt)}, {"last_error", text(s.LastError)},
					{"missed_syncs", strconv.Itoa(s.MissedSyncs)}, {"stale_since", unix(s.StaleSince)}, {"last_synced", unix(s.LastSynced)},
					{"created_at", unix(s.CreatedAt)}, {"updated_at", unix(s.UpdatedAt)},
				} {
					fmt.Fprintf(w, "%s\t%s\n", f[0], f[1])
				}
			}
			fmt.Fprintln(w, "\nHISTORY (newest first)")
			fmt.Fprintln(w, "AT\tFROM\tTO\tBY\tREASON\tREQUEST_ID")
			for _, h := range d.History {
				by := text(h.ActorKind)
				if h.Actor != nil {
					by += " " + *h.Actor
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", h.At, text(h.From), text(h.To), by, text(h.Reason), text(h.RequestID))
			}
		})
	}
}

func triggerCmd(job string) func(*flag.FlagSet) func(context.Context, *invocation) error {
	return func(fs *flag.FlagSet) func(context.Context, *invocation) error {
		wait := fs.Bool("wait", false, "")
		waitFor := fs.Duration("wait-timeout", 15*time.Minute, "")
		interval := fs.Duration("interval", time.Second, "")
		return func(ctx context.Context, x *invocation) error {
			started, body, err := get[struct {
				RunID string `json:"run_id"`
			}](ctx, x.c, "POST", "/v1/admin/"+job, nil)
			if err != nil {
				return err
			}
			if !*wait {
				if x.opts.json {
					return x.printJSON(body, nil)
				}
				fmt.Fprintf(x.stdout, "%s started: run %s (brokerctl jobs %s shows it when it ends)\n", job, started.RunID, job)
				return nil
			}
			if !x.opts.json {
				fmt.Fprintf(x.stdout, "%s started: run %s; waiting for it to end ...\n", job, started.RunID)
			}
			run, raw, err := waitForRun(ctx, x.c, job, started.RunID, *waitFor, *interval)
			if err != nil {
				return err
			}
			if x.opts.json {
				if err := x.printJSON(raw, nil); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(x.stdout, "run %s: %s in %d ms (%s)%s\n", run.RunID, run.Outcome, run.DurationMS, counts(run.Counts), because(run))
			}
			if run.Outcome == "failed" {
				return fmt.Errorf("run %s of %s failed", run.RunID, job)
			}
			return nil
		}
	}
}

// waitForRun polls the job's runs until runID shows: a run records itself when it ends.
func waitForRun(ctx context.Context, c *client, job, runID string, timeout, interval time.Duration) (wire.JobRun, []byte, error) {
	deadline := time.Now().Add(timeout)
	for {
		runs, _, err := get[struct {
			Runs []json.RawMessage `json:"runs"`
		}](ctx, c, "GET", "/v1/admin/jobs/"+url.PathEscape(job), url.Values{"limit": {"20"}})
		if err != nil {
			return wire.JobRun{}, nil, err
		}
		for _, raw := range runs.Runs {
			var r wire.JobRun
			if json.Unmarshal(raw, &r) == nil && r.RunID == runID {
				return r, raw, nil
			}
		}
		if time.Now().Add(interval).After(deadline) {
			return wire.JobRun{}, nil, fmt.Errorf("run %s of %s did not end within %s; brokerctl jobs %s shows it when it does", runID, job, timeout, job)
		}
		select {
		case <-ctx.Done():
			return wire.JobRun{}, nil, ctx.Err()
		case <-time.After(interval):
		}
	}
}

func jobsCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	limit := fs.Int("limit", 20, "")
	return func(ctx context.Context, x *invocation) error {
		runs, body, err := get[struct {
			Runs []wire.JobRun `json:"runs"`
		}](ctx, x.c, "GET", "/v1/admin/jobs/"+url.PathEscape(x.args[0]), url.Values{"limit": {strconv.Itoa(*limit)}})
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		return x.table(func(w io.Writer) {
			fmt.Fprintln(w, "RUN_ID\tSTARTED\tDURATION_MS\tOUTCOME\tCOUNTS\tREASON")
			for _, r := range runs.Runs {
				reason := strings.TrimPrefix(because(r), "; ")
				if reason == "" {
					reason = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%d\t%s\t%s\t%s\n", r.RunID, r.StartedAt, r.DurationMS, r.Outcome, counts(r.Counts), reason)
			}
		})
	}
}

func retryCmd(*flag.FlagSet) func(context.Context, *invocation) error {
	return func(ctx context.Context, x *invocation) error {
		s, body, err := get[wire.Sandbox](ctx, x.c, "POST", "/v1/admin/sandboxes/"+url.PathEscape(x.args[0])+"/retry-deletion", nil)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		fmt.Fprintf(x.stdout, "sandbox %s (%s) is %s again, attempts reset; cleanup deletes it on its next run (last error: %s)\n",
			s.SandboxID, s.Name, s.Status, text(s.LastError))
		return nil
	}
}

func deleteStaleCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	hours := fs.Int("grace-hours", 24, "")
	return func(ctx context.Context, x *invocation) error {
		res, body, err := get[wire.Bulk](ctx, x.c, "POST", "/v1/admin/auto-delete-stale", url.Values{"grace_period_hours": {strconv.Itoa(*hours)}})
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		fmt.Fprintf(x.stdout, "%s: deleted %d stale records (stale for %d h or more), skipped %d, in %d ms%s\n",
			res.Status, res.Deleted, res.GracePeriodHours, res.Skipped, res.DurationMS, partial(res))
		return nil
	}
}

func bulkDeleteCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	status := fs.String("status", "", "")
	return func(ctx context.Context, x *invocation) error {
		if *status == "" {
			return usageErr{errors.New("bulk-delete needs --status stale or --status deletion_failed")}
		}
		res, body, err := get[wire.Bulk](ctx, x.c, "POST", "/v1/admin/bulk-delete", url.Values{"status": {*status}})
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		fmt.Fprintf(x.stdout, "%s: deleted %d %s records (no CSP call), skipped %d, in %d ms%s\n",
			res.Status, res.Deleted, *status, res.Skipped, res.DurationMS, partial(res))
		return nil
	}
}

// printJSON prints an answer for --json, or passes err on.
func (x *invocation) printJSON(body []byte, err error) error {
	if err != nil {
		return err
	}
	_, err = x.stdout.Write(indented(body))
	return err
}

// table writes aligned columns (tab-separated cells).
func (x *invocation) table(fill func(w io.Writer)) error {
	w := tabwriter.NewWriter(x.stdout, 0, 0, 2, ' ', 0)
	fill(w)
	return w.Flush()
}

func text(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return *s
}

func unix(t *int64) string {
	if t == nil {
		return "-"
	}
	return time.Unix(*t, 0).UTC().Format(time.RFC3339)
}

func counts(c map[string]int) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, c[k]))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func because(r wire.JobRun) string {
	var s string
	if r.Reason != nil {
		s += "; " + *r.Reason
	}
	if r.Alarm != nil {
		s += "; alarm " + *r.Alarm
	}
	return s
}

func partial(res wire.Bulk) string {
	if res.Status == "partial" {
		return "; more are left: run it again"
	}
	return ""
}
