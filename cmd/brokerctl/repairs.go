package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"strconv"

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
