package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
)

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

// The bulk commands delete records only of what the operator confirmed. Without --expect
// they delete nothing: they count what the call would delete, as of the broker's clock,
// and print the command that deletes exactly that; the broker refuses it with 409
// POOL_CHANGED when the pool no longer holds what was confirmed.

func deleteStaleCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	hours := fs.Int("grace-hours", 24, "")
	expect := fs.Int("expect", -1, "")
	return func(ctx context.Context, x *invocation) error {
		grace := strconv.Itoa(*hours)
		if *expect < 0 {
			stale, at, err := listAll(ctx, x.c, url.Values{"status": {"stale"}})
			if err != nil {
				return err
			}
			cutoff := at.Add(-time.Duration(*hours) * time.Hour).Unix()
			n := 0
			for _, s := range stale {
				if s.StaleSince != nil && *s.StaleSince <= cutoff {
					n++
				}
			}
			return x.preview(map[string]any{"grace_period_hours": *hours, "expected_count": n},
				fmt.Sprintf("%d sandboxes stale for %s h or more (of %d stale)", n, grace, len(stale)), at,
				fmt.Sprintf("brokerctl delete-stale --grace-hours %s --expect %d", grace, n))
		}
		res, body, err := get[wire.Bulk](ctx, x.c, "POST", "/v1/admin/auto-delete-stale",
			url.Values{"grace_period_hours": {grace}, "expected_count": {strconv.Itoa(*expect)}})
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		fmt.Fprintf(x.stdout, "%s: deleted %d stale records (stale for %d h or more), skipped %d, in %d ms%s\n",
			res.Status, res.Deleted, res.GracePeriodHours, res.Skipped, res.DurationMS,
			partial(res, fmt.Sprintf("brokerctl delete-stale --grace-hours %s --expect %d", grace, *expect-res.Deleted-res.Skipped)))
		return nil
	}
}

func bulkDeleteCmd(fs *flag.FlagSet) func(context.Context, *invocation) error {
	status := fs.String("status", "", "")
	expect := fs.Int("expect", -1, "")
	before := fs.Int64("before", 0, "")
	return func(ctx context.Context, x *invocation) error {
		switch {
		case *status == "":
			return usageErr{errors.New("bulk-delete needs --status stale or --status deletion_failed")}
		case (*expect < 0) != (*before == 0):
			return usageErr{errors.New("bulk-delete takes --expect and --before together, as its run without them prints them")}
		}
		again := func(n int, at int64) string {
			return fmt.Sprintf("brokerctl bulk-delete --status %s --expect %d --before %d", *status, n, at)
		}
		if *expect < 0 {
			st, _, at, err := getAt[wire.Stats](ctx, x.c, "GET", "/v1/admin/stats", nil)
			if err != nil {
				return err
			}
			n := st.CountOf(*status)
			return x.preview(map[string]any{"status": *status, "expected_count": n, "status_before": at.Unix()},
				fmt.Sprintf("%d %s sandboxes", n, *status), at, again(n, at.Unix()))
		}
		res, body, err := get[wire.Bulk](ctx, x.c, "POST", "/v1/admin/bulk-delete",
			url.Values{"status": {*status}, "expected_count": {strconv.Itoa(*expect)}, "status_before": {strconv.FormatInt(*before, 10)}})
		if err != nil || x.opts.json {
			return x.printJSON(body, err)
		}
		fmt.Fprintf(x.stdout, "%s: deleted %d %s records (no CSP call), skipped %d, in %d ms%s\n",
			res.Status, res.Deleted, *status, res.Skipped, res.DurationMS, partial(res, again(*expect-res.Deleted-res.Skipped, *before)))
		return nil
	}
}

// preview prints what a bulk command would delete, counted as of at (the broker's clock),
// and the command that deletes it (with --json, the query parameters that command sends).
func (x *invocation) preview(params map[string]any, what string, at time.Time, command string) error {
	if at.IsZero() {
		return errors.New("the API's answer has no Date header: brokerctl cannot tell as of when it counted")
	}
	if x.opts.json {
		body, err := json.Marshal(params)
		return x.printJSON(body, err)
	}
	fmt.Fprintf(x.stdout, "%s as of %s; nothing is deleted yet. To delete their records (never their CSP accounts):\n  %s\n",
		what, at.UTC().Format(time.RFC3339), command)
	return nil
}
