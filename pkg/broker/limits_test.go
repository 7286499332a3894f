package broker_test

import (
	"errors"
	"fmt"
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
