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
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
)

// The commands (the reading ones here; the job runs in jobs.go, the repairs in repairs.go,
// the drains in drain.go): each decodes the API's answer into its pkg/api/wire type and
// prints it as a table (output.go) or, with --json, as the API wrote it.

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
		filter := url.Values{}
		for k, v := range map[string]string{"status": *status, "prefix": *prefix} {
			if v != "" {
				filter.Set(k, v)
			}
		}
		all, cursor, _, err := listPages(ctx, x.c, filter, *limit, *maxCount)
		if err != nil {
			return err
		}
		if x.opts.json {
			body, err := json.Marshal(wire.SandboxList{Sandboxes: all, Count: len(all), Cursor: cursor})
			return x.printJSON(body, err)
		}
		err = x.table(func(w io.Writer) {
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

// listPages reads a listing (filter: its status and prefix) page by page, limit a page,
// following the cursor until it ends or maxCount (0: no bound) sandboxes are read. It
// returns them, the cursor left (nil at the end) and the broker's clock at the first page.
func listPages(ctx context.Context, c *client, filter url.Values, limit, maxCount int) ([]wire.Sandbox, *string, time.Time, error) {
	var all []wire.Sandbox
	var cursor *string
	var first time.Time
	for {
		q := maps.Clone(filter)
		q.Set("limit", strconv.Itoa(limit))
		if maxCount > 0 {
			q.Set("limit", strconv.Itoa(min(limit, maxCount-len(all))))
		}
		if cursor != nil {
			q.Set("cursor", *cursor)
		}
		page, _, at, err := getAt[wire.SandboxList](ctx, c, "GET", "/v1/admin/sandboxes", q)
		if err != nil {
			return nil, nil, time.Time{}, err
		}
		if first.IsZero() {
			first = at
		}
		all, cursor = append(all, page.Sandboxes...), page.Cursor
		if cursor == nil || (maxCount > 0 && len(all) >= maxCount) {
			return all, cursor, first, nil
		}
	}
}

// listAll reads every sandbox of a listing.
func listAll(ctx context.Context, c *client, filter url.Values) ([]wire.Sandbox, time.Time, error) {
	all, _, at, err := listPages(ctx, c, filter, 100, 0)
	return all, at, err
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
