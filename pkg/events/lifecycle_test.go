package events_test

import (
	"fmt"
	"github.com/sandbox-broker/broker/pkg/breaker"
	"slices"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/events"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

var poolCfg = config.Pool{LabDuration: 48 * time.Hour, Grace: 30 * time.Minute, LabExtension: 24 * time.Hour, MaxLabDuration: 96 * time.Hour}

// world is the broker around a bus: the fake CSP, the use cases and the real job runner.
type world struct {
	*bus
	csp    *cspfake.Server
	broker *broker.Broker
	runner *jobs.Runner
	// accounts are what the fake CSP lists, in order.
	accounts []cspfake.Account
}

func newWorld(t *testing.T, accounts []cspfake.Account) *world {
	t.Helper()
	w := &world{bus: newBus(t), accounts: accounts}
	w.csp = cspfake.New(cspfake.Options{Token: "events-test-csp-token"})
	w.csp.Seed(accounts...)
	if err := w.csp.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.csp.Close() })
	client, err := csp.New(csp.Options{BaseURL: w.csp.URL(), Token: "events-test-csp-token", RequestTimeout: 2 * time.Second,
		MaxAttempts: 1, Breaker: breaker.Options{Now: w.clock.Now}})
	if err != nil {
		t.Fatal(err)
	}
	jobCfg, err := config.LoadJobs(testkit.Env(map[string]string{"CLEANUP_DELETES_PER_SECOND": "100", "CLEANUP_MAX_ATTEMPTS": "3", "SYNC_MAX_SHRINK_FRACTION": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	w.broker = broker.New(w.pool, poolCfg)
	w.runner, err = jobs.NewRunner(jobs.Deps{Pool: w.pool, CSP: client, CSPRequestTimeout: 2 * time.Second,
		PoolConfig: poolCfg, Config: jobCfg, Logger: w.deliver.Log})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *world) run(t *testing.T, job string) jobs.Summary {
	t.Helper()
	sum, err := w.runner.Run(ctx, job)
	if err != nil || (sum.Outcome != jobs.OutcomeOK && sum.Outcome != jobs.OutcomePartial) {
		t.Fatalf("%s: %+v, %v", job, sum, err)
	}
	return sum
}

func (w *world) faults(t *testing.T, f cspfake.Faults) {
	t.Helper()
	if err := w.csp.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

func (w *world) allocate(t *testing.T, student, prefix, lab string) broker.Allocation {
	t.Helper()
	a, err := w.broker.Allocate(ctx, broker.AllocateRequest{Student: student, NamePrefix: prefix, TrackName: lab, Client: "instruqt",
		RequestID: "req-" + student})
	if err != nil {
		t.Fatalf("allocate %s: %v", student, err)
	}
	return a
}

func (w *world) get(t *testing.T, id string) pool.Sandbox {
	t.Helper()
	s, err := w.pool.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sandboxID(a cspfake.Account) string { return fmt.Sprint(a.CSPID) }

var ops = pool.Actor{Kind: "admin", Name: "ops", RequestID: "req-ops", Reason: "admin-retry-deletion"}

// TestEveryTransitionOfTheLifecycleIsOneEvent drives each transition of the lifecycle
// through the broker, the real jobs and the pool: allocate, extend, release, three
// failed CSP deletes (the third gives up), an operator's retry, the confirmed delete; an
// allocation that expires; an operator's ending of an allocation and a NIOSXaaS step;
// sandboxes going stale and back, one retired and one removed; a drain started and
// ended. The events read from DynamoDB Local's stream are exactly one per transition —
// each sandbox's events match its history entry for entry, in order — of the right
// type, actor and detail, and every one matches its schema.
func TestEveryTransitionOfTheLifecycleIsOneEvent(t *testing.T) {
	// The last two (lab-old) are never allocated: they go stale.
	accounts := cspfake.Generate(6, []string{"lab-dns", "lab-net", "lab-dns", "lab-net", "lab-old", "lab-old"})
	w := newWorld(t, accounts)
	holder := func(student string) pool.Holder { return pool.Holder{Client: "instruqt", Student: student} }

	w.run(t, "sync")
	a := w.allocate(t, "participant-1", "lab-dns", "dns-lab")
	if _, err := w.broker.Extend(ctx, a.SandboxID, holder("participant-1"), "req-extend"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.broker.Release(ctx, a.SandboxID, holder("participant-1"), "req-release"); err != nil {
		t.Fatal(err)
	}
	sa := w.get(t, a.SandboxID)
	w.faults(t, cspfake.Faults{DeleteFail: cspfake.Failure{UUIDs: []string{pool.AccountUUID(sa.ExternalID)}, Status: 500}})
	for range 3 {
		w.run(t, "cleanup")
		w.clock.Advance(2 * time.Hour)
	}
	if s := w.get(t, a.SandboxID); s.Status != pool.DeletionFailed {
		t.Fatalf("after three failed deletes: %s", s.Status)
	}
	if _, err := w.broker.RetryDeletion(ctx, a.SandboxID, ops); err != nil {
		t.Fatal(err)
	}
	w.faults(t, cspfake.Faults{})
	w.run(t, "cleanup")

	b := w.allocate(t, "participant-2", "lab-net", "net-lab")
	w.clock.Advance(poolCfg.LabDuration + poolCfg.Grace + time.Minute)
	w.run(t, "expiry")

	c := w.allocate(t, "participant-3", "lab-dns", "dns-lab")
	sc := w.get(t, c.SandboxID)
	// An operator's ending of an allocation (no admin route makes one yet): the pool's
	// ending with an admin actor.
	sc, err := w.pool.Expire(ctx, sc, w.clock.Now().Add(100*24*time.Hour).Unix(), pool.Actor{Kind: "admin", Name: "ops", RequestID: "req-end"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.pool.RecordNIOSXaaS(ctx, sc, pool.NIOSXaaSStep{Outcome: pool.NIOSXaaSFailed, Reason: "HTTP 502 from the portal"},
		w.clock.Now().Add(time.Minute).Unix(), pool.Actor{Kind: "job", Name: "cleanup", RequestID: "run-1"}); err != nil {
		t.Fatal(err)
	}

	// The last two accounts (lab-old) leave the listing, which no longer shows a's either
	// (deleted): two syncs make them stale; then one comes back, and goes again.
	w.faults(t, cspfake.Faults{ListLimit: 3})
	w.run(t, "sync")
	w.run(t, "sync")
	w.faults(t, cspfake.Faults{ListLimit: 4})
	w.run(t, "sync")
	back, gone := sandboxID(accounts[4]), sandboxID(accounts[5])
	if s := w.get(t, back); s.Status != pool.Available {
		t.Fatalf("%s: %s, want back from stale", back, s.Status)
	}
	w.faults(t, cspfake.Faults{ListLimit: 3})
	w.run(t, "sync")
	w.run(t, "sync")
	if _, err := w.pool.Retire(ctx, w.get(t, back), 0, pool.Actor{Kind: "admin", Name: "ops", RequestID: "req-bulk"}); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(25 * time.Hour)
	w.run(t, "stale-cleanup")

	if _, err := w.pool.StartDrain(ctx, pool.Drain{Prefix: "lab-dns", Reason: "CSP maintenance", By: "ops"}, pool.Actor{Kind: "admin", Name: "ops", RequestID: "req-drain"}); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Second) // a drain's events are ordered by their time (docs/events.md)
	if _, err := w.pool.EndDrains(ctx, "lab-dns", false, pool.Actor{Kind: "admin", Name: "ops", RequestID: "req-undrain"}); err != nil {
		t.Fatal(err)
	}

	w.drain(t)
	got := w.published(t)
	if u := unique(t, got); len(u) != len(got) {
		t.Errorf("%d deliveries of %d events without any fault", len(got), len(u))
	}
	inOrder(t, got)

	want := map[string][]events.Type{
		a.SandboxID: {events.Added, events.Allocated, events.Extended, events.Released, events.DeletionAttemptFail,
			events.DeletionAttemptFail, events.DeletionFailed, events.DeletionRetried, events.Deleted},
		b.SandboxID: {events.Added, events.Allocated, events.Expired},
		c.SandboxID: {events.Added, events.Allocated, events.DeletionRequested, events.PreDeleteStep},
		back:        {events.Added, events.Stale, events.BackFromStale, events.Stale, events.Retired},
		gone:        {events.Added, events.Stale, events.Removed},
	}
	total := 0
	for _, acc := range accounts {
		id := sandboxID(acc)
		evs := of(got, id)
		if w, ok := want[id]; ok && !slices.Equal(typesOf(evs), w) {
			t.Errorf("sandbox %s: events %v, want %v", id, typesOf(evs), w)
		}
		// One event per history entry, with its from and to. (The history orders entries
		// by the test clock, which stands still between many of them: compare as sets;
		// the events' sequence gives their order.)
		hist, err := w.pool.History(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var fromHistory, fromEvents []string
		for _, h := range hist {
			fromHistory = append(fromHistory, string(h.From)+"→"+string(h.To))
		}
		for _, e := range evs {
			fromEvents = append(fromEvents, e.Status.From+"→"+e.Status.To)
		}
		slices.Sort(fromHistory)
		slices.Sort(fromEvents)
		if !slices.Equal(fromHistory, fromEvents) {
			t.Errorf("sandbox %s: events %v, history %v", id, fromEvents, fromHistory)
		}
		total += len(hist)
	}
	drains := slices.DeleteFunc(slices.Clone(got), func(e events.Event) bool { return e.Drain == nil })
	if !slices.Equal(typesOf(drains), []events.Type{events.DrainStarted, events.DrainEnded}) {
		t.Errorf("drain events %v", typesOf(drains))
	}
	if len(got) != total+len(drains) {
		t.Errorf("%d events for %d transitions and %d drain entries", len(got), total, len(drains))
	}

	byType := map[events.Type]events.Event{}
	for _, e := range got {
		byType[e.Type] = e
	}
	alloc := byType[events.Allocated]
	if alloc.Student == "" || alloc.Client != "instruqt" || alloc.Actor.Kind != "student" || alloc.Actor.Name != "" || alloc.ExpiresAt == nil {
		t.Errorf("allocated: %+v", alloc)
	}
	if first := of(got, a.SandboxID)[1]; first.Student != "participant-1" || first.Lab != "dns-lab" || first.Sandbox.Prefix != "lab-dns" ||
		first.Actor.RequestID != "req-participant-1" {
		t.Errorf("a's allocation: %+v %+v", first, first.Sandbox)
	}
	if e := byType[events.Extended]; e.PreviousExpiresAt == nil || !e.ExpiresAt.After(*e.PreviousExpiresAt) || e.Actor.RequestID != "req-extend" {
		t.Errorf("extended: %+v", e)
	}
	if e := byType[events.Released]; e.Actor.Kind != "student" || e.Actor.RequestID != "req-release" || e.DeletionRequestedAt == nil {
		t.Errorf("released: %+v", e)
	}
	if e := byType[events.Expired]; e.Actor != (events.Actor{Kind: "job", Name: "expiry", RequestID: e.Actor.RequestID}) || e.Student != "participant-2" {
		t.Errorf("expired: %+v", e)
	}
	if e := byType[events.DeletionFailed]; e.Attempts != 3 || e.ErrorClass != events.ErrorCSPServer || e.Actor.Name != "cleanup" {
		t.Errorf("deletion_failed: %+v", e)
	}
	if e := byType[events.DeletionAttemptFail]; e.ErrorClass != events.ErrorCSPServer || e.NextAttemptAt == nil {
		t.Errorf("deletion_attempt_failed: %+v", e)
	}
	if e := byType[events.DeletionRetried]; e.Actor != (events.Actor{Kind: "admin", Name: "ops", RequestID: "req-ops"}) {
		t.Errorf("deletion_retried: %+v", e)
	}
	if e := byType[events.PreDeleteStep]; e.PreDelete == nil || e.PreDelete.Outcome != pool.NIOSXaaSFailed || e.ErrorClass != events.ErrorPreDeleteStep || e.Attempts != 1 {
		t.Errorf("pre_delete_step: %+v", e)
	}
	if e := byType[events.DrainStarted]; e.Drain.Prefix != "lab-dns" || e.Drain.Reason != "CSP maintenance" || e.Actor.Name != "ops" {
		t.Errorf("drain.started: %+v", e)
	}
	if n := validate(t, w.eb); n != len(got) {
		t.Errorf("validated %d of %d events", n, len(got))
	}
	if dead := w.sqs.Bodies(w.dlqURL); len(dead) != 0 {
		t.Errorf("dead letters without any fault: %v", dead)
	}
	t.Logf("lifecycle: %d transitions and %d drain entries, %d events published", total, len(drains), len(got))
	pooltest.Check(t, w.pool)
}
