package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/pool"
)

const (
	// maxRateLimitedInARow ends a cleanup run whose CSP keeps answering 429 even after
	// waiting as told: the limit is tighter than the configured pace, and the next run
	// starts fresh.
	maxRateLimitedInARow = 3
	// lastErrorLimit bounds the error text kept on a sandbox.
	lastErrorLimit = 500
)

// cleanup deletes the due pending_deletion sandboxes in the CSP, the one due longest first,
// one at a time, paced to DeletesPerSecond. A confirmed delete (200, 204 or 404) makes the
// record a deleted tombstone. A failed one stays pending_deletion with attempts+1 and a next attempt after an
// exponential backoff with full jitter, until the CleanupMaxAttempts-th failure makes it
// deletion_failed (docs/upstream.md D4). A 429 is not the sandbox's failure: it is retried after the CSP's
// Retry-After and books nothing. The run stops, touching nothing more, when the circuit
// breaker is open, and before its deadline.
func (r *JobRunner) cleanup(ctx context.Context, run *jobRun) error {
	pace := pacer{gap: time.Duration(float64(time.Second) / r.cfg.DeletesPerSecond)}
	// A failure booked with a short backoff can move a sandbox further down the same
	// index while it is being read; it gets one try per run.
	tried := map[string]bool{}
	for s, err := range r.pool.ByStatus(ctx, pool.PendingDeletion, r.now().Unix()) {
		if err != nil {
			return fmt.Errorf("read due deletions: %w", err)
		}
		if tried[s.ID] {
			continue
		}
		tried[s.ID] = true
		stop, err := r.deleteSandbox(ctx, run, &pace, s)
		if err != nil || stop {
			return err
		}
	}
	return nil
}

// deleteSandbox deletes one sandbox in the CSP and books the outcome. stop ends the run.
func (r *JobRunner) deleteSandbox(ctx context.Context, run *jobRun, pace *pacer, s pool.Sandbox) (stop bool, err error) {
	for rateLimited := 0; ; {
		if run.outOfTime(pace.wait() + r.cspTimeout) {
			return true, nil
		}
		if r.csp.BreakerState() == csp.BreakerOpen {
			r.stopOnOpenBreaker(run)
			return true, nil
		}
		if !pace.sleep(ctx) {
			run.interrupted(ctx)
			return true, nil
		}
		callCtx, cancel := run.workContext(ctx)
		err := r.csp.DeleteAccount(callCtx, s.ExternalID)
		cut := callCtx.Err() != nil
		cancel()
		pace.finished()

		var limited *csp.RateLimitedError
		var status *csp.HTTPError
		switch {
		case err == nil || errors.Is(err, csp.ErrAccountNotFound):
			_, err = r.pool.MarkDeleted(ctx, s, run.as("deleted in the CSP"))
			run.countWrite("deleted", err)
			return false, unlessLostRace(err)
		case errors.Is(err, csp.ErrCircuitOpen):
			r.stopOnOpenBreaker(run)
			return true, nil
		case cut:
			// The run's own deadline (or the caller) cut the call short: that says nothing
			// about the sandbox, so nothing is booked.
			run.interrupted(ctx)
			return true, nil
		case errors.As(err, &limited):
			run.count("rate_limited", 1)
			if rateLimited++; rateLimited >= maxRateLimitedInARow {
				run.stop(fmt.Sprintf("the CSP rate limited %d deletes in a row; the rest is left for the next run", rateLimited))
				return true, nil
			}
			pace.holdFor(limited.RetryAfter)
			continue
		case errors.As(err, &status) && status.Status == http.StatusUnauthorized:
			// A rejected token is the broker's problem, not the sandbox's.
			run.alarm(AlarmCSPTokenRejected)
			return true, fmt.Errorf("the CSP rejected the API token: %w", err)
		}
		return false, r.bookFailure(ctx, run, s, err)
	}
}

// bookFailure records a failed delete: the next attempt after a backoff, or deletion_failed
// after the last allowed attempt (at once for an external ID no delete can ever use).
func (r *JobRunner) bookFailure(ctx context.Context, run *jobRun, s pool.Sandbox, cause error) error {
	run.addError(fmt.Errorf("sandbox %s: %w", s.ID, cause))
	msg := cause.Error()
	if len(msg) > lastErrorLimit {
		msg = msg[:lastErrorLimit]
	}
	var err error
	if s.Attempts+1 >= r.cfg.CleanupMaxAttempts || errors.Is(cause, csp.ErrInvalidExternalID) {
		_, err = r.pool.FailDeletion(ctx, s, msg, run.as(fmt.Sprintf("CSP delete failed %d times", s.Attempts+1)))
		run.countWrite("deletion_failed", err)
		if err == nil {
			run.alarm(AlarmDeletionFailed)
		}
	} else {
		next := r.now().Add(r.deleteBackoff(s.Attempts)).Unix()
		_, err = r.pool.RecordDeleteFailure(ctx, s, next, msg, run.as("CSP delete failed"))
		run.countWrite("failed", err)
	}
	return unlessLostRace(err)
}

func (r *JobRunner) stopOnOpenBreaker(run *jobRun) {
	run.stop("the CSP circuit breaker is open; the rest is left for the next run")
	run.alarm(AlarmCleanupBreakerOpen)
}

// pacer spaces CSP deletes: the next one starts at least gap after the previous one
// finished, or once the CSP's Retry-After has passed. Spacing from the end of a call, not
// its start, means the CSP's own limiter never sees two deletes closer than gap, however
// much their latency varies, so pacing at the CSP's limit does not earn 429s.
type pacer struct {
	gap  time.Duration
	next time.Time
}

func (p *pacer) wait() time.Duration { return max(0, time.Until(p.next)) }

func (p *pacer) finished() { p.next = time.Now().Add(p.gap) }

func (p *pacer) holdFor(d time.Duration) {
	if until := time.Now().Add(d); until.After(p.next) {
		p.next = until
	}
}

// sleep waits for the next slot; false means ctx ended first.
func (p *pacer) sleep(ctx context.Context) bool {
	d := p.wait()
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
