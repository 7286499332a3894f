package pool

import (
	"context"
	"fmt"
)

// NIOSXaaS outcomes, the values of Sandbox.NIOSXaaSOutcome (docs/configuration.md, "The
// NIOSXaaS pre-delete step").
const (
	NIOSXaaSCleaned     = "cleaned"
	NIOSXaaSNoneToClean = "none_to_clean"
	NIOSXaaSShadow      = "shadow"
	NIOSXaaSFailed      = "failed"
)

// NIOSXaaSStep is what one run of cleanup's pre-delete step came to.
type NIOSXaaSStep struct {
	// Outcome is one of the NIOSXaaS* values.
	Outcome string
	// Services is how many services were deleted (cleaned), would have been (shadow), or
	// were deleted before the step failed.
	Services int
	// Reason says why a failed step failed; empty otherwise.
	Reason string
}

// Finished reports whether the step is done for good: cleaned, none to clean or shadow.
// A finished step is never run again, whatever becomes of the CSP delete.
func (s NIOSXaaSStep) Finished() bool {
	return s.Outcome == NIOSXaaSCleaned || s.Outcome == NIOSXaaSNoneToClean || s.Outcome == NIOSXaaSShadow
}

// String is the step's outcome as its history entry says it: "cleaned 2",
// "none_to_clean", "shadow 1", "failed: <reason>".
func (s NIOSXaaSStep) String() string {
	switch s.Outcome {
	case NIOSXaaSCleaned, NIOSXaaSShadow:
		return fmt.Sprintf("%s %d", s.Outcome, s.Services)
	case NIOSXaaSFailed:
		return "failed: " + s.Reason
	}
	return s.Outcome
}

// NIOSXaaSStep is the step outcome recorded on the sandbox; a zero Outcome when none was.
func (s Sandbox) NIOSXaaSStep() NIOSXaaSStep {
	return NIOSXaaSStep{Outcome: s.NIOSXaaSOutcome, Services: s.NIOSXaaSServices, Reason: s.NIOSXaaSReason}
}

// RecordNIOSXaaS records the outcome of a pending_deletion sandbox's pre-delete step, with
// a pending_deletion → pending_deletion history entry whose reason is the outcome. A failed
// step also counts one more NIOSXaaS failure. With retryAt > 0 the failure is also booked
// on the deletion ledger as RecordDeleteFailure books a failed delete: attempts+1, the
// next attempt at retryAt and the reason as the last error. The write requires the rev
// and attempts that were read, so a step is recorded once, on the state it ran against.
func (p *Pool) RecordNIOSXaaS(ctx context.Context, cur Sandbox, step NIOSXaaSStep, retryAt int64, by Actor) (Sandbox, error) {
	if !step.Finished() && step.Outcome != NIOSXaaSFailed {
		return Sandbox{}, fmt.Errorf("pool: record niosxaas %s: unknown outcome %q", cur.ID, step.Outcome)
	}
	if retryAt > 0 && step.Outcome != NIOSXaaSFailed {
		return Sandbox{}, fmt.Errorf("pool: record niosxaas %s: only a failed step is retried", cur.ID)
	}
	now := p.now().Unix()
	next := cur
	next.NIOSXaaSOutcome, next.NIOSXaaSServices, next.NIOSXaaSReason, next.NIOSXaaSAt = step.Outcome, step.Services, step.Reason, now
	if step.Outcome == NIOSXaaSFailed {
		next.NIOSXaaSFailures++
	}
	t := p.newTx("record niosxaas", cur.ID, expect{statuses: []Status{PendingDeletion}, rev: cur.Rev, attempts: &cur.Attempts})
	var e expr
	e.set(":outcome", next.NIOSXaaSOutcome)
	e.set(":services", next.NIOSXaaSServices)
	e.set(":reason", next.NIOSXaaSReason)
	e.set(":failures", next.NIOSXaaSFailures)
	e.set(":now", now)
	e.set(":one", 1)
	update := "SET #niosxaas_outcome = :outcome, #niosxaas_services = :services, #niosxaas_reason = :reason, " +
		"#niosxaas_failures = :failures, #niosxaas_at = :now, #updated_at = :now, #rev = #rev + :one"
	if retryAt > 0 {
		next.Attempts, next.NextAttemptAt, next.StatusAt, next.LastError = cur.Attempts+1, retryAt, retryAt, "niosxaas: "+step.Reason
		e.set(":attempts", next.Attempts)
		e.set(":next", retryAt)
		e.set(":err", next.LastError)
		update += ", #attempts = :attempts, #next_attempt_at = :next, #status_at = :next, #last_error = :err"
	}
	t.updateSandbox(p.table, &e, update)
	if err := p.commit(ctx, t, PendingDeletion, PendingDeletion, by); err != nil {
		return Sandbox{}, err
	}
	next.UpdatedAt, next.Rev = now, cur.Rev+1
	return next, nil
}
