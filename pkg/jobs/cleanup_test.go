package jobs_test

import (
	"context"
	"math/rand/v2"
	"net/http"
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

// deletedIn reports whether the sandbox's item is gone from the pool.
// deletedIn reports whether the pool booked the account's delete: its record is a deleted
// tombstone.
func (e *jobEnv) deletedIn(t *testing.T, a cspfake.Account) bool {
	t.Helper()
	return e.get(t, sandboxID(a)).Status == pool.Deleted
}

func uuids(accounts []cspfake.Account) []string {
	out := make([]string, len(accounts))
	for i, a := range accounts {
		out[i] = a.UUID()
	}
	return out
}

func TestCleanupDeletesDueSandboxesOldestFirst(t *testing.T) {
	accounts := cspfake.Generate(6, nil)
	// Query pages of 2 items: the due list is read to its end (docs/upstream.md D10). One delete at a time,
	// so the order the CSP sees is the order they were started in.
	e := newJobEnv(t, envOptions{accounts: accounts, poolPages: 2, jobs: func(c *config.Jobs) { c.CleanupMaxInFlight = 1 }})
	for _, a := range accounts {
		e.released(t, []cspfake.Account{a})
		e.clock.Advance(time.Minute)
	}
	// accounts[4] failed once already and is not due for two hours; accounts[5] is
	// already gone upstream, so its delete answers 404.
	notDue := e.get(t, sandboxID(accounts[4]))
	notDue, err := e.pool.RecordDeleteFailure(ctx, notDue, t0.Add(2*time.Hour).Unix(), "HTTP 500", cleanupActor)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.csp.DeleteAccount(ctx, accounts[5].ID); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(10 * time.Minute)

	sum := e.run(t, "cleanup")
	if sum.Outcome != jobs.OutcomeOK {
		t.Fatalf("summary %+v", sum)
	}
	wantCounts(t, sum, map[string]int{"deleted": 5, "failed": 0})
	var order []string
	for _, d := range e.fake.Deletes()[1:] {
		order = append(order, d.UUID)
	}
	want := uuids([]cspfake.Account{accounts[0], accounts[1], accounts[2], accounts[3], accounts[5]})
	if strings.Join(order, ",") != strings.Join(want, ",") {
		t.Fatalf("deletes in order\n%v\nwant oldest first\n%v", order, want)
	}
	for i, a := range accounts {
		if i != 4 && (!e.deletedIn(t, a) || !e.fake.Deleted(a.UUID())) {
			t.Fatalf("%s not deleted in both the pool and the CSP", a.Name)
		}
	}
	if got := e.get(t, notDue.ID); got != notDue {
		t.Fatalf("a sandbox not due was touched: %+v", got)
	}
	hist, err := e.pool.History(ctx, sandboxID(accounts[0]))
	if err != nil || len(hist) == 0 || hist[0].To != pool.Deleted || hist[0].Actor != "cleanup" || hist[0].RequestID != sum.RunID {
		t.Fatalf("history of a deleted sandbox: %+v, %v", hist, err)
	}
	pooltest.Check(t, e.pool)
}

// TestCleanupSurvivesThe62ErrorIncident replays the upstream incident of 2025-11-18
// (docs/upstream.md): 100 sandboxes pending deletion while the CSP answers HTTP 500 — with the
// license service's HTML page in the first window — to 62 of them for two runs, then
// recovers. Upstream, every failure was terminal (docs/upstream.md D4); here none may be. With the default
// breaker a run stops at the fifth failure in a row; with a breaker that never opens every
// one of the 62 is booked twice and retried.
func TestCleanupSurvivesThe62ErrorIncident(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name      string
		threshold int
	}{{"breaker opens after 5", 5}, {"breaker never opens", 1000}} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			accounts := cspfake.Generate(100, nil)
			e := newJobEnv(t, envOptions{accounts: accounts, csp: func(o *csp.Options) { o.Breaker.Threshold = tt.threshold }})
			e.released(t, accounts)
			shuffled := append([]cspfake.Account{}, accounts...)
			rand.New(rand.NewPCG(62, 62)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			failing := uuids(shuffled[:62])
			incident := []cspfake.Faults{
				{DeleteFail: cspfake.Failure{UUIDs: failing, Body: cspfake.BodyHTML}},
				{DeleteFail: cspfake.Failure{UUIDs: failing, Body: cspfake.BodyJSON}},
			}

			runs, failures := 0, 0
			for e.count(t, pool.PendingDeletion) > 0 {
				if runs == 10 {
					t.Fatalf("%d sandboxes still pending after 10 runs", e.count(t, pool.PendingDeletion))
				}
				faults := cspfake.Faults{}
				if runs < len(incident) {
					faults = incident[runs]
				}
				e.setFaults(t, faults)
				sum := e.run(t, "cleanup")
				runs++
				failures += sum.Counts["failed"]
				t.Logf("run %d (CSP %s): %v, outcome %s %s", runs, map[bool]string{true: "failing", false: "healthy"}[runs <= len(incident)],
					sum.Counts, sum.Outcome, sum.Reason)
				if n := e.count(t, pool.DeletionFailed); n != 0 {
					t.Fatalf("run %d: %d sandboxes reached deletion_failed during a transient outage", runs, n)
				}
				if runs == 1 {
					checkHTMLFailureRecorded(t, e, failing)
				}
				// The next run comes when every backoff is over and the breaker admits a probe.
				e.clock.Advance(time.Hour)
			}
			t.Logf("all 100 deleted after %d runs; %d delete failures booked and retried on the way", runs, failures)
			if tt.threshold > 100 && failures != 2*62 {
				t.Fatalf("%d failures booked, want each of the 62 twice", failures)
			}
			if failures == 0 {
				t.Fatal("the incident booked no failure: the scenario did not reach the failing sandboxes")
			}
			for _, a := range accounts {
				if !e.fake.Deleted(a.UUID()) || !e.deletedIn(t, a) {
					t.Fatalf("%s not deleted", a.Name)
				}
			}
			pooltest.Check(t, e.pool)
		})
	}
}

// checkHTMLFailureRecorded finds a booked failure and checks that its last_error keeps the
// CSP's message, reduced to text.
func checkHTMLFailureRecorded(t *testing.T, e *jobEnv, failing []string) {
	t.Helper()
	for s, err := range e.pool.ByStatus(ctx, pool.PendingDeletion, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if s.Attempts == 0 {
			continue
		}
		if !strings.Contains(s.LastError, "HTTP 500") || !strings.Contains(s.LastError, "unable to get licenses") ||
			strings.Contains(s.LastError, "<html") || s.Attempts != 1 || s.NextAttemptAt < t0.Unix() ||
			s.NextAttemptAt > t0.Add(time.Minute).Unix() || !strings.Contains(strings.Join(failing, ","), s.ExternalID[len("identity/accounts/"):]) {
			t.Fatalf("booked failure: %+v", s)
		}
		return
	}
	t.Fatal("the first incident run booked no failure")
}

func TestCleanupStopsWhenTheBreakerOpens(t *testing.T) {
	accounts := cspfake.Generate(20, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	e.released(t, accounts)
	before := map[string]pool.Sandbox{}
	for _, a := range accounts {
		before[sandboxID(a)] = e.get(t, sandboxID(a))
	}
	e.setFaults(t, cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}, Status: 503}})

	sum := e.run(t, "cleanup")
	if sum.Outcome != jobs.OutcomePartial || sum.Alarm != jobs.AlarmCleanupBreakerOpen || !strings.Contains(sum.Reason, "circuit breaker is open") {
		t.Fatalf("summary %+v", sum)
	}
	// The fifth failure opens the breaker; deletes started before its answer came back
	// are answered too, and booked.
	sent := len(e.fake.Deletes())
	wantCounts(t, sum, map[string]int{"failed": sent, "deleted": 0})
	if sent < 5 {
		t.Fatalf("CSP got %d deletes, want at least the 5 that opened the breaker", sent)
	}
	booked, untouched := 0, 0
	for _, a := range accounts {
		s := e.get(t, sandboxID(a))
		switch {
		case s.Attempts == 1 && strings.Contains(s.LastError, "HTTP 503"):
			booked++
		case s == before[s.ID]:
			untouched++
		default:
			t.Fatalf("sandbox neither booked nor untouched: %+v", s)
		}
	}
	if booked != sent || untouched != 20-sent {
		t.Fatalf("%d booked, %d untouched; want %d and %d", booked, untouched, sent, 20-sent)
	}

	// While the breaker is open, a run sends nothing and books nothing.
	sum = e.run(t, "cleanup")
	if sum.Outcome != jobs.OutcomePartial || sum.Alarm != jobs.AlarmCleanupBreakerOpen || len(e.fake.Deletes()) != sent {
		t.Fatalf("run with the breaker open: %+v, %d deletes", sum, len(e.fake.Deletes()))
	}

	// The CSP recovers; once the breaker admits a probe and the backoffs are over,
	// everything goes.
	e.setFaults(t, cspfake.Faults{})
	e.clock.Advance(time.Hour)
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deleted": 20})
	if e.csp.BreakerState() != breaker.Closed {
		t.Fatalf("breaker %s after a healthy run", e.csp.BreakerState())
	}
	pooltest.Check(t, e.pool)
}

func TestCleanupGivesUpAfterMaxAttempts(t *testing.T) {
	accounts := cspfake.Generate(3, nil)
	broken := accounts[0]
	e := newJobEnv(t, envOptions{accounts: accounts, jobs: func(c *config.Jobs) { c.CleanupMaxAttempts = 4 }})
	e.released(t, accounts[:2])
	// An external ID whose account UUID is a dot segment can never be deleted: no retries.
	bad := pool.Account{ID: "9999", Name: "lab-bad", ExternalID: "identity/accounts/.."}
	if _, err := e.pool.Create(ctx, bad, syncJob); err != nil {
		t.Fatal(err)
	}
	s := e.get(t, bad.ID)
	if _, err := e.pool.Claim(ctx, s, pool.Claim{Student: "bob", IdempotencyKey: "bob", AllocatedAt: t0.Unix(), ExpiresAt: t0.Add(time.Hour).Unix()}, pool.Actor{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Release(ctx, e.get(t, bad.ID), pool.Holder{Student: "bob"}, pool.Actor{}); err != nil {
		t.Fatal(err)
	}
	e.setFaults(t, cspfake.Faults{DeleteFail: cspfake.Failure{UUIDs: []string{broken.UUID()}, Body: cspfake.BodyGarbage}})

	sum := e.run(t, "cleanup")
	wantCounts(t, sum, map[string]int{"deleted": 1, "failed": 1, "deletion_failed": 1})
	if got := e.get(t, bad.ID); got.Status != pool.DeletionFailed || !strings.Contains(got.LastError, "invalid external id") {
		t.Fatalf("unusable external ID: %+v", got)
	}

	// Each failure waits a full-jitter backoff: attempt k is due within base·2^(k-1).
	for attempt := 1; attempt < 4; attempt++ {
		s := e.get(t, sandboxID(broken))
		window := time.Minute << (attempt - 1)
		now := e.clock.Now()
		if s.Status != pool.PendingDeletion || s.Attempts != attempt || s.NextAttemptAt < now.Unix() ||
			s.NextAttemptAt > now.Add(window).Unix() || s.StatusAt != s.NextAttemptAt || s.LastError == "" {
			t.Fatalf("after failure %d at %d: %+v (want next attempt within %s)", attempt, now.Unix(), s, window)
		}
		if s.NextAttemptAt > now.Unix() {
			e.clock.Advance(time.Duration(s.NextAttemptAt-now.Unix()-1) * time.Second)
			sent := len(e.fake.Deletes())
			wantCounts(t, e.run(t, "cleanup"), map[string]int{"failed": 0})
			if len(e.fake.Deletes()) != sent {
				t.Fatalf("a sandbox was retried a second before its next attempt")
			}
			e.clock.Advance(time.Second)
		}
		sum = e.run(t, "cleanup")
	}
	got := e.get(t, sandboxID(broken))
	if got.Status != pool.DeletionFailed || got.Attempts != 4 || !strings.Contains(got.LastError, "HTTP 500") {
		t.Fatalf("after the last attempt: %+v", got)
	}
	if sum.Alarm != jobs.AlarmDeletionFailed {
		t.Fatalf("last run raised %q, want %q", sum.Alarm, jobs.AlarmDeletionFailed)
	}
	wantCounts(t, sum, map[string]int{"deletion_failed": 1})
	e.clock.Advance(24 * time.Hour)
	sent := len(e.fake.Deletes())
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deletion_failed": 0, "failed": 0})
	if len(e.fake.Deletes()) != sent {
		t.Fatal("cleanup retried a deletion_failed sandbox")
	}
	pooltest.Check(t, e.pool)
}

// TestCleanupStopsBeforeItsDeadline runs cleanup with too little time for all its work,
// deletes in flight: a delete starts only while a whole request timeout and the booking
// are left, so every delete sent is answered and booked before the run stops. At 3 starts
// a second, 20 s cannot hold the 75 deletes however fast the machine, and leave 19 s to
// read what is due and start the first however slow. Whether the run also returned
// before its deadline depends on the machine's speed, so it is logged, not asserted.
func TestCleanupStopsBeforeItsDeadline(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(75, nil)
	e := newJobEnv(t, envOptions{
		accounts: accounts,
		csp:      func(o *csp.Options) { o.RequestTimeout = 500 * time.Millisecond },
		jobs:     func(c *config.Jobs) { c.DeletesPerSecond = 3 },
	})
	e.released(t, accounts)
	e.setFaults(t, cspfake.Faults{DeleteLatency: 200 * time.Millisecond})

	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	deadline, _ := short.Deadline()
	sum, err := e.runner.Run(short, "cleanup")
	if err != nil {
		t.Fatal(err)
	}
	deleted := sum.Counts["deleted"]
	if sum.Outcome != jobs.OutcomePartial || !strings.Contains(sum.Reason, "deadline") || deleted == 0 || deleted >= len(accounts) {
		t.Fatalf("summary %+v", sum)
	}
	t.Logf("a 20 s run with 200 ms deletes, 3 starts/s and a 500 ms request timeout deleted %d of %d in %d ms and returned %s before its deadline",
		deleted, len(accounts), sum.DurationMS, time.Until(deadline).Round(time.Millisecond))
	// Every delete sent was answered, and every answer booked.
	if sent := len(e.fake.Deletes()); sent != deleted {
		t.Fatalf("the CSP answered %d deletes, the run booked %d", sent, deleted)
	}
	for _, r := range e.fake.Requests() {
		if r.Status == 0 {
			t.Fatalf("a delete was left unanswered: %+v", r)
		}
	}
	// Nothing was cut half-way: a sandbox is deleted in both places or untouched in both.
	for _, a := range accounts {
		if e.fake.Deleted(a.UUID()) != e.deletedIn(t, a) {
			t.Fatalf("%s: deleted upstream %v, in the pool %v", a.Name, e.fake.Deleted(a.UUID()), e.deletedIn(t, a))
		}
		if !e.deletedIn(t, a) {
			if s := e.get(t, sandboxID(a)); s.Attempts != 0 || s.LastError != "" {
				t.Fatalf("the deadline was booked as a failure: %+v", s)
			}
		}
	}

	next := testkit.Patience(t)
	sum, err = e.runner.Run(next, "cleanup")
	if err != nil || sum.Outcome != jobs.OutcomeOK || sum.Counts["deleted"] != len(accounts)-deleted {
		t.Fatalf("next run: %+v, %v", sum, err)
	}
	pooltest.Check(t, e.pool)
}

// TestCleanupKeepsToTheCSPRateLimit paces deletes at the CSP's own limit (a token bucket of
// 5 per second, burst 1): the deletes the CSP accepted never came closer than its limit.
// The share of the limit reached is logged here and measured by cmd/cleanupbench: on a
// loaded machine it depends on the scheduler, which a test must not assert on.
func TestCleanupKeepsToTheCSPRateLimit(t *testing.T) {
	t.Parallel()
	const limit = 5.0
	accounts := cspfake.Generate(25, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, jobs: func(c *config.Jobs) { c.DeletesPerSecond = limit }})
	e.released(t, accounts)
	e.setFaults(t, cspfake.Faults{DeleteRateLimit: limit, DeleteBurst: 1})

	sum := e.run(t, "cleanup")
	wantCounts(t, sum, map[string]int{"deleted": len(accounts), "failed": 0})
	accepted := e.fake.AcceptedDeletes()
	if len(accepted) != len(accounts) {
		t.Fatalf("CSP accepted %d deletes, want %d", len(accepted), len(accounts))
	}
	span := accepted[len(accepted)-1].Sub(accepted[0])
	rate := float64(len(accepted)-1) / span.Seconds()
	closest := span
	for i := 1; i < len(accepted); i++ {
		closest = min(closest, accepted[i].Sub(accepted[i-1]))
	}
	t.Logf("achieved %.2f deletes/s = %.1f%% of the CSP's %.0f/s; closest spacing %s; %d answered 429",
		rate, 100*rate/limit, limit, closest, sum.Counts["rate_limited"])
	if rate > limit || closest < time.Duration(float64(time.Second)/limit) {
		t.Fatalf("cleanup outran its configured pace: %.2f/s, closest spacing %s", rate, closest)
	}
}

// TestCleanupRateLimitedIsNotAFailure paces deletes faster than the CSP allows: the 429s
// are waited out and retried in the same run, and no sandbox is charged an attempt.
func TestCleanupRateLimitedIsNotAFailure(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(4, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, jobs: func(c *config.Jobs) { c.DeletesPerSecond = 20 }})
	e.released(t, accounts)
	e.setFaults(t, cspfake.Faults{DeleteRateLimit: 3, DeleteBurst: 1})

	sum := e.run(t, "cleanup")
	refused := 0
	for _, d := range e.fake.Deletes() {
		if d.Status == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 || sum.Counts["rate_limited"] != refused {
		t.Fatalf("CSP refused %d deletes, run counted %d", refused, sum.Counts["rate_limited"])
	}
	wantCounts(t, sum, map[string]int{"deleted": len(accounts), "failed": 0})
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

	// A CSP that asks for a wait longer than the run has left ends the run; the sandboxes
	// left are untouched, not charged. (The run needs a request timeout and the booking
	// reserve left to start a delete: 2 s + 1 s, before the 0.5 s kept to finish.) Its
	// limiter admits one delete per 100 s: one, whatever the machine's speed, in a run of
	// 30 s, which leaves 26 s to start it.
	more := cspfake.Generate(8, nil)[4:]
	e.fake.Seed(more...)
	e.released(t, more)
	e.setFaults(t, cspfake.Faults{DeleteRateLimit: 0.01, DeleteBurst: 1})
	sentBefore := len(e.fake.Deletes())
	short, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	sum, err := e.runner.Run(short, "cleanup")
	if err != nil || sum.Outcome != jobs.OutcomePartial || !strings.Contains(sum.Reason, "deadline") {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	refused = 0
	for _, d := range e.fake.Deletes()[sentBefore:] {
		if d.Status == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("the CSP refused nothing: the scenario did not rate limit")
	}
	wantCounts(t, sum, map[string]int{"deleted": 1, "rate_limited": refused, "failed": 0})
	for _, a := range more {
		if s, err := e.pool.Get(ctx, sandboxID(a)); err == nil && (s.Attempts != 0 || s.LastError != "") {
			t.Fatalf("rate limiting charged an attempt: %+v", s)
		}
	}
}

func TestCleanupRejectedTokenBlamesNoSandbox(t *testing.T) {
	accounts := cspfake.Generate(3, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, csp: func(o *csp.Options) { o.Token = "revoked-token" }})
	e.released(t, accounts)
	sum, err := e.runner.Run(ctx, "cleanup")
	if err == nil || sum.Outcome != jobs.OutcomeFailed || sum.Alarm != jobs.AlarmCSPTokenRejected || !strings.Contains(sum.Reason, "HTTP 401") {
		t.Fatalf("summary %+v, %v", sum, err)
	}
	if n := len(e.fake.Deletes()); n != 0 {
		t.Fatalf("the fake recorded %d authorised deletes", n)
	}
	for _, a := range accounts {
		if s := e.get(t, sandboxID(a)); s.Attempts != 0 || s.LastError != "" {
			t.Fatalf("a rejected token was booked on %s: %+v", s.ID, s)
		}
	}
}
