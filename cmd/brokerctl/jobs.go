package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
)

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
