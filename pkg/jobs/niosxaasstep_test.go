package jobs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/niosxaas"
	"github.com/sandbox-broker/broker/pkg/niosxaas/niosxaasfake"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func service(id, name string) niosxaasfake.Service {
	return niosxaasfake.Service{ID: "universalinfra/universalservice/" + id, Name: name}
}

// stepOn turns the step on with the default client options.
func stepOn(*niosxaas.Options) {}

func (e *jobEnv) setNIOSFaults(t *testing.T, f niosxaasfake.Faults) {
	t.Helper()
	if err := e.nios.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

// assertNoNIOSSecrets fails if the run's logs (the runner's and the client's), its summary
// or any stored sandbox text holds the NIOSXaaS password, email or a jwt (every jwt
// starts with the base64 of `{"`).
func assertNoNIOSSecrets(t *testing.T, e *jobEnv, texts ...string) {
	t.Helper()
	texts = append(texts, e.logs.String(), e.niosLogs.String())
	for _, text := range texts {
		for _, secret := range []string{niosPassword, niosEmail, "eyJ"} {
			if strings.Contains(text, secret) {
				t.Errorf("%q leaked into: %s", secret, text)
			}
		}
	}
}

// stepHistory are the reasons of a sandbox's pending_deletion → pending_deletion entries
// that record the step's outcomes.
func (e *jobEnv) stepHistory(t *testing.T, id string) []string {
	t.Helper()
	h, err := e.pool.History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, entry := range h {
		if entry.From == pool.PendingDeletion && entry.To == pool.PendingDeletion && strings.HasPrefix(entry.Reason, "niosxaas ") {
			reasons = append(reasons, entry.Reason)
		}
	}
	return reasons
}

// TestNIOSXaaSCleansBeforeTheAccountDelete holds every CSP delete at the fake CSP until all
// four are waiting: by then the step must have deleted the matching services of each
// account and kept the others. Its outcome is on the record and in the history, the
// summary counts it, one sign-in serves the run and the next one, and no credential is
// logged.
func TestNIOSXaaSCleansBeforeTheAccountDelete(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(6, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, watchDeletes: true, niosxaas: stepOn})
	two, one, other := accounts[0], accounts[1], accounts[2] // accounts[3] has no service at all
	e.nios.Seed(two.ID, service("a1", niosService), service("a2", niosService), service("a3", "Customer-DNS"))
	e.nios.Seed(one.ID, service("b1", niosService))
	e.nios.Seed(other.ID, service("c1", "Customer-DNS"))
	e.released(t, accounts[:4])
	e.deletes.Hold()
	done := make(chan jobs.Summary, 1)
	go func() {
		sum, _ := e.runner.Run(ctx, "cleanup")
		done <- sum
	}()
	waitCtx := testkit.Patience(t)
	if err := e.deletes.WaitHeld(waitCtx, 4); err != nil {
		t.Fatalf("waiting for the 4 CSP deletes: %v", err)
	}
	// Every account delete has reached the CSP and none is answered yet.
	if got := e.nios.Services(two.ID); len(got) != 1 || got[0].Name != "Customer-DNS" {
		t.Fatalf("at the CSP delete, %s still has %v", two.Name, got)
	}
	if got := e.nios.Services(one.ID); len(got) != 0 {
		t.Fatalf("at the CSP delete, %s still has %v", one.Name, got)
	}
	if got := e.nios.Services(other.ID); len(got) != 1 {
		t.Fatalf("a non-matching service of %s was deleted: %v", other.Name, got)
	}
	e.deletes.ReleaseAll()
	sum := <-done
	wantCounts(t, sum, map[string]int{"deleted": 4, "niosxaas_cleaned": 2, "niosxaas_none": 2, "niosxaas_shadow": 0, "niosxaas_failed": 0})
	want := map[string]struct {
		outcome  string
		services int
		history  string
	}{
		two.ID:         {pool.NIOSXaaSCleaned, 2, "niosxaas cleaned 2"},
		one.ID:         {pool.NIOSXaaSCleaned, 1, "niosxaas cleaned 1"},
		other.ID:       {pool.NIOSXaaSNoneToClean, 0, "niosxaas none_to_clean"},
		accounts[3].ID: {pool.NIOSXaaSNoneToClean, 0, "niosxaas none_to_clean"},
	}
	for _, a := range accounts[:4] {
		s := e.get(t, sandboxID(a))
		w := want[a.ID]
		if s.Status != pool.Deleted || s.NIOSXaaSOutcome != w.outcome || s.NIOSXaaSServices != w.services || s.NIOSXaaSAt == 0 || s.NIOSXaaSFailures != 0 {
			t.Errorf("%s: %+v, want %s %d", a.Name, s, w.outcome, w.services)
		}
		if h := e.stepHistory(t, s.ID); len(h) != 1 || h[0] != w.history {
			t.Errorf("%s: step history %q, want [%q]", a.Name, h, w.history)
		}
	}
	if n := e.nios.Counters().SignIns; n != 1 {
		t.Fatalf("%d sign-ins for one run of 4 sandboxes, want 1", n)
	}

	// The next run reuses the session.
	e.released(t, accounts[4:])
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deleted": 2, "niosxaas_none": 2})
	if n := e.nios.Counters().SignIns; n != 1 {
		t.Fatalf("%d sign-ins over two runs, want 1", n)
	}
	assertNoNIOSSecrets(t, e, strings.Join(sum.Errors, "\n"))
	pooltest.Check(t, e.pool)
}

// TestNIOSXaaSShadowModeDeletesNothing: shadow mode records what it would delete and the
// account delete goes ahead.
func TestNIOSXaaSShadowModeDeletesNothing(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(2, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, niosxaas: func(o *niosxaas.Options) { o.ShadowMode = true }})
	e.nios.Seed(accounts[0].ID, service("a1", niosService), service("a2", niosService), service("a3", "Customer-DNS"))
	e.released(t, accounts)
	sum := e.run(t, "cleanup")
	wantCounts(t, sum, map[string]int{"deleted": 2, "niosxaas_shadow": 1, "niosxaas_none": 1, "niosxaas_cleaned": 0})
	if got := e.nios.Services(accounts[0].ID); len(got) != 3 {
		t.Fatalf("shadow mode deleted services: %v left", got)
	}
	if c := e.nios.Counters(); len(c.Deletes) != 0 {
		t.Fatalf("shadow mode sent service deletes: %v", c.Deletes)
	}
	s := e.get(t, sandboxID(accounts[0]))
	if s.NIOSXaaSOutcome != pool.NIOSXaaSShadow || s.NIOSXaaSServices != 2 {
		t.Fatalf("shadow outcome %+v", s)
	}
	if h := e.stepHistory(t, s.ID); len(h) != 1 || h[0] != "niosxaas shadow 2" {
		t.Fatalf("history %q", h)
	}
	if !e.fake.Deleted(accounts[0].UUID()) {
		t.Fatal("the account was not deleted in shadow mode")
	}
	pooltest.Check(t, e.pool)
}

// TestNIOSXaaSRejectedSessionCostsOneSignIn revokes the session between two runs: the
// second run's concurrent steps share one new sign-in.
func TestNIOSXaaSRejectedSessionCostsOneSignIn(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(7, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, niosxaas: stepOn, jobs: func(c *config.Jobs) { c.CleanupMaxInFlight = 4 }})
	e.released(t, accounts[:1])
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deleted": 1, "niosxaas_none": 1})
	e.nios.RevokeSessions()
	e.released(t, accounts[1:])
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deleted": 6, "niosxaas_none": 6, "niosxaas_failed": 0})
	if n := e.nios.Counters().SignIns; n != 2 {
		t.Fatalf("%d sign-ins, want 2 (one, then one re-login after the revocation)", n)
	}
	pooltest.Check(t, e.pool)
}

// TestNIOSXaaSFailuresAreRetriedThenProceed: each failed step books a failed attempt with
// the delete's backoff and sends no CSP delete; the NIOSXAAS_MAX_ATTEMPTS-th failure books
// no attempt, raises niosxaas_failed and the delete goes ahead, with the failure kept on
// the record. No credential reaches a reason, an error or a log.
func TestNIOSXaaSFailuresAreRetriedThenProceed(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(1, nil)
	a := accounts[0]
	e := newJobEnv(t, envOptions{accounts: accounts, niosxaas: stepOn, niosxaasMaxAttempts: 3})
	e.nios.Seed(a.ID, service("a1", niosService))
	e.released(t, accounts)
	e.setNIOSFaults(t, niosxaasfake.Faults{List: niosxaasfake.Endpoint{Fail: niosxaasfake.Failure{Trigger: niosxaasfake.Trigger{Rate: 1}, Status: 502, Body: niosxaasfake.BodyHTML}}})
	var texts []string
	for failure := 1; failure <= 2; failure++ {
		sum := e.run(t, "cleanup")
		wantCounts(t, sum, map[string]int{"niosxaas_failed": 1, "deleted": 0, "failed": 0})
		if sum.Alarm != "" {
			t.Fatalf("failure %d raised %q", failure, sum.Alarm)
		}
		s := e.get(t, sandboxID(a))
		now := e.clock.Now().Unix()
		if s.Status != pool.PendingDeletion || s.Attempts != failure || s.NIOSXaaSFailures != failure || s.NIOSXaaSOutcome != pool.NIOSXaaSFailed ||
			!strings.Contains(s.NIOSXaaSReason, "HTTP 502") || !strings.HasPrefix(s.LastError, "niosxaas: ") ||
			s.NextAttemptAt < now || s.StatusAt != s.NextAttemptAt {
			t.Fatalf("failure %d booked as %+v", failure, s)
		}
		if len(e.fake.Deletes()) != 0 {
			t.Fatalf("a CSP delete was sent after a failed step")
		}
		// Not due before its backoff: the next run leaves it alone.
		if s.NextAttemptAt > now {
			wantCounts(t, e.run(t, "cleanup"), map[string]int{"niosxaas_failed": 0})
		}
		texts = append(texts, s.NIOSXaaSReason, s.LastError, strings.Join(sum.Errors, "\n"))
		e.clock.Advance(time.Duration(s.NextAttemptAt-now+1) * time.Second)
	}
	sum := e.run(t, "cleanup")
	wantCounts(t, sum, map[string]int{"niosxaas_failed": 1, "deleted": 1})
	if sum.Alarm != jobs.AlarmNIOSXaaSFailed {
		t.Fatalf("the last failure raised %q, want %q", sum.Alarm, jobs.AlarmNIOSXaaSFailed)
	}
	s := e.get(t, sandboxID(a))
	if s.Status != pool.Deleted || s.Attempts != 2 || s.NIOSXaaSFailures != 3 || s.NIOSXaaSOutcome != pool.NIOSXaaSFailed {
		t.Fatalf("after the last failed step: %+v", s)
	}
	if h := e.stepHistory(t, s.ID); len(h) != 3 || !strings.HasPrefix(h[2], "niosxaas failed: ") {
		t.Fatalf("step history %q", h)
	}
	if got := e.nios.Counters().Lists[a.ID]; got != 3 {
		t.Fatalf("%d listings, want 3 (one per failed step)", got)
	}
	assertNoNIOSSecrets(t, e, append(texts, strings.Join(sum.Errors, "\n"))...)
	pooltest.Check(t, e.pool)
}

// TestNIOSXaaSFinishedStepIsNotRepeated: the CSP delete fails after the step cleaned; the
// next run goes straight to the delete.
func TestNIOSXaaSFinishedStepIsNotRepeated(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(1, nil)
	a := accounts[0]
	e := newJobEnv(t, envOptions{accounts: accounts, niosxaas: stepOn})
	e.nios.Seed(a.ID, service("a1", niosService))
	e.released(t, accounts)
	e.setFaults(t, cspfake.Faults{DeleteFail: cspfake.Failure{UUIDs: []string{a.UUID()}}})
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"niosxaas_cleaned": 1, "failed": 1})
	s := e.get(t, sandboxID(a))
	if s.Status != pool.PendingDeletion || s.Attempts != 1 || s.NIOSXaaSOutcome != pool.NIOSXaaSCleaned {
		t.Fatalf("after the failed CSP delete: %+v", s)
	}
	e.setFaults(t, cspfake.Faults{})
	e.clock.Advance(time.Hour)
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deleted": 1, "niosxaas_cleaned": 0, "niosxaas_none": 0})
	c := e.nios.Counters()
	if c.Switches[a.ID] != 1 || c.Lists[a.ID] != 1 {
		t.Fatalf("the finished step ran again: %+v", c)
	}
	if h := e.stepHistory(t, s.ID); len(h) != 1 {
		t.Fatalf("step history %q", h)
	}
	pooltest.Check(t, e.pool)
}

// TestNIOSXaaSNeverSpendsTheLastAttempt: with CLEANUP_MAX_ATTEMPTS (2) not above
// NIOSXAAS_MAX_ATTEMPTS (3), the step gives up when the ledger has room for one attempt
// only, so the CSP delete still gets its try before deletion_failed.
func TestNIOSXaaSNeverSpendsTheLastAttempt(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(1, nil)
	a := accounts[0]
	e := newJobEnv(t, envOptions{accounts: accounts, niosxaas: stepOn, niosxaasMaxAttempts: 3,
		jobs: func(c *config.Jobs) { c.CleanupMaxAttempts = 2 }})
	e.released(t, accounts)
	e.setNIOSFaults(t, niosxaasfake.Faults{Switch: niosxaasfake.Endpoint{Fail: niosxaasfake.Failure{Trigger: niosxaasfake.Trigger{Rate: 1}}}})
	e.setFaults(t, cspfake.Faults{DeleteFail: cspfake.Failure{UUIDs: []string{a.UUID()}}})
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"niosxaas_failed": 1, "failed": 0})
	e.clock.Advance(time.Hour)
	sum := e.run(t, "cleanup")
	wantCounts(t, sum, map[string]int{"niosxaas_failed": 1, "deletion_failed": 1})
	s := e.get(t, sandboxID(a))
	if s.Status != pool.DeletionFailed || s.Attempts != 2 || s.NIOSXaaSFailures != 2 || len(e.fake.Deletes()) != 1 {
		t.Fatalf("%+v after %d CSP deletes", s, len(e.fake.Deletes()))
	}
	pooltest.Check(t, e.pool)
}

// TestNIOSXaaSOpenBreakerStartsNoStep: the step's own breaker (threshold 2) opens after
// two failed account switches; the later sandboxes of the run get a failed step booked
// without any call, and no CSP delete is sent for any of them.
func TestNIOSXaaSOpenBreakerStartsNoStep(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(6, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, niosxaas: func(o *niosxaas.Options) { o.Breaker.Threshold = 2 },
		jobs: func(c *config.Jobs) { c.CleanupMaxInFlight = 1 }})
	e.released(t, accounts)
	e.setNIOSFaults(t, niosxaasfake.Faults{Switch: niosxaasfake.Endpoint{Fail: niosxaasfake.Failure{Trigger: niosxaasfake.Trigger{Rate: 1}, Status: 503}}})
	sum := e.run(t, "cleanup")
	wantCounts(t, sum, map[string]int{"niosxaas_failed": 6, "deleted": 0, "failed": 0})
	switches := 0
	for _, n := range e.nios.Counters().Switches {
		switches += n
	}
	if switches != 2 {
		t.Fatalf("%d account switches, want 2 (the breaker's threshold)", switches)
	}
	open := 0
	for _, a := range accounts {
		s := e.get(t, sandboxID(a))
		if s.Status != pool.PendingDeletion || s.Attempts != 1 || s.NIOSXaaSFailures != 1 {
			t.Fatalf("%s: %+v", a.Name, s)
		}
		if strings.Contains(s.NIOSXaaSReason, "circuit breaker is open") {
			open++
		}
	}
	if open != 4 || len(e.fake.Deletes()) != 0 {
		t.Fatalf("%d steps refused by the open breaker (want 4), %d CSP deletes (want 0)", open, len(e.fake.Deletes()))
	}
	pooltest.Check(t, e.pool)
}

// TestNIOSXaaSInFlightKeepsEveryLedgerRule deletes 45 sandboxes 8 at a time with the step
// on: a third have a service whose delete always fails (a failed step: attempts+1, no CSP
// call), a third have a CSP delete that fails after the step cleaned, the rest are
// cleaned and deleted. Each sandbox is tried once in each fake and booked once.
func TestNIOSXaaSInFlightKeepsEveryLedgerRule(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(45, nil)
	// The CSP's 15 failures must not open its breaker: this test is about the ledger.
	e := newJobEnv(t, envOptions{accounts: accounts, poolPages: 5, watchDeletes: true, niosxaas: stepOn,
		jobs: func(c *config.Jobs) { c.CleanupMaxInFlight = 8 },
		csp:  func(o *csp.Options) { o.Breaker.Threshold = 1000 }})
	var cspFails []cspfake.Account
	var badServices []string
	for i, a := range accounts {
		id := a.UUID()[:8]
		services := []niosxaasfake.Service{service("ok-"+id, niosService), service("kept-"+id, "Customer-DNS")}
		switch i % 3 {
		case 0:
			services = append(services, service("bad-"+id, niosService))
			badServices = append(badServices, "bad-"+id)
		case 1:
			cspFails = append(cspFails, a)
		}
		e.nios.Seed(a.ID, services...)
	}
	e.released(t, accounts)
	e.setNIOSFaults(t, niosxaasfake.Faults{
		Delete: niosxaasfake.Endpoint{Latency: 20 * time.Millisecond, Fail: niosxaasfake.Failure{IDs: badServices, Status: 409}},
	})
	e.setFaults(t, cspfake.Faults{DeleteLatency: 50 * time.Millisecond, DeleteFail: cspfake.Failure{UUIDs: uuids(cspFails)}})
	sum := e.run(t, "cleanup")
	t.Logf("counts %v; peak %d CSP deletes in flight", sum.Counts, e.deletes.Peak())
	wantCounts(t, sum, map[string]int{"deleted": 15, "failed": 15, "niosxaas_failed": 15, "niosxaas_cleaned": 30, "conflicts": 0})
	if peak := e.deletes.Peak(); peak > 8 {
		t.Fatalf("peak %d deletes in flight", peak)
	}
	tries := answersByUUID(e)
	lists := e.nios.Counters().Lists
	for i, a := range accounts {
		s := e.get(t, sandboxID(a))
		if lists[a.ID] != 1 {
			t.Fatalf("%s: step ran %d times", a.Name, lists[a.ID])
		}
		switch i % 3 {
		case 0:
			if tries[a.UUID()] != 0 || s.Status != pool.PendingDeletion || s.Attempts != 1 || s.NIOSXaaSOutcome != pool.NIOSXaaSFailed {
				t.Fatalf("failed step of %s: %d CSP tries, %+v", a.Name, tries[a.UUID()], s)
			}
		case 1:
			if tries[a.UUID()] != 1 || s.Status != pool.PendingDeletion || s.Attempts != 1 || s.NIOSXaaSOutcome != pool.NIOSXaaSCleaned {
				t.Fatalf("failed CSP delete of %s: %d tries, %+v", a.Name, tries[a.UUID()], s)
			}
		default:
			if tries[a.UUID()] != 1 || s.Status != pool.Deleted || s.NIOSXaaSOutcome != pool.NIOSXaaSCleaned {
				t.Fatalf("%s: %d tries, %+v", a.Name, tries[a.UUID()], s)
			}
		}
		if left := e.nios.Services(a.ID); len(left) != 1+btoi(i%3 == 0) || left[0].Name != "Customer-DNS" {
			t.Fatalf("%s: services left %v (want the non-matching one, and the one that failed)", a.Name, left)
		}
	}
	pooltest.Check(t, e.pool)
}
