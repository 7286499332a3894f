package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// Bounds of the admin routes' query parameters (docs/architecture.md §3).
const (
	defaultListLimit       = 50
	maxListLimit           = 100
	defaultRunsLimit       = 20
	maxRunsLimit           = 100
	defaultStaleGraceHours = 24
	maxStaleGraceHours     = 720
)

// answerReserve is kept back from the function's deadline for a bulk call: the call stops
// starting deletes in time to answer "partial" instead of being cut off by Lambda (API
// Gateway would answer the client with a bare 5xx and no counts).
const answerReserve = 2 * time.Second

func adminSandbox(s pool.Sandbox) wire.Sandbox {
	return wire.Sandbox{
		SandboxID: s.ID, Name: s.Name, ExternalID: s.ExternalID, SFDCAccountID: optional(s.SFDCAccountID), Status: string(s.Status),
		AllocatedToTrack: optional(s.Owner), IdempotencyKey: optional(s.IdempotencyKey), TrackName: optional(s.TrackName),
		Client: optional(s.Client), AllocatedAt: optionalTime(s.AllocatedAt), ExpiresAt: optionalTime(s.ExpiresAt),
		Profile: optional(s.Profile), MaxExpiresAt: optionalTime(s.MaxExpiresAt),
		DeletionRequestedAt: optionalTime(s.DeletionRequestedAt), Attempts: s.Attempts, NextAttemptAt: optionalTime(s.NextAttemptAt),
		LastError: optional(s.LastError), NIOSXaaSOutcome: optional(s.NIOSXaaSOutcome), NIOSXaaSServices: s.NIOSXaaSServices,
		NIOSXaaSReason: optional(s.NIOSXaaSReason), NIOSXaaSAt: optionalTime(s.NIOSXaaSAt), NIOSXaaSFailures: s.NIOSXaaSFailures,
		MissedSyncs: s.MissedSyncs, StaleSince: optionalTime(s.StaleSince),
		LastSynced: optionalTime(s.LastSynced), CreatedAt: optionalTime(s.CreatedAt), UpdatedAt: optionalTime(s.UpdatedAt),
	}
}

// listSandboxes pages through the pool: ?status=&prefix=&limit=&cursor=.
func (a *API) listSandboxes(ctx context.Context, r *request) (reply, error) {
	q, qErr := readQuery(r.ev, "status", "prefix", "limit", "cursor")
	if qErr != nil {
		return reply{}, qErr
	}
	var f pool.ListFilter
	var err *Error
	if f.Status, err = q.status("status"); err != nil {
		return reply{}, err
	}
	if f.Prefix, err = q.text("prefix", maxTextLength); err != nil {
		return reply{}, err
	}
	limit, err := q.integer("limit", defaultListLimit, 1, maxListLimit)
	if err != nil {
		return reply{}, err
	}
	page, listErr := a.broker.List(ctx, f, limit, q["cursor"])
	if listErr != nil {
		return reply{}, listErr
	}
	body := wire.SandboxList{Sandboxes: make([]wire.Sandbox, 0, len(page.Sandboxes)), Count: len(page.Sandboxes), Cursor: optional(page.Cursor)}
	for _, s := range page.Sandboxes {
		body.Sandboxes = append(body.Sandboxes, adminSandbox(s))
	}
	return reply{status: http.StatusOK, body: body}, nil
}

// inspectSandbox shows one sandbox with its history, newest first; a deleted one shows
// its history alone until the history TTL.
func (a *API) inspectSandbox(ctx context.Context, r *request) (reply, error) {
	id, err := r.adminSandboxID()
	if err != nil {
		return reply{}, err
	}
	s, history, inspectErr := a.broker.Inspect(ctx, id)
	if inspectErr != nil {
		return reply{}, inspectErr
	}
	body := wire.SandboxDetail{History: make([]wire.HistoryEntry, 0, len(history))}
	if s != nil {
		sb := adminSandbox(*s)
		body.Sandbox = &sb
	}
	body.History = historyEntries(history)
	return reply{status: http.StatusOK, body: body}, nil
}

func historyEntries(history []pool.HistoryEntry) []wire.HistoryEntry {
	out := make([]wire.HistoryEntry, 0, len(history))
	for _, h := range history {
		out = append(out, wire.HistoryEntry{
			At: time.UnixMilli(h.At).UTC().Format(wire.TimeLayout), From: optional(string(h.From)), To: optional(string(h.To)),
			Reason: optional(h.Reason), ActorKind: optional(h.ActorKind), Actor: optional(h.Actor), RequestID: optional(h.RequestID),
		})
	}
	return out
}

// retryDeletion gives a deletion_failed sandbox back to cleanup, attempts reset.
func (a *API) retryDeletion(ctx context.Context, r *request) (reply, error) {
	id, err := r.adminSandboxID()
	if err != nil {
		return reply{}, err
	}
	s, retryErr := a.broker.RetryDeletion(ctx, id, r.admin())
	switch {
	case errors.Is(retryErr, broker.ErrWrongStatus) && s.Status != "":
		return reply{}, &Error{http.StatusConflict, CodeWrongStatus,
			fmt.Sprintf("Only a deletion_failed sandbox can be retried; this one is %s", s.Status), 0}
	case errors.Is(retryErr, broker.ErrWrongStatus):
		return reply{}, &Error{http.StatusConflict, CodeWrongStatus,
			"The sandbox changed status meanwhile; only a deletion_failed sandbox can be retried", 0}
	case retryErr != nil:
		return reply{}, retryErr
	}
	r.outcome = "retried"
	return reply{status: http.StatusOK, body: adminSandbox(s)}, nil
}

// stats counts the whole pool exactly.
func (a *API) stats(ctx context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	st, drains, err := a.poolState(ctx)
	if err != nil {
		return reply{}, err
	}
	signals, err := a.broker.PrefixSignals(ctx)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, body: wire.Stats{
		Drains: wireDrains(drains), Prefixes: wirePrefixSignals(signals),
		Total: st.Total, Available: st.ByStatus[pool.Available], Allocated: st.ByStatus[pool.Allocated],
		PendingDeletion: st.ByStatus[pool.PendingDeletion], Stale: st.ByStatus[pool.Stale],
		DeletionFailed: st.ByStatus[pool.DeletionFailed], Deleted: st.ByStatus[pool.Deleted], Retired: st.ByStatus[pool.Retired],
		AvailableByPrefix: st.AvailableByPrefix, OldestPendingDeletionAt: optionalTime(st.OldestPendingDeletionAt),
	}}, nil
}

func wirePrefixSignals(signals []pool.PrefixSignal) []wire.PrefixSignal {
	out := make([]wire.PrefixSignal, 0, len(signals))
	for _, s := range signals {
		w := wire.PrefixSignal{Prefix: s.Prefix, Available: s.Available, PerMinute: s.PerMinute, LowWater: s.LowWater,
			LeadMinutes: s.LeadMinutes, Reasons: append([]string{}, s.Reasons...), CountedAt: s.At / 1000}
		if s.Empties() {
			w.MinutesToEmpty = &s.MinutesToEmpty
		}
		out = append(out, w)
	}
	return out
}

// poolState is what stats and /metrics both show: the exact counts and the drains in force.
func (a *API) poolState(ctx context.Context) (pool.Stats, []pool.Drain, error) {
	st, err := a.broker.Stats(ctx)
	if err != nil {
		return pool.Stats{}, nil, err
	}
	drains, err := a.broker.Drains(ctx)
	return st, drains, err
}

// maxExpectedCount bounds expected_count far above any pool: a larger count is a mistake.
const maxExpectedCount = 1_000_000

// bulkDelete retires the records (never the CSP accounts) of the sandboxes in ?status=,
// which is required and must be stale or deletion_failed (docs/upstream.md D16: upstream
// wiped the whole table without one), and only the ones the operator confirmed:
// ?expected_count= records whose status_at is at or before ?status_before= (unix
// seconds, the time they read the count). Both are required: no client of the upstream
// broker calls this route, and a count alone can match another set of records.
func (a *API) bulkDelete(ctx context.Context, r *request) (reply, error) {
	q, err := readQuery(r.ev, "status", "status_before", "expected_count")
	if err != nil {
		return reply{}, err
	}
	status := pool.Status(q["status"])
	switch {
	case status == "":
		return reply{}, validationError("Query parameter status is required: stale or deletion_failed")
	case status != pool.Stale && status != pool.DeletionFailed:
		return reply{}, validationError("Bulk delete takes status stale or deletion_failed only: it removes database records " +
			"without deleting the CSP account, which for any other status would leave a live account behind")
	}
	var confirmed broker.Confirmed
	if confirmed.Count, err = expectedCount(q); err != nil {
		return reply{}, err
	}
	if err = q.need("status_before", "the time (unix seconds) at which you read the count you confirmed, "+
		"e.g. the Date of the GET /v1/admin/stats answer"); err != nil {
		return reply{}, err
	}
	// A bound after the clock would reach records that enter the status after the call.
	before, err := q.integer("status_before", 0, 1, int(time.Now().Unix()))
	if err != nil {
		return reply{}, err
	}
	confirmed.Before = int64(before)
	body, bulkErr := bulkRetire(ctx, func(work context.Context) (broker.BulkResult, error) {
		return a.broker.BulkDelete(work, status, confirmed, r.admin())
	})
	if bulkErr != nil {
		return reply{}, bulkErr
	}
	r.outcome = "bulk_deleted"
	return reply{status: http.StatusOK, body: body}, nil
}

// deleteStale retires the records of sandboxes stale for at least ?grace_period_hours=
// (1-720, default 24; docs/upstream.md D16: upstream accepted 0 and negative values), when
// there are ?expected_count= of them, as the operator confirmed.
func (a *API) deleteStale(ctx context.Context, r *request) (reply, error) {
	q, err := readQuery(r.ev, "grace_period_hours", "expected_count")
	if err != nil {
		return reply{}, err
	}
	hours, err := q.integer("grace_period_hours", defaultStaleGraceHours, 1, maxStaleGraceHours)
	if err != nil {
		return reply{}, err
	}
	count, err := expectedCount(q)
	if err != nil {
		return reply{}, err
	}
	body, staleErr := bulkRetire(ctx, func(work context.Context) (broker.BulkResult, error) {
		return a.broker.DeleteStale(work, time.Duration(hours)*time.Hour, count, r.admin())
	})
	if staleErr != nil {
		return reply{}, staleErr
	}
	r.outcome = "stale_deleted"
	body.GracePeriodHours = hours
	return reply{status: http.StatusOK, body: body}, nil
}

// expectedCount reads expected_count, which both bulk routes require.
func expectedCount(q query) (int, *Error) {
	if err := q.need("expected_count", "the number of records you confirmed deleting"); err != nil {
		return 0, err
	}
	return q.integer("expected_count", 0, 0, maxExpectedCount)
}

// bulkRetire runs a bulk call within the function's deadline minus answerReserve and
// returns the answer of what it did.
func bulkRetire(ctx context.Context, call func(work context.Context) (broker.BulkResult, error)) (wire.Bulk, error) {
	start := time.Now()
	work, cancel := withAnswerReserve(ctx)
	defer cancel()
	res, err := call(work)
	if err = outOfBudget(ctx, work, err); err != nil {
		return wire.Bulk{}, err
	}
	return bulkAnswer(res, start), nil
}

// metricsText is GET /metrics: the pool's counts as Prometheus gauges, for an admin-token
// scrape (docs/upstream.md D9: upstream counted one scan page, on a public route).
func (a *API) metricsText(ctx context.Context, r *request) (reply, error) {
	if _, err := readQuery(r.ev); err != nil {
		return reply{}, err
	}
	st, drains, err := a.poolState(ctx)
	if err != nil {
		return reply{}, err
	}
	return reply{status: http.StatusOK, contentType: prometheusContentType, text: poolGauges(st, drains)}, nil
}

// adminSandboxID reads the {id} path parameter of an admin route (no query parameters),
// noting it for the request log.
func (r *request) adminSandboxID() (string, error) {
	if _, err := readQuery(r.ev); err != nil {
		return "", err
	}
	id := r.ev.PathParameters["id"]
	if !broker.ValidID(id) {
		return "", validationError("The sandbox ID must be %s", broker.IDSyntax)
	}
	r.sandboxID = id
	return id, nil
}

// admin is the actor of an admin change, as the sandbox's history records it: the token's
// client name, this request's ID, and the route as the reason.
func (r *request) admin() pool.Actor {
	return pool.Actor{Kind: "admin", Name: r.client, RequestID: r.id, Reason: r.route.Name}
}

// withAnswerReserve bounds a bulk call to the function's deadline minus answerReserve.
func withAnswerReserve(ctx context.Context) (context.Context, context.CancelFunc) {
	if deadline, ok := ctx.Deadline(); ok {
		return context.WithDeadline(ctx, deadline.Add(-answerReserve))
	}
	return context.WithCancel(ctx)
}

// outOfBudget drops the error of a bulk call that ran out of its own budget (not the
// caller's): the delete in flight was cut, and the answer is "partial" with what was
// done; the next call continues.
func outOfBudget(ctx, work context.Context, err error) error {
	if err != nil && work.Err() != nil && ctx.Err() == nil {
		return nil
	}
	return err
}

// bulkAnswer is the answer of a bulk call that began at start.
func bulkAnswer(res broker.BulkResult, start time.Time) wire.Bulk {
	status := "completed"
	if !res.Complete {
		status = "partial"
	}
	return wire.Bulk{Status: status, Deleted: res.Deleted, Skipped: res.Skipped, DurationMS: time.Since(start).Milliseconds()}
}

func optionalTime(unix int64) *int64 {
	if unix == 0 {
		return nil
	}
	return &unix
}
