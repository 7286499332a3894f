package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/sandbox-broker/broker/pkg/config"
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
  delete-stale [--grace-hours N]   count the sandboxes stale for N hours (default 24) and print
                                   the command that deletes their records: with --expect C it
                                   deletes them when there are still exactly C
  bulk-delete --status S           count the stale or deletion_failed sandboxes and print the
                                   command that deletes their records: with --expect C --before T
                                   it deletes the C of status S since T (unix seconds) or earlier,
                                   when there are still exactly C
  drain PREFIX [--reason R]        pause new allocations of PREFIX ("" for all) and wait until
                                   the drain is in force; replays, sync and cleanup go on
  undrain [--prefix P]             end the drain of P, or every drain without --prefix
  replay-events                    publish the domain events' dead letters again
  events [--follow] [--type T] [--sandbox ID] [--file F]
                                   the local stack's domain events, from its events file
                                   (F, default $EVENTS_FILE or the stack's default); --follow
                                   prints new ones until Ctrl-C. Needs no URL or token
  profiles                         the lab profiles
  set-profile --lab L --prefix P [--minutes N] [--extend-minutes N] [--max-minutes N]
              [--student-limit N] [--low-water N] [--message M]
                                   create or replace a lab profile (0 or "": the default)
  capacity --prefix P --seats N --start T [--for D] [--lead D]
                                   dry run: can N seats of P be covered from T (RFC 3339)
                                   for D (default 3h), set aside D before (default 30m)?
  reserve --lab L --prefix P --seats N --start T [--for D] [--lead D] [--client C]
          [--overflow=false] [--force]
                                   reserve seats after the capacity check (--force past it)
  reservations                     the reservations with their set-aside and coverage
  cancel-reservation ID            cancel; its set-aside returns within a minute

Flags (before or after the command):
  --url URL       the API, e.g. https://api.example.com (default $BROKER_URL); plain
                  http only to this machine (localhost, 127.0.0.0/8, ::1), e.g.
                  http://127.0.0.1:8080
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
	// local: the command reads this machine's files, not the API.
	local bool
}

// invocation is one run of a command.
type invocation struct {
	c      *client
	opts   options
	args   []string
	stdout io.Writer
	// eventsFile is $EVENTS_FILE, or the local stack's default.
	eventsFile string
}

var commands = map[string]command{
	"stats":              {setup: statsCmd},
	"list":               {setup: listCmd},
	"show":               {args: []string{"ID"}, setup: showCmd},
	"sync":               {setup: triggerCmd("sync")},
	"cleanup":            {setup: triggerCmd("cleanup")},
	"jobs":               {args: []string{"NAME"}, setup: jobsCmd},
	"retry":              {args: []string{"ID"}, setup: retryCmd},
	"delete-stale":       {setup: deleteStaleCmd},
	"bulk-delete":        {setup: bulkDeleteCmd},
	"drain":              {args: []string{"PREFIX"}, setup: drainCmd},
	"undrain":            {setup: undrainCmd},
	"profiles":           {setup: profilesCmd},
	"set-profile":        {setup: setProfileCmd},
	"capacity":           {setup: capacityCmd},
	"reserve":            {setup: reserveCmd},
	"reservations":       {setup: reservationsCmd},
	"cancel-reservation": {args: []string{"ID"}, setup: cancelReservationCmd},
	"replay-events":      {setup: replayEventsCmd},
	"events":             {setup: eventsCmd, local: true},
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
	eventsFile := cmp.Or(getenv("EVENTS_FILE"), config.DefaultEventsFile())
	if cmd.local {
		ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
		return finish(stdout, stderr, do(ctx, &invocation{opts: opts, args: positional, stdout: stdout, eventsFile: eventsFile}))
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
	return finish(stdout, stderr, do(ctx, &invocation{c: c, opts: opts, args: positional, stdout: stdout, eventsFile: eventsFile}))
}

// finish is the exit status of a command that returned err.
func finish(stdout, stderr io.Writer, err error) int {
	if err != nil {
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
