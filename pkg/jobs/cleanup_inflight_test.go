package jobs_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// answersByUUID counts the CSP's answers other than 429 per account: the tries.
func answersByUUID(e *jobEnv) map[string]int {
	tries := map[string]int{}
	for _, d := range e.fake.Deletes() {
		if d.Status != http.StatusTooManyRequests {
			tries[d.UUID]++
		}
	}
	return tries
}

func rateLimitedAnswers(e *jobEnv) int {
	n := 0
	for _, d := range e.fake.Deletes() {
		if d.Status == http.StatusTooManyRequests {
			n++
		}
	}
	return n
}

// pacedLimiterClock is the clock of a fake CSP's delete rate limiter in a test that must
// reach the limiter however fast the machine runs: it moves by gap with every delete the
// client sends (the runner's pace, whatever the real one), and by the Retry-After of every
// 429 the client receives (a client that waits as told finds a token). The limiter's
// answers then depend on the order of the calls, not on their timing.
type pacedLimiterClock struct {
	*testkit.Clock
	gap  time.Duration
	next http.RoundTripper
}

func (c pacedLimiterClock) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodDelete {
		c.Advance(c.gap)
	}
	resp, err := c.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		secs, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		c.Advance(time.Duration(secs) * time.Second)
	}
	return resp, err
}

// TestCleanupInFlightKeepsEveryLedgerRule deletes 60 sandboxes 8 at a time while the CSP
// answers 200 to 40, 500 to 20 and 429 to whatever outruns its limiter (20/s, burst 16,
// against 100 starts/s on the limiter's own clock, pacedLimiterClock). Each sandbox must be
// booked exactly as one-at-a-time cleanup books it: deleted; attempts+1 with the next
// attempt after its backoff; deletion_failed on the last allowed attempt; and nothing for a
// 429. The backoffs are scaled below a second, so every failure is due again at once,
// further down the index the run is still paging through: it must not be tried a second
// time.
//
// Nothing here depends on timing: the limiter is outrun within its first 24 deletes; a
// burst of at least twice the deletes in flight lets a delete started after a 429's pause
// succeed and settle before the next one can be refused, so the run never stops on 429s in
// a row; the breaker's threshold is above the 20 failures, which may settle in any order;
// and the first delete is held until a second one is in flight.
func TestCleanupInFlightKeepsEveryLedgerRule(t *testing.T) {
	t.Parallel()
	const maxInFlight = 8
	accounts := cspfake.Generate(60, nil)
	limiterClock := pacedLimiterClock{Clock: testkit.NewClock(t0), gap: 10 * time.Millisecond, next: http.DefaultTransport}
	e := newJobEnv(t, envOptions{accounts: accounts, poolPages: 5, watchDeletes: true, fakeClock: limiterClock.Clock,
		jobs: func(c *config.Jobs) {
			c.CleanupMaxInFlight = maxInFlight
			c.IntervalScale = 0.001
		},
		csp: func(o *csp.Options) {
			o.HTTPClient = &http.Client{Transport: limiterClock}
			o.Breaker.Threshold = 21
		},
	})
	e.released(t, accounts)
	// Every third sandbox fails: the first 8 of them are on their last allowed attempt
	// (5 of 6 used), the other 12 have 0 or 2 failures behind them.
	var failing []cspfake.Account
	prior := map[string]int{}
	for i := 0; i < len(accounts); i += 3 {
		failing = append(failing, accounts[i])
	}
	for i, a := range failing {
		n := []int{0, 2}[i%2]
		if i < 8 {
			n = e.cfg.CleanupMaxAttempts - 1
		}
		s := e.get(t, sandboxID(a))
		for range n {
			var err error
			if s, err = e.pool.RecordDeleteFailure(ctx, s, t0.Unix(), "HTTP 500 earlier", cleanupActor); err != nil {
				t.Fatal(err)
			}
		}
		prior[sandboxID(a)] = n
	}
	e.clock.Advance(10 * time.Minute)
	now := e.clock.Now().Unix()
	e.setFaults(t, cspfake.Faults{
		DeleteLatency: 50 * time.Millisecond, DeleteFail: cspfake.Failure{UUIDs: uuids(failing)},
		DeleteRateLimit: 20, DeleteBurst: 2 * maxInFlight,
	})
	e.deletes.Hold()
	go func() {
		if e.deletes.WaitHeld(ctx, 2) == nil {
			e.deletes.ReleaseAll()
		}
	}()

	sum := e.run(t, "cleanup")
	limited := rateLimitedAnswers(e)
	t.Logf("counts %v; peak %d in flight", sum.Counts, e.deletes.Peak())
	if limited == 0 {
		t.Fatal("the CSP answered no 429: the scenario did not reach its limiter")
	}
	if sum.Outcome != jobs.OutcomeOK || sum.Alarm != jobs.AlarmDeletionFailed {
		t.Fatalf("summary %+v", sum)
	}
	wantCounts(t, sum, map[string]int{"deleted": 40, "failed": 12, "deletion_failed": 8, "rate_limited": limited, "conflicts": 0})
	if peak := e.deletes.Peak(); peak > maxInFlight || peak < 2 {
		t.Fatalf("peak %d deletes in flight, want 2..%d", peak, maxInFlight)
	}
	tries := answersByUUID(e)
	for _, a := range accounts {
		if tries[a.UUID()] != 1 {
			t.Fatalf("%s was tried %d times in one run", a.Name, tries[a.UUID()])
		}
		n, failed := prior[sandboxID(a)]
		switch {
		case !failed:
			if !e.deletedIn(t, a) || !e.fake.Deleted(a.UUID()) {
				t.Fatalf("%s not deleted in both the pool and the CSP", a.Name)
			}
		case n == e.cfg.CleanupMaxAttempts-1:
			if s := e.get(t, sandboxID(a)); s.Status != pool.DeletionFailed || s.Attempts != n+1 || !strings.Contains(s.LastError, "HTTP 500") {
				t.Fatalf("last attempt of %s: %+v", a.Name, s)
			}
		default:
			// The scaled backoff is below a second: due again in the same second.
			s := e.get(t, sandboxID(a))
			if s.Status != pool.PendingDeletion || s.Attempts != n+1 || s.NextAttemptAt != now || s.StatusAt != now ||
				!strings.Contains(s.LastError, "HTTP 500") {
				t.Fatalf("failure %d of %s booked as %+v (want attempts %d, next attempt %d)", n+1, a.Name, s, n+1, now)
			}
		}
	}
	pooltest.Check(t, e.pool)
}

// TestCleanupBreakerOpeningMidRunBooksEveryCallInFlight holds every delete at the fake CSP
// until 8 are in flight (the most allowed), then lets the five failures through that open
// the breaker while the others are still in flight. Those finish after the open and must
// be booked; nothing may start after it.
func TestCleanupBreakerOpeningMidRunBooksEveryCallInFlight(t *testing.T) {
	t.Parallel()
	const maxInFlight = 8
	accounts := cspfake.Generate(30, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, watchDeletes: true, jobs: func(c *config.Jobs) { c.CleanupMaxInFlight = maxInFlight }})
	e.released(t, accounts)
	e.setFaults(t, cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}, Status: 503}})
	e.deletes.Hold()
	done := make(chan jobs.Summary, 1)
	go func() {
		sum, _ := e.runner.Run(ctx, "cleanup")
		done <- sum
	}()
	waitCtx := testkit.Patience(t)
	if err := e.deletes.WaitHeld(waitCtx, maxInFlight); err != nil {
		t.Fatalf("waiting for %d deletes in flight: %v", maxInFlight, err)
	}
	e.deletes.Release(5) // the breaker's threshold
	for e.csp.BreakerState() != breaker.Open {
		select {
		case <-waitCtx.Done():
			t.Fatal("the breaker never opened")
		case <-time.After(time.Millisecond):
		}
	}
	sentAtOpen := len(e.deletes.Arrivals())
	e.deletes.ReleaseAll()
	sum := <-done

	if sum.Outcome != jobs.OutcomePartial || sum.Alarm != jobs.AlarmCleanupBreakerOpen || !strings.Contains(sum.Reason, "circuit breaker is open") {
		t.Fatalf("summary %+v", sum)
	}
	if sent := len(e.deletes.Arrivals()); sent != sentAtOpen {
		t.Fatalf("%d deletes sent after the breaker opened", sent-sentAtOpen)
	}
	if sentAtOpen-5 < maxInFlight-5 {
		t.Fatalf("only %d deletes were in flight when the breaker opened", sentAtOpen-5)
	}
	t.Logf("%d deletes sent, %d of them still in flight when the breaker opened", sentAtOpen, sentAtOpen-5)
	for _, r := range e.fake.Requests() {
		if r.Status == 0 {
			t.Fatalf("a delete was left without its answer: %+v", r)
		}
	}
	wantCounts(t, sum, map[string]int{"failed": sentAtOpen, "deleted": 0})
	tries := answersByUUID(e)
	booked := 0
	for _, a := range accounts {
		s := e.get(t, sandboxID(a))
		switch {
		case tries[a.UUID()] == 1 && s.Attempts == 1 && strings.Contains(s.LastError, "HTTP 503"):
			booked++
		case tries[a.UUID()] == 0 && s.Attempts == 0 && s.LastError == "":
		default:
			t.Fatalf("%s: %d tries, booked as %+v", a.Name, tries[a.UUID()], s)
		}
	}
	if booked != sentAtOpen {
		t.Fatalf("%d failures booked for %d deletes sent", booked, sentAtOpen)
	}
	if peak := e.deletes.Peak(); peak > maxInFlight {
		t.Fatalf("peak %d deletes in flight, above %d", peak, maxInFlight)
	}
	pooltest.Check(t, e.pool)
}

// TestCleanupRateLimitPausesEveryStart sends 12 deletes, 8 at a time, at a CSP that admits
// 4 per second (burst 4) after 200 ms each: every round of starts outruns it. After each
// 429 the CSP answers, no delete may reach it until its Retry-After has passed, from any
// of the calls, except those started before the runner had the 429 in hand (allowed for
// by reaction). No 429 is charged to a sandbox.
func TestCleanupRateLimitPausesEveryStart(t *testing.T) {
	t.Parallel()
	const reaction = 300 * time.Millisecond
	accounts := cspfake.Generate(12, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, watchDeletes: true, jobs: func(c *config.Jobs) { c.CleanupMaxInFlight = 8 }})
	e.released(t, accounts)
	e.setFaults(t, cspfake.Faults{DeleteLatency: 200 * time.Millisecond, DeleteRateLimit: 4, DeleteBurst: 4})

	sum := e.run(t, "cleanup")
	limited := e.deletes.RateLimited()
	if len(limited) == 0 {
		t.Fatal("the CSP answered no 429: the scenario did not reach its limiter")
	}
	wantCounts(t, sum, map[string]int{"deleted": len(accounts), "failed": 0, "rate_limited": len(limited)})
	arrivals := e.deletes.Arrivals()
	for _, l := range limited {
		for _, a := range arrivals {
			if a.After(l.At.Add(reaction)) && a.Before(l.At.Add(l.RetryAfter)) {
				t.Fatalf("a delete arrived %s after a 429 that asked for %s", a.Sub(l.At), l.RetryAfter)
			}
		}
	}
	t.Logf("%d deletes sent, %d answered 429, peak %d in flight", len(arrivals), len(limited), e.deletes.Peak())
	for _, a := range accounts {
		hist, err := e.pool.History(ctx, sandboxID(a))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hist {
			if h.From == pool.PendingDeletion && h.To == pool.PendingDeletion {
				t.Fatalf("%s: a 429 was booked as a failed attempt: %+v", a.Name, h)
			}
		}
	}
	pooltest.Check(t, e.pool)
}

// TestCleanupPublishesTimeToDelete releases sandboxes at two moments and checks that each
// confirmed delete, and only those, is published with its time since release.
func TestCleanupPublishesTimeToDelete(t *testing.T) {
	accounts := cspfake.Generate(5, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	e.released(t, accounts[:3])
	e.clock.Advance(30 * time.Second)
	e.released(t, accounts[3:])
	e.clock.Advance(60 * time.Second)
	e.setFaults(t, cspfake.Faults{DeleteFail: cspfake.Failure{UUIDs: []string{accounts[0].UUID()}}})
	metrics := &recordedMetrics{}
	runner, err := jobs.NewRunner(jobs.Deps{Pool: e.pool, CSP: e.csp, PoolConfig: poolCfg, Config: e.cfg, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := runner.Run(ctx, "cleanup")
	if err != nil {
		t.Fatal(err)
	}
	wantCounts(t, sum, map[string]int{"deleted": 4, "failed": 1})
	counts := map[time.Duration]int{}
	for _, d := range metrics.timesToDelete {
		counts[d]++
	}
	if len(metrics.timesToDelete) != 4 || counts[90*time.Second] != 2 || counts[60*time.Second] != 2 {
		t.Fatalf("times to delete %v, want 90 s twice and 60 s twice", metrics.timesToDelete)
	}
	pooltest.Check(t, e.pool)
}
