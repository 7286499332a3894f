package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// runState is the state of one run: its summary so far, its actor for history entries, and
// the moment it must stop starting work (the context deadline minus finishReserve). Its
// mutators are safe for concurrent use, so a job may book work from several goroutines
// (cleanup's deletes); the summary is read once the job function has returned.
type runState struct {
	summary      *Summary
	actor        pool.Actor
	workDeadline time.Time // zero: no deadline

	mu sync.Mutex // guards summary while the job runs
}

func (run *runState) count(name string, n int) {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.summary.Counts[name] += n
}

// addError keeps the first few errors of a run as examples for the operator.
func (run *runState) addError(err error) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if len(run.summary.Errors) < maxErrorSamples {
		run.summary.Errors = append(run.summary.Errors, err.Error())
	}
}

// stop ends the run early on purpose; the rest is the next run's. The first reason given
// is the one reported: later ones (the deadline reached while the calls in flight after
// an open breaker finish) are its consequences.
func (run *runState) stop(reason string) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.summary.Outcome != OutcomePartial {
		run.summary.Outcome, run.summary.Reason = OutcomePartial, reason
	}
}

// interrupted stops the run because ctx ended or the work deadline passed.
func (run *runState) interrupted(ctx context.Context) {
	if errors.Is(ctx.Err(), context.Canceled) {
		run.stop("cancelled; the rest is left for the next run")
		return
	}
	run.stop(deadlineReason)
}

// alarm raises an alarm; the first one raised in a run is the one reported.
func (run *runState) alarm(name string) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.summary.Alarm == "" {
		run.summary.Alarm = name
	}
}

// outOfTime reports whether less than need is left before the run must stop starting
// work, and if so stops the run.
func (run *runState) outOfTime(need time.Duration) bool {
	if run.workDeadline.IsZero() || time.Until(run.workDeadline) >= need {
		return false
	}
	run.stop(deadlineReason)
	return true
}

// workContext bounds a call to the run's work deadline, so a slow CSP cannot eat the time
// kept to record the outcome.
func (run *runState) workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if run.workDeadline.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, run.workDeadline)
}

// as returns the run's actor with a reason for the history entry.
func (run *runState) as(reason string) pool.Actor {
	a := run.actor
	a.Reason = reason
	return a
}

// countWrite counts a successful write under name and a lost race under "conflicts"; any
// other error fails the run and is the caller's to return.
func (run *runState) countWrite(name string, err error) {
	switch {
	case err == nil:
		run.count(name, 1)
	case pool.LostRace(err):
		run.count("conflicts", 1)
	}
}

// refused reports whether err is DynamoDB refusing the sandbox's own item
// (pool.ErrItemRefused: past the item size limit, a value it does not take). A retry
// would repeat it, and it says nothing about the other sandboxes: it is counted under
// write_refused and reported with the sandbox's ID, and the run goes on.
func (run *runState) refused(id string, err error) bool {
	if !errors.Is(err, pool.ErrItemRefused) {
		return false
	}
	run.count("write_refused", 1)
	run.addError(fmt.Errorf("sandbox %s: %w", id, err))
	return true
}

// unlessLostRace drops a lost race, which a job skips (the next run sees the new state),
// and returns any other error.
func unlessLostRace(err error) error {
	if pool.LostRace(err) {
		return nil
	}
	return err
}
