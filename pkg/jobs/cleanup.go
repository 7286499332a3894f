package jobs

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/pool"
)

const (
	// maxRateLimitedInARow ends a cleanup run whose CSP keeps answering 429 even after
	// waiting as told (429s to deletes started after the pause the previous one caused): the
	// limit is tighter than the configured pace, and the next run starts fresh.
	maxRateLimitedInARow = 3
	// bookingReserve is kept, besides a whole CSP request timeout, before a new delete
	// starts: the time to book its answer, one DynamoDB write (tens of milliseconds) with
	// room for SDK retries. Each call books its own answer, so the calls in flight at the
	// deadline book theirs side by side, not one after another.
	bookingReserve = time.Second
	// paceHeadroom is the share of DeletesPerSecond the starts are paced to. Two starts one
	// exact gap apart reach the CSP's limiter up to a few milliseconds closer together
	// (scheduling, a connection being opened), which a limiter at that rate answers with a
	// 429 that pauses every start for a second or more. 5 % of the gap absorbs most of that
	// jitter and costs 5 % of the rate (cmd/cleanupbench measures both).
	paceHeadroom = 0.95
)

// cleanup deletes the due pending_deletion sandboxes in the CSP, the one due longest first,
// up to CleanupMaxInFlight at once, their starts paced to DeletesPerSecond by one
// startBucket, once the run's probe has proved the endpoint right (probe). A confirmed
// delete (200, 204, or 404 after that probe) makes the record a deleted tombstone. A failed one stays
// pending_deletion with attempts+1 and a next attempt after an exponential backoff with
// full jitter, until the CleanupMaxAttempts-th failure makes it deletion_failed (docs/upstream.md D4). A 429
// is not the sandbox's failure: it pauses every start for the CSP's Retry-After, books
// nothing, and the sandbox is sent again. No delete starts once the circuit breaker is open
// or too little time is left; the calls already in flight are waited for and booked, so a
// run never ends with a CSP answer it did not book.
//
// This goroutine alone reads the index, paces and starts the deletes, and owns the state
// that decides the next start (slots, bucket, tried and resent sandboxes). Each delete's
// goroutine calls the CSP, books its own answer in the pool and the run's summary (whose
// mutators are goroutine-safe), and reports what the next starts must know on one
// channel. Booking here instead would hold every start up for the DynamoDB write of each
// answer: measured against DynamoDB Local on a loaded machine, starts then came up to
// 200 ms late, and TestCleanupKeepsToTheCSPRateLimit reached 76–85 % of the allowed rate
// instead of 89–94 %.
func (r *Runner) cleanup(ctx context.Context, run *runState) error {
	c := &cleanupRun{
		r: r, run: run,
		bucket:   startBucket{gap: time.Duration(float64(time.Second) / (paceHeadroom * r.cfg.DeletesPerSecond))},
		finished: make(chan deleteOutcome, r.cfg.CleanupMaxInFlight),
		tried:    map[string]bool{},
	}
	if c.probe(ctx) {
		c.startDue(ctx)
	}
	for c.inFlight > 0 {
		c.settle(<-c.finished)
	}
	if r.metrics != nil && len(c.timesToDelete) > 0 {
		r.metrics.TimesToDelete(run.summary.Job, c.timesToDelete)
	}
	return c.err
}

// cleanupRun is one cleanup run's state. Only the goroutine running cleanup changes it;
// the deletes' goroutines read r, run and finished.
type cleanupRun struct {
	r   *Runner
	run *runState

	bucket startBucket
	// finished gets every delete's outcome once it is booked; buffered for every call in
	// flight, so no delete waits to report.
	finished chan deleteOutcome
	inFlight int
	// tried holds the sandboxes sent this run. A failure booked with a short backoff can
	// move a sandbox further down the index while it is being read; it gets one try per
	// run.
	tried map[string]bool
	// resend holds the sandboxes answered 429, to send again before any newer one.
	resend []pool.Sandbox
	// rateLimitedInARow counts 429s answered to deletes started after the last pause they
	// caused: a CSP still refusing after the wait it asked for.
	rateLimitedInARow int
	// stopped: no more deletes start; the calls in flight are still booked.
	stopped bool
	// err is the first error that fails the run.
	err           error
	timesToDelete []time.Duration
}

// deleteOutcome is what one booked delete tells the next starts.
type deleteOutcome struct {
	sandbox pool.Sandbox
	// rateLimited is the CSP's 429, when it answered one: nothing was booked.
	rateLimited *csp.RateLimitedError
	// pausesAtStart is the bucket's pause count when the call started.
	pausesAtStart int
	// stop: no more deletes may start (open breaker, the run's deadline, a rejected
	// token, a wrong endpoint); err, when set, also fails the run.
	stop bool
	err  error
	// timeToDelete is, for a confirmed delete, the time since the sandbox's release.
	timeToDelete time.Duration
}

// probe makes the run's one cheap authenticated listing call (csp.Probe) before any
// delete, and reports whether deletes may start. Only an answer that is a CSP listing
// proves the endpoint right, which is what lets a delete's 404 count as deleted: a wrong
// CSP_BASE_URL answers every delete with 404 (docs/architecture.md §6). Any other answer
// stops the run before it books anything.
func (c *cleanupRun) probe(ctx context.Context) bool {
	if c.run.outOfTime(c.r.cspTimeout + bookingReserve) {
		return false
	}
	callCtx, cancel := c.run.workContext(ctx)
	err := c.r.csp.Probe(callCtx)
	cut := callCtx.Err() != nil
	cancel()
	switch {
	case err == nil:
		return true
	case errors.Is(err, csp.ErrCircuitOpen):
		c.r.stopOnOpenBreaker(c.run)
	case errors.Is(err, csp.ErrWrongEndpoint):
		c.run.alarm(AlarmCSPWrongEndpoint)
		c.fail(fmt.Errorf("the CSP probe says CSP_BASE_URL is not the CSP API; nothing deleted: %w", err))
	case errors.Is(err, csp.ErrTokenRejected):
		c.run.alarm(AlarmCSPTokenRejected)
		c.fail(fmt.Errorf("the CSP rejected the API token; nothing deleted: %w", err))
	case cut:
		c.run.interrupted(ctx)
	default:
		c.fail(fmt.Errorf("the CSP probe failed; nothing deleted: %w", err))
	}
	return false
}

// startDue reads the due sandboxes and starts their deletes until none is left or the run
// stops.
func (c *cleanupRun) startDue(ctx context.Context) {
	next, stopReading := iter.Pull2(c.r.pool.ByStatus(ctx, pool.PendingDeletion, c.r.pool.Now().Unix()))
	defer stopReading()
	for !c.stopped {
		s, ok, err := c.nextToSend(next)
		switch {
		case err != nil:
			c.fail(fmt.Errorf("read due deletions: %w", err))
		case ok:
			if c.awaitStart(ctx); !c.stopped {
				c.start(ctx, s)
			}
		case c.inFlight > 0:
			// A call still in flight may be answered 429 and give its sandbox back.
			c.settle(<-c.finished)
		default:
			return
		}
	}
}

// nextToSend is the next sandbox to delete: one answered 429 first, then the next due one
// of the index not yet tried this run. ok is false when there is none for now.
func (c *cleanupRun) nextToSend(next func() (pool.Sandbox, error, bool)) (s pool.Sandbox, ok bool, err error) {
	if len(c.resend) > 0 {
		s, c.resend = c.resend[0], c.resend[1:]
		return s, true, nil
	}
	for {
		s, err, ok := next()
		if !ok || err != nil {
			return pool.Sandbox{}, false, err
		}
		if !c.tried[s.ID] {
			c.tried[s.ID] = true
			return s, true, nil
		}
	}
}

// awaitStart returns once another delete may start: a slot is free, the bucket has a
// token, the breaker admits a call, and a whole CSP request plus the booking of the
// answers still fits before the run's deadline; or once c.stopped says that none may
// start any more. Outcomes that come in meanwhile are settled.
func (c *cleanupRun) awaitStart(ctx context.Context) {
	for !c.stopped {
		state := c.r.csp.BreakerState()
		switch {
		case c.inFlight >= c.r.cfg.CleanupMaxInFlight,
			// A half-open breaker admits one probe: the next delete waits for its answer,
			// which closes the breaker or opens it again.
			state == breaker.HalfOpen && c.inFlight > 0:
			c.settle(<-c.finished)
			continue
		case c.run.outOfTime(c.bucket.wait() + c.r.cspTimeout + bookingReserve):
			c.stopped = true
			return
		case state == breaker.Open:
			c.r.stopOnOpenBreaker(c.run)
			c.stopped = true
			return
		case ctx.Err() != nil:
			c.run.interrupted(ctx)
			c.stopped = true
			return
		}
		wait := c.bucket.wait()
		if wait <= 0 {
			return
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case out := <-c.finished:
			c.settle(out)
		case <-t.C:
		}
		t.Stop()
	}
}

// start sends one sandbox's delete in its own goroutine, which runs the NIOSXaaS step
// first when it is due (niosxaasStep) and books the answer. The call
// is bounded by the run's work deadline, so that a slow CSP cannot eat the time kept to
// book the answers.
func (c *cleanupRun) start(ctx context.Context, s pool.Sandbox) {
	c.bucket.take()
	c.inFlight++
	pauses := c.bucket.pauses
	go func() {
		s, proceed, out := c.r.niosxaasStep(ctx, c.run, s)
		if proceed {
			callCtx, cancel := c.run.workContext(ctx)
			err := c.r.csp.DeleteAccount(callCtx, s.ExternalID)
			cut := callCtx.Err() != nil
			cancel()
			out = c.r.bookDelete(ctx, c.run, s, err, cut)
		}
		out.pausesAtStart = pauses
		c.finished <- out
	}()
}

// settle takes in one booked delete: its slot is free again, a 429 pauses every start and
// sends the sandbox again, and a stop or an error ends the starts.
func (c *cleanupRun) settle(out deleteOutcome) {
	c.inFlight--
	if out.err != nil {
		c.fail(out.err)
	}
	if out.stop {
		c.stopped = true
	}
	if out.timeToDelete > 0 {
		c.timesToDelete = append(c.timesToDelete, out.timeToDelete)
	}
	if out.rateLimited == nil {
		c.rateLimitedInARow = 0
		return
	}
	c.resend = append(c.resend, out.sandbox)
	// Only a delete started after the last pause proves that waiting did not help; the
	// others were sent before the CSP asked for it.
	if out.pausesAtStart != c.bucket.pauses {
		c.bucket.extend(out.rateLimited.RetryAfter)
		return
	}
	c.bucket.pause(out.rateLimited.RetryAfter)
	if c.rateLimitedInARow++; c.rateLimitedInARow >= maxRateLimitedInARow {
		c.run.stop(fmt.Sprintf("the CSP rate limited %d deletes in a row; the rest is left for the next run", c.rateLimitedInARow))
		c.stopped = true
	}
}

// fail keeps the run's first error (the others go to the summary's examples) and stops
// the starts.
func (c *cleanupRun) fail(err error) {
	if c.err == nil {
		c.err = err
	} else {
		c.run.addError(err)
	}
	c.stopped = true
}
