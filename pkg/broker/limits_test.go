package broker_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// One student sends 100 allocations at once, each under its own idempotency key: exactly
// STUDENT_MAX_LIVE_ALLOCATIONS of them get a sandbox, in distinct owner slots; every other
// one is ErrStudentLimit; and a replay of each winner still returns its sandbox.
func TestStudentLimitHoldsUnderConcurrentKeys(t *testing.T) {
	for _, limit := range []int{1, 3} {
		t.Run(fmt.Sprint("limit ", limit), func(t *testing.T) {
			p := pooltest.New(t)
			fill(t, p, "lab", 0, 20)
			cfg := poolCfg
			cfg.StudentMaxLiveAllocations = limit
			b := broker.New(p, cfg)
			reqs := make([]broker.AllocateRequest, 100)
			for i := range reqs {
				reqs[i] = broker.AllocateRequest{Student: "alice", IdempotencyKey: fmt.Sprint("lab-run-", i), Client: "instruqt"}
			}
			var winners []result
			for _, r := range allocateAll(b, reqs) {
				switch {
				case r.err == nil && r.alloc.Created:
					winners = append(winners, r)
				case !errors.Is(r.err, broker.ErrStudentLimit):
					t.Fatalf("%s: %+v %v, want a sandbox or ErrStudentLimit", r.req.IdempotencyKey, r.alloc, r.err)
				}
			}
			if len(winners) != limit {
				t.Fatalf("%d allocations succeeded, want exactly the limit %d", len(winners), limit)
			}
			assertDistinct(t, winners)
			slots := map[int]bool{}
			for _, w := range winners {
				slots[w.alloc.Slot] = true
				again, err := b.Allocate(ctx, w.req)
				if err != nil || again.Created || again.SandboxID != w.alloc.SandboxID {
					t.Fatalf("replay of %s: %+v %v, want sandbox %s", w.req.IdempotencyKey, again, err, w.alloc.SandboxID)
				}
			}
			if len(slots) != limit {
				t.Fatalf("the winners share owner slots: %v", slots)
			}
			// The limit is the student's at this client: the same ID at another client,
			// and another student here, still get one.
			for _, other := range []broker.AllocateRequest{{Student: "alice", Client: "other-lab"}, {Student: "bob", Client: "instruqt"}} {
				if a, err := b.Allocate(ctx, other); err != nil || !a.Created {
					t.Fatalf("%+v: %+v %v", other, a, err)
				}
			}
			census := pooltest.Check(t, p)
			if census.ByStatus[pool.Allocated] != limit+2 || census.Owners != limit+2 {
				t.Fatalf("census %+v", census)
			}
		})
	}
}

// 100 distinct students of a client capped at 10 allocate at once: exactly 10 get a
// sandbox and the rest ErrClientLimit; a release lets exactly one more in.
func TestClientCapHoldsUnderConcurrentStudents(t *testing.T) {
	const clientCap = 10
	p := pooltest.New(t)
	fill(t, p, "lab", 0, 30)
	b := broker.New(p, poolCfg)
	reqs := students(100, "")
	for i := range reqs {
		reqs[i].ClientCap = clientCap
	}
	var winners []result
	for _, r := range allocateAll(b, reqs) {
		switch {
		case r.err == nil && r.alloc.Created:
			winners = append(winners, r)
		case !errors.Is(r.err, broker.ErrClientLimit):
			t.Fatalf("%s: %+v %v, want a sandbox or ErrClientLimit", r.req.Student, r.alloc, r.err)
		}
	}
	if len(winners) != clientCap {
		t.Fatalf("%d allocations succeeded, want exactly the cap %d", len(winners), clientCap)
	}
	assertDistinct(t, winners)
	census := pooltest.Check(t, p)
	if census.ByStatus[pool.Allocated] != clientCap || census.Counters != pool.CounterShards {
		t.Fatalf("census %+v", census)
	}
	// A replay at the cap is still a replay; another client is not held by this cap.
	if again, err := b.Allocate(ctx, winners[0].req); err != nil || again.SandboxID != winners[0].alloc.SandboxID {
		t.Fatalf("replay at the cap: %+v %v", again, err)
	}
	if a, err := b.Allocate(ctx, broker.AllocateRequest{Student: "student--0", Client: "other-lab"}); err != nil || !a.Created {
		t.Fatalf("another client: %+v %v", a, err)
	}

	w := winners[0]
	if _, err := b.Release(ctx, w.alloc.SandboxID, pool.Holder{Client: w.req.Client, Student: w.req.Student}, "r"); err != nil {
		t.Fatal(err)
	}
	pooltest.Check(t, p)
	late := broker.AllocateRequest{Student: "late-1", Client: "instruqt", ClientCap: clientCap}
	if a, err := b.Allocate(ctx, late); err != nil || !a.Created {
		t.Fatalf("after a release: %+v %v, want one more allocation", a, err)
	}
	late.Student = "late-2"
	if _, err := b.Allocate(ctx, late); !errors.Is(err, broker.ErrClientLimit) {
		t.Fatalf("after the freed place is taken: %v, want ErrClientLimit", err)
	}
	pooltest.Check(t, p)
}

// An expiry frees the owner slot and the counter shard: by the expiry job, and by an
// allocation that finds its slot held by a lapsed allocation.
func TestExpiryFreesTheSlotAndTheCounter(t *testing.T) {
	e := newJobEnv(t, envOptions{})
	fill(t, e.pool, "lab", 0, 4)
	alice := func(key string) broker.AllocateRequest {
		return broker.AllocateRequest{Student: "alice", IdempotencyKey: key, Client: "lab-a", ClientCap: 1}
	}
	bob := broker.AllocateRequest{Student: "bob", Client: "lab-a", ClientCap: 1}
	if a, err := e.broker.Allocate(ctx, alice("k1")); err != nil || !a.Created {
		t.Fatalf("alice k1: %+v %v", a, err)
	}
	if _, err := e.broker.Allocate(ctx, alice("k2")); !errors.Is(err, broker.ErrStudentLimit) {
		t.Fatalf("alice k2: %v, want ErrStudentLimit", err)
	}
	if _, err := e.broker.Allocate(ctx, bob); !errors.Is(err, broker.ErrClientLimit) {
		t.Fatalf("bob: %v, want ErrClientLimit", err)
	}

	e.clock.Advance(poolCfg.LabDuration + poolCfg.Grace + time.Second)
	wantCounts(t, e.run(t, "expiry"), map[string]int{"expired": 1})
	pooltest.Check(t, e.pool)
	k2, err := e.broker.Allocate(ctx, alice("k2"))
	if err != nil || !k2.Created || k2.Slot != 0 {
		t.Fatalf("alice k2 after the expiry job: %+v %v", k2, err)
	}
	if _, err := e.broker.Allocate(ctx, bob); !errors.Is(err, broker.ErrClientLimit) {
		t.Fatalf("bob while k2 holds the cap: %v, want ErrClientLimit", err)
	}

	// k2 lapses; before the job comes round, alice's next key finds slot 0 held by it,
	// ends it and takes the slot and the counter shard.
	e.clock.Advance(poolCfg.LabDuration + poolCfg.Grace + time.Second)
	k3, err := e.broker.Allocate(ctx, alice("k3"))
	if err != nil || !k3.Created || k3.SandboxID == k2.SandboxID {
		t.Fatalf("alice k3 over a lapsed k2: %+v %v", k3, err)
	}
	if s := e.get(t, k2.SandboxID); s.Status != pool.PendingDeletion || s.OwnerSlot != nil || s.CapShard != nil {
		t.Fatalf("the lapsed allocation: %+v", s)
	}
	if census := pooltest.Check(t, e.pool); census.ByStatus[pool.Allocated] != 1 || census.Owners != 1 {
		t.Fatalf("census %+v", census)
	}
}

// A replay of a held key answers that allocation, whatever slot holds it: after a lower
// slot was freed (no second sandbox for the key), and after the limit was lowered below
// its slot (no 409).
func TestReplayOfAHeldKeyAfterAFreedSlotOrALowerLimit(t *testing.T) {
	p := pooltest.New(t)
	fill(t, p, "lab", 0, 6)
	cfg := poolCfg
	cfg.StudentMaxLiveAllocations = 2
	b := broker.New(p, cfg)
	alice := func(key string) broker.AllocateRequest {
		return broker.AllocateRequest{Student: "alice", IdempotencyKey: key, Client: "instruqt"}
	}
	k0, err := b.Allocate(ctx, alice("k0"))
	if err != nil || k0.Slot != 0 {
		t.Fatalf("k0: %+v %v", k0, err)
	}
	k1, err := b.Allocate(ctx, alice("k1"))
	if err != nil || k1.Slot != 1 {
		t.Fatalf("k1: %+v %v", k1, err)
	}
	if _, err := b.Release(ctx, k0.SandboxID, pool.Holder{Client: "instruqt", Student: "alice"}, "r"); err != nil {
		t.Fatal(err)
	}
	again, err := b.Allocate(ctx, alice("k1"))
	if err != nil || again.Created || again.SandboxID != k1.SandboxID {
		t.Fatalf("replay of k1 with slot 0 free: %+v %v, want sandbox %s again", again, err, k1.SandboxID)
	}
	pooltest.Check(t, p)

	// STUDENT_MAX_LIVE_ALLOCATIONS goes down to 1 while alice holds k1 in slot 1; a new
	// key takes slot 0.
	cfg.StudentMaxLiveAllocations = 1
	lower := broker.New(p, cfg)
	k2, err := lower.Allocate(ctx, alice("k2"))
	if err != nil || k2.Slot != 0 {
		t.Fatalf("k2 under the lower limit: %+v %v", k2, err)
	}
	for _, r := range []struct {
		key string
		a   broker.Allocation
	}{{"k1", k1}, {"k2", k2}} {
		again, err := lower.Allocate(ctx, alice(r.key))
		if err != nil || again.Created || again.SandboxID != r.a.SandboxID {
			t.Fatalf("replay of %s under the lower limit: %+v %v, want sandbox %s", r.key, again, err, r.a.SandboxID)
		}
	}
	if _, err := lower.Allocate(ctx, alice("k3")); !errors.Is(err, broker.ErrStudentLimit) {
		t.Fatalf("a new key under the lower limit: %v, want ErrStudentLimit", err)
	}
	if census := pooltest.Check(t, p); census.ByStatus[pool.Allocated] != 2 {
		t.Fatalf("census %+v", census)
	}

	// From 3 down to 2: bob holds slots 1 and 2 with slot 0 free, which is his limit.
	bob := func(key string) broker.AllocateRequest {
		return broker.AllocateRequest{Student: "bob", IdempotencyKey: key, Client: "instruqt"}
	}
	cfg.StudentMaxLiveAllocations = 3
	three := broker.New(p, cfg)
	var b2 broker.Allocation
	for _, key := range []string{"k0", "k1", "k2"} {
		if b2, err = three.Allocate(ctx, bob(key)); err != nil {
			t.Fatalf("bob %s: %v", key, err)
		}
	}
	released, err := three.Allocate(ctx, bob("k0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := three.Release(ctx, released.SandboxID, pool.Holder{Client: "instruqt", Student: "bob"}, "r"); err != nil {
		t.Fatal(err)
	}
	cfg.StudentMaxLiveAllocations = 2
	two := broker.New(p, cfg)
	if a, err := two.Allocate(ctx, bob("k3")); !errors.Is(err, broker.ErrStudentLimit) {
		t.Fatalf("a new key of a student holding 2 under a limit lowered to 2: %+v %v, want ErrStudentLimit", a, err)
	}
	if again, err := two.Allocate(ctx, bob("k2")); err != nil || again.Created || again.SandboxID != b2.SandboxID {
		t.Fatalf("replay of k2 in slot 2 under a limit of 2: %+v %v", again, err)
	}
	pooltest.Check(t, p)
}

// capped is a request of client "lab-a" under cap.
func capped(student string, cap int) broker.AllocateRequest {
	return broker.AllocateRequest{Student: student, Client: "lab-a", ClientCap: cap}
}

// allocateN allocates to n students of lab-a at once, under cap, and returns the winners;
// every other one must be refused with ErrClientLimit.
func allocateN(t *testing.T, b *broker.Broker, prefix string, n, cap int) []result {
	t.Helper()
	reqs := make([]broker.AllocateRequest, n)
	for i := range reqs {
		reqs[i] = capped(fmt.Sprintf("%s-%d", prefix, i), cap)
	}
	var winners []result
	for _, r := range allocateAll(b, reqs) {
		switch {
		case r.err == nil && r.alloc.Created:
			winners = append(winners, r)
		case cap == 0 || !errors.Is(r.err, broker.ErrClientLimit):
			t.Fatalf("%s: %+v %v", r.req.Student, r.alloc, r.err)
		}
	}
	return winners
}

func release(t *testing.T, b *broker.Broker, rs ...result) {
	t.Helper()
	for _, r := range rs {
		if _, err := b.Release(ctx, r.alloc.SandboxID, pool.Holder{Client: r.req.Client, Student: r.req.Student}, "r"); err != nil {
			t.Fatal(err)
		}
	}
}

// A client holding 40 live allocations made without a cap is given a cap of 5: none of
// 60 students racing for more gets one (the 40 are counted first), and only once it
// holds fewer than 5 does it get one more, and then no second.
func TestClientCapCountsWhatTheClientAlreadyHolds(t *testing.T) {
	p := pooltest.New(t)
	fill(t, p, "lab", 0, 60)
	b := broker.New(p, poolCfg)
	held := allocateN(t, b, "before-the-cap", 40, 0)
	if len(held) != 40 {
		t.Fatalf("%d uncapped allocations, want 40", len(held))
	}
	if got := allocateN(t, b, "capped", 60, 5); len(got) != 0 {
		t.Fatalf("%d allocations past the cap of a client holding 40", len(got))
	}
	census := pooltest.Check(t, p)
	if census.Counters != pool.CounterShards {
		t.Fatalf("census %+v", census)
	}
	release(t, b, held[:35]...)
	if got := allocateN(t, b, "at-the-cap", 20, 5); len(got) != 0 {
		t.Fatalf("%d allocations by a client holding its cap", len(got))
	}
	release(t, b, held[35])
	if got := allocateN(t, b, "below-the-cap", 20, 5); len(got) != 1 {
		t.Fatalf("%d allocations by a client one below its cap, want 1", len(got))
	}
	if census := pooltest.Check(t, p); census.ByStatus[pool.Allocated] != 5 {
		t.Fatalf("census %+v", census)
	}
}

// A cap lowered from 16 to 3 keeps counting the allocations in every shard the higher
// cap used: with 10 left in the shards the lower cap no longer splits room into, the
// client gets nothing until it holds fewer than 3.
func TestALowerCapNeverForgetsAShard(t *testing.T) {
	p := pooltest.New(t)
	fill(t, p, "lab", 0, 40)
	b := broker.New(p, poolCfg)
	held := allocateN(t, b, "under-16", 40, 16)
	if len(held) != 16 {
		t.Fatalf("%d allocations under a cap of 16", len(held))
	}
	// Release those in the shards a cap of 3 splits its room over (0, 1, 2).
	var kept []result
	for _, r := range held {
		if s := mustGet(t, p, r.alloc.SandboxID); *s.CapShard < pool.OpenShards(3) {
			release(t, b, r)
		} else {
			kept = append(kept, r)
		}
	}
	if len(kept) < 3 {
		t.Fatalf("only %d allocations outside shards 0-2", len(kept))
	}
	if got := allocateN(t, b, "under-3", 20, 3); len(got) != 0 {
		t.Fatalf("%d allocations under a cap of 3 by a client holding %d", len(got), len(kept))
	}
	pooltest.Check(t, p)
	release(t, b, kept[:len(kept)-2]...)
	if got := allocateN(t, b, "below-3", 20, 3); len(got) != 1 {
		t.Fatalf("%d allocations by a client holding 2 under a cap of 3, want 1", len(got))
	}
	if census := pooltest.Check(t, p); census.ByStatus[pool.Allocated] != 3 {
		t.Fatalf("census %+v", census)
	}
}

// Allocations made without the cap after the client was enrolled (a process whose
// authorizer cache still said "no cap") are counted by the expiry job, which takes the
// room away from a client it finds at or past its cap.
func TestTheExpiryJobCountsAllocationsMadeWithoutTheCap(t *testing.T) {
	e := newJobEnv(t, envOptions{})
	fill(t, e.pool, "lab", 0, 20)
	if got := allocateN(t, e.broker, "capped", 3, 5); len(got) != 3 {
		t.Fatalf("%d capped allocations, want 3", len(got))
	}
	if got := allocateN(t, e.broker, "stale-cache", 4, 0); len(got) != 4 {
		t.Fatalf("%d uncapped allocations, want 4", len(got))
	}
	pooltest.Check(t, e.pool)
	wantCounts(t, e.run(t, "expiry"), map[string]int{"expired": 0, "cap_counted": 4})
	if got := allocateN(t, e.broker, "after-the-sweep", 10, 5); len(got) != 0 {
		t.Fatalf("%d allocations by a client holding 7 under a cap of 5", len(got))
	}
	if census := pooltest.Check(t, e.pool); census.ByStatus[pool.Allocated] != 7 {
		t.Fatalf("census %+v", census)
	}
	wantCounts(t, e.run(t, "expiry"), map[string]int{"cap_counted": 0})
}

// The cap holds for a client whose allocations are enrolled while 100 of its students
// race: 20 held before the cap of 25, exactly 5 more.
func TestClientCapHoldsWhileTheClientIsEnrolled(t *testing.T) {
	p := pooltest.New(t)
	fill(t, p, "lab", 0, 60)
	b := broker.New(p, poolCfg)
	if got := allocateN(t, b, "before-the-cap", 20, 0); len(got) != 20 {
		t.Fatalf("%d uncapped allocations, want 20", len(got))
	}
	// Each student through a broker of its own, as Lambda instances run them.
	reqs := make([]broker.AllocateRequest, 100)
	for i := range reqs {
		reqs[i] = capped(fmt.Sprint("racing-", i), 25)
	}
	won := 0
	var wg sync.WaitGroup
	errs := make([]error, len(reqs))
	for i, r := range reqs {
		wg.Go(func() {
			if a, err := broker.New(p, poolCfg).Allocate(ctx, r); err != nil || !a.Created {
				errs[i] = fmt.Errorf("%+v: %w", a, err)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, broker.ErrClientLimit):
			t.Fatal(err)
		}
	}
	if won != 5 {
		t.Fatalf("%d allocations under a cap of 25 by a client holding 20, want 5", won)
	}
	pooltest.Check(t, p)
}
