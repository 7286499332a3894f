package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
)

// The commands: each decodes the API's answer into its pkg/api/wire type and prints it
// as a table (output.go) or, with --json, as the API wrote it.

func statsCmd(*flag.FlagSet) func(context.Context, *invocation) error {
	return func(ctx context.Context, x *invocation) error {
		st, body, err := get[wire.Stats](ctx, x.c, "GET", "/v1/admin/stats", nil)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		return x.table(func(w io.Writer) {
			fmt.Fprintln(w, "STATUS\tCOUNT")
			for _, s := range append(slices.Clone(wire.Statuses), "total") {
				fmt.Fprintf(w, "%s\t%d\n", s, st.CountOf(s))
			}
			fmt.Fprintln(w)
			fmt.Fprintf(w, "oldest pending deletion\t%s\n", pendingAge(st.OldestPendingDeletionAt, time.Now()))
			fmt.Fprintln(w)
			fmt.Fprintln(w, "PREFIX\tAVAILABLE")
			for _, p := range slices.Sorted(maps.Keys(st.AvailableByPrefix)) {
				fmt.Fprintf(w, "%s\t%d\n", p, st.AvailableByPrefix[p])
			}
			for _, d := range st.Drains {
				fmt.Fprintf(w, "\nDRAINING\t%q since %s: %s\n", d.Prefix, time.Unix(d.Since, 0).UTC().Format(time.RFC3339), text(d.Reason))
			}
		})
	}
}

// pendingAge says when the oldest pending deletion was requested and how long ago.
func pendingAge(at *int64, now time.Time) string {
	if at == nil {
		return "none"
	}
	t := time.Unix(*at, 0)
	return fmt.Sprintf("%s (%s ago)", unix(at), now.Sub(t).Truncate(time.Second))
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
		var all []wire.Sandbox
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
			page, _, err := get[wire.SandboxList](ctx, x.c, "GET", "/v1/admin/sandboxes", q)
			if err != nil {
				return err
			}
			all, cursor = append(all, page.Sandboxes...), page.Cursor
			if cursor == nil || (*maxCount > 0 && len(all) >= *maxCount) {
				break
			}
		}
		if x.opts.json {
			body, err := json.Marshal(wire.SandboxList{Sandboxes: all, Count: len(all), Cursor: cursor})
			return x.printJSON(body, err)
		}
		err := x.table(func(w io.Writer) {
			fmt.Fprintln(w, "SANDBOX_ID\tNAME\tSTATUS\tOWNER\tALLOCATED\tEXPIRES\tATTEMPTS\tUPDATED")
			for _, s := range all {
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
		d, body, err := get[wire.SandboxDetail](ctx, x.c, "GET", "/v1/admin/sandboxes/"+url.PathEscape(x.args[0]), nil)
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
					{"niosxaas_outcome", text(s.NIOSXaaSOutcome)}, {"niosxaas_services", strconv.Itoa(s.NIOSXaaSServices)},
					{"niosxaas_reason", text(s.NIOSXaaSReason)}, {"niosxaas_at", unix(s.NIOSXaaSAt)}, {"niosxaas_failures", strconv.Itoa(s.NIOSXaaSFailures)},
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
			started, body, err := get[wire.JobStarted](ctx, x.c, "POST", "/v1/admin/"+job, nil)
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
			run, err := waitForRun(ctx, x.c, job, started.RunID, *waitFor, *interval)
			if err != nil {
				return err
			}
			if x.opts.json {
				raw, err := json.Marshal(run)
				if err := x.printJSON(raw, err); err != nil {
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
func waitForRun(ctx context.Context, c *client, job, runID string, timeout, interval time.Duration) (wire.JobRun, error) {
	deadline := time.Now().Add(timeout)
	for {
		runs, _, err := get[wire.JobRuns](ctx, c, "GET", "/v1/admin/jobs/"+url.PathEscape(job), url.Values{"limit": {"20"}})
		if err != nil {
			return wire.JobRun{}, err
		}
		for _, r := range runs.Runs {
			if r.RunID == runID {
				return r, nil
			}
		}
		if time.Now().Add(interval).After(deadline) {
			return wire.JobRun{}, fmt.Errorf("run %s of %s did not end within %s; brokerctl jobs %s shows it when it does", runID, job, timeout, job)
		}
		select {
		case <-ctx.Done():
			return wire.JobRun{}, ctx.Err()
		case <-time.After(interval):
		}
	}
}

func jobsCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	limit := fs.Int("limit", 20, "")
	return func(ctx context.Context, x *invocation) error {
		runs, body, err := get[wire.JobRuns](ctx, x.c, "GET", "/v1/admin/jobs/"+url.PathEscape(x.args[0]), url.Values{"limit": {strconv.Itoa(*limit)}})
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

func drainCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	reason := fs.String("reason", "", "")
	return func(ctx context.Context, x *invocation) error {
		req, err := json.Marshal(map[string]string{"prefix": x.args[0], "reason": *reason})
		if err != nil {
			return err
		}
		body, err := x.c.send(ctx, "PUT", "/v1/admin/drain", nil, req)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		what := fmt.Sprintf("prefix %q", x.args[0])
		if x.args[0] == "" {
			what = "every prefix"
		}
		fmt.Fprintf(x.stdout, "draining %s: no new allocation lands from now on; replays, sync, cleanup and expiry go on (brokerctl undrain ends it)\n", what)
		return nil
	}
}

func undrainCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	prefix := fs.String("prefix", "", "")
	return func(ctx context.Context, x *invocation) error {
		var q url.Values
		if *prefix != "" {
			q = url.Values{"prefix": {*prefix}}
		}
		ended, body, err := get[wire.DrainsEnded](ctx, x.c, "DELETE", "/v1/admin/drain", q)
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		if len(ended.Ended) == 0 {
			fmt.Fprintln(x.stdout, "no drain ended: none matched")
			return nil
		}
		fmt.Fprintf(x.stdout, "ended the drains of %q; allocations resume within seconds\n", ended.Ended)
		return nil
	}
}
