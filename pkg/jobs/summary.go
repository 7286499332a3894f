package jobs

import (
	"context"
	"log/slog"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// Outcome is how a job run ended.
type Outcome string

const (
	// OutcomeOK: the run did all the work that was due.
	OutcomeOK Outcome = "ok"
	// OutcomePartial: the run stopped early on purpose (its deadline, an open circuit
	// breaker, CSP rate limiting) and left the rest for the next run.
	OutcomePartial Outcome = "partial"
	// OutcomeSkipped: another run of the same job held the lease; this one did nothing.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeFailed: the run could not do its work (CSP listing down or refused, DynamoDB
	// errors, a rejected CSP token, a wrong CSP endpoint). Run returns an error with it.
	OutcomeFailed Outcome = "failed"
)

// Alarms a run can raise. They are stable values of the summary's "alarm" field, so a log
// metric filter can page an operator on them.
const (
	// AlarmSyncShrinkGuard: the CSP listing was empty or dropped too much of the pool, so
	// sync marked nothing stale (docs/upstream.md D5).
	AlarmSyncShrinkGuard = "sync_shrink_guard"
	// AlarmDeletionFailed: cleanup gave up on a sandbox after its last attempt.
	AlarmDeletionFailed = "cleanup_deletion_failed"
	// AlarmCleanupBreakerOpen: cleanup stopped because the CSP circuit breaker is open.
	AlarmCleanupBreakerOpen = "cleanup_breaker_open"
	// AlarmCSPTokenRejected: the CSP answered 401 or 403 (to cleanup's probe or a delete,
	// or to sync's listing); no sandbox is blamed for it.
	AlarmCSPTokenRejected = "csp_token_rejected"
	// AlarmCSPWrongEndpoint: what answered is not the CSP API (a 404 to the listing or the
	// probe, a redirect, an HTML page): CSP_BASE_URL is wrong, so nothing was booked.
	AlarmCSPWrongEndpoint = "csp_wrong_endpoint"
	// AlarmSyncListingRefused: the CSP listing could not be read completely (a page
	// repeated in a way no paging explains, or more than CSP_LIST_MAX_ACCOUNTS entries),
	// so sync failed and marked nothing stale.
	AlarmSyncListingRefused = "sync_listing_refused"
	// AlarmSyncUUIDConflict: two sandbox IDs claim one CSP account: a record whose account
	// uuid another record holds (it can never become a tombstone), or an account the CSP
	// lists under another sandbox ID than the record that holds it. The summary's errors
	// name both IDs.
	AlarmSyncUUIDConflict = "sync_uuid_conflict"
	// AlarmJobLeaseStuck: a run was skipped on a lease taken longer ago than the job's
	// timeout: its holder is over (crashed or killed), yet the lease blocks the job until
	// it expires. A lease this version takes never outlives its run's timeout by more than
	// leaseMargin, so it is one written otherwise (an earlier version, a hand edit) or the
	// clocks of two runs disagree.
	AlarmJobLeaseStuck = "job_lease_stuck"
	// AlarmUsagePlansFailed: API Gateway refused a call of the usage-plans job, so some
	// client's usage plan may not match the tokens secret (a new client's requests are
	// refused until it has one).
	AlarmUsagePlansFailed = "usage_plans_failed"
)

// Summary is what one run did. It is logged as one JSON line, stored (pool.Runs) and
// returned to the caller.
type Summary struct {
	Job        string    `json:"job"`
	RunID      string    `json:"run_id"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Outcome    Outcome   `json:"outcome"`
	// Reason says why a run was partial, skipped or failed, or what sync's shrink guard
	// refused.
	Reason string `json:"reason,omitempty"`
	// Alarm is one of the Alarm* values when the run found something an operator must see
	// (the first one, when it found several).
	Alarm  string         `json:"alarm,omitempty"`
	Counts map[string]int `json:"counts"`
	// Errors holds the first few per-sandbox errors, for the operator.
	Errors []string `json:"errors,omitempty"`
}

// log writes the summary as the run's one log line: an error when it failed, a warning
// when it was partial or raised an alarm.
func (sum Summary) log(ctx context.Context, logger *slog.Logger) {
	level := slog.LevelInfo
	switch {
	case sum.Outcome == OutcomeFailed:
		level = slog.LevelError
	case sum.Outcome == OutcomePartial || sum.Alarm != "":
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("job", sum.Job), slog.String("run_id", sum.RunID),
		slog.Time("started_at", sum.StartedAt), slog.Int64("duration_ms", sum.DurationMS),
		slog.String("outcome", string(sum.Outcome)), slog.Any("counts", sum.Counts),
	}
	for name, v := range map[string]string{"reason": sum.Reason, "alarm": sum.Alarm} {
		if v != "" {
			attrs = append(attrs, slog.String(name, v))
		}
	}
	if len(sum.Errors) > 0 {
		attrs = append(attrs, slog.Any("errors", sum.Errors))
	}
	logger.LogAttrs(ctx, level, "job run", attrs...)
}

func (s Summary) record() pool.RunRecord {
	return pool.RunRecord{
		Job: s.Job, RunID: s.RunID, StartedAt: s.StartedAt, DurationMS: s.DurationMS, Outcome: string(s.Outcome),
		Reason: s.Reason, Alarm: s.Alarm, Counts: s.Counts, Errors: s.Errors,
	}
}
