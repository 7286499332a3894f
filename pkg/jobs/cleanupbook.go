package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// lastErrorLimit bounds the error text kept on a sandbox.
const lastErrorLimit = 500

// bookDelete books the answer to one sandbox's CSP delete. It runs in the delete's own
// goroutine.
func (r *Runner) bookDelete(ctx context.Context, run *runState, s pool.Sandbox, err error, cut bool) deleteOutcome {
	out := deleteOutcome{sandbox: s}
	switch {
	case err == nil || errors.Is(err, csp.ErrAccountNotFound):
		// A 404 is the account already gone: the run's probe proved the endpoint right.
		// Its tombstone is kept for good all the same: a CSP that answers 404 for an
		// account it still holds would otherwise see it adopted again once the tombstone
		// expired (pool.MarkNotFound).
		book, why := r.pool.MarkDeleted, "deleted in the CSP"
		if err != nil {
			book, why = r.pool.MarkNotFound, "the CSP answered 404 (not found)"
		}
		_, err = book(ctx, s, run.as(why))
		run.countWrite("deleted", err)
		if err == nil && s.DeletionRequestedAt > 0 {
			out.timeToDelete = r.pool.Now().Sub(time.Unix(s.DeletionRequestedAt, 0))
		}
		out.err = unlessLostRace(err)
	case errors.Is(err, csp.ErrCircuitOpen):
		// The breaker refused the call: the CSP never saw it.
		r.stopOnOpenBreaker(run)
		out.stop = true
	case cut:
		// The run's own deadline (or the caller) cut the call short: that says nothing
		// about the sandbox, so nothing is booked.
		run.interrupted(ctx)
		out.stop = true
	case errors.As(err, &out.rateLimited):
		run.count("rate_limited", 1)
	case errors.Is(err, csp.ErrTokenRejected):
		// A 401 or 403 is the broker's problem (its token), not the sandbox's.
		run.alarm(AlarmCSPTokenRejected)
		out.stop, out.err = true, fmt.Errorf("the CSP rejected the API token: %w", err)
	case errors.Is(err, csp.ErrWrongEndpoint):
		// A redirect, or an HTML page, answers for something that is not the CSP API.
		run.alarm(AlarmCSPWrongEndpoint)
		out.stop, out.err = true, fmt.Errorf("the CSP delete was not answered by the CSP API: %w", err)
	default:
		out.err = r.bookFailure(ctx, run, s, err)
	}
	return out
}

// bookFailure records a failed delete: the next attempt after a backoff, or deletion_failed
// after the last allowed attempt (at once for an external ID no delete can ever use).
func (r *Runner) bookFailure(ctx context.Context, run *runState, s pool.Sandbox, cause error) error {
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
		next := r.pool.Now().Add(r.deleteBackoff(s.Attempts)).Unix()
		_, err = r.pool.RecordDeleteFailure(ctx, s, next, msg, run.as("CSP delete failed"))
		run.countWrite("failed", err)
	}
	return unlessLostRace(err)
}

func (r *Runner) stopOnOpenBreaker(run *runState) {
	run.stop("the CSP circuit breaker is open; the rest is left for the next run")
	run.alarm(AlarmCleanupBreakerOpen)
}
