package jobs

import (
	"context"
	"fmt"

	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/niosxaas"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// AlarmNIOSXaaSFailed: a sandbox's NIOSXaaS pre-delete step failed for the last time
// allowed, and its CSP delete went ahead without it (docs/upstream.md D20).
const AlarmNIOSXaaSFailed = "niosxaas_failed"

// niosxaasCounts names the run summary's count of each step outcome.
var niosxaasCounts = map[niosxaas.Result]string{
	niosxaas.Cleaned:     "niosxaas_cleaned",
	niosxaas.NoneToClean: "niosxaas_none",
	niosxaas.Shadow:      "niosxaas_shadow",
	niosxaas.Failed:      "niosxaas_failed",
}

// niosxaasStep runs the NIOSXaaS pre-delete step of s, in the delete's goroutine before
// its CSP delete, when the step is on and still due, and records its outcome on the
// sandbox and in its history. It returns the sandbox as it now stands and, when the CSP
// delete must not go ahead in this run, the outcome that reports it (proceed false).
//
// The step is due until it has finished (cleaned, none to clean, shadow: never run again,
// even when the CSP delete then fails) or has failed NIOSXAAS_MAX_ATTEMPTS times. A failed
// step books a failed attempt on the deletion ledger with the delete's backoff, and the
// delete waits for the retry; the last allowed failure books no attempt, raises
// niosxaas_failed and lets the delete go ahead at once, as the upstream always did. The
// last allowed failure is also the one after which the ledger has room for only one more
// attempt (attempts+1 ≥ CLEANUP_MAX_ATTEMPTS): the step never spends the attempt that
// would make the sandbox deletion_failed, so the CSP delete gets at least one try whatever
// the two limits are (docs/operations.md, sizing of the limits).
func (r *Runner) niosxaasStep(ctx context.Context, run *runState, s pool.Sandbox) (_ pool.Sandbox, proceed bool, out deleteOutcome) {
	if r.niosxaas == nil || s.NIOSXaaSStep().Finished() || s.NIOSXaaSFailures >= r.niosxaasMaxAttempts {
		return s, true, deleteOutcome{}
	}
	var got niosxaas.Outcome
	if r.niosxaas.BreakerState() == breaker.Open {
		// An open breaker is a failed step, booked without a call. Leaving the sandbox
		// untouched instead would cost no attempt, but would hold every CSP delete until
		// NIOSXaaS recovers, for as long as an outage lasts, while the upstream never let
		// the step block a delete. Counted as a failure, it delays each delete by at most
		// NIOSXAAS_MAX_ATTEMPTS backoffs, and never into deletion_failed (see above).
		got = niosxaas.Outcome{Result: niosxaas.Failed, Reason: "the NIOSXaaS circuit breaker is open"}
	} else {
		callCtx, cancel := run.workContext(ctx)
		got = r.niosxaas.Clean(callCtx, s.ExternalID)
		cut := callCtx.Err() != nil
		cancel()
		if cut && got.Result == niosxaas.Failed {
			// Cut short by the run's deadline (or the caller): that says nothing about
			// the sandbox, so nothing is booked, as for a cut CSP delete.
			run.interrupted(ctx)
			return s, false, deleteOutcome{sandbox: s, stop: true}
		}
	}

	step := pool.NIOSXaaSStep{Outcome: string(got.Result), Services: got.Services, Reason: got.Reason}
	var retryAt int64
	last := false
	if got.Result == niosxaas.Failed {
		run.addError(fmt.Errorf("sandbox %s: niosxaas: %s", s.ID, got.Reason))
		last = s.NIOSXaaSFailures+1 >= r.niosxaasMaxAttempts || s.Attempts+1 >= r.cfg.CleanupMaxAttempts
		if !last {
			retryAt = r.pool.Now().Add(r.deleteBackoff(s.Attempts)).Unix()
		}
	}
	next, err := r.pool.RecordNIOSXaaS(ctx, s, step, retryAt, run.as("niosxaas "+step.String()))
	run.countWrite(niosxaasCounts[got.Result], err)
	switch {
	case err != nil:
		return s, false, deleteOutcome{sandbox: s, err: unlessLostRace(err)}
	case got.Result == niosxaas.Failed && !last:
		return next, false, deleteOutcome{sandbox: next}
	case last:
		run.alarm(AlarmNIOSXaaSFailed)
	}
	// The step took time: the delete starts only if a whole CSP request and its booking
	// still fit, as awaitStart requires of every start. Otherwise the next run deletes it,
	// with the step's outcome already recorded.
	if run.outOfTime(r.cspTimeout + bookingReserve) {
		return next, false, deleteOutcome{sandbox: next, stop: true}
	}
	return next, true, deleteOutcome{}
}
