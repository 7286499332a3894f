package broker_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
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
			brokertest.Fill(t, p, "lab", 0, 20)
			cfg := poolCfg
			cfg.StudentMaxLiveAllocations = limit
			b := broker.New(p, cfg)
			reqs := make([]broker.AllocateRequest, 100)
			for i := range reqs {
				reqs[i] = broker.AllocateRequest{Student: "alice", IdempotencyKey: fmt.Sprint("lab-run-", i), Client: "instruqt"}
			}
			var winners []brokertest.Result
			for _, r := range brokertest.AllocateAll(b, reqs) {
				switch {
				case r.Err == nil && r.Alloc.Created:
					winners = append(winners, r)
				case !errors.Is(r.Err, broker.ErrStudentLimit):
					t.Fatalf("%s: %+v %v, want a sandbox or ErrStudentLimit", r.Req.IdempotencyKey, r.Alloc, r.Err)
				}
			}
			if len(winners) != limit {
				t.Fatalf("%d allocations succeeded, want exactly the limit %d", len(winners), limit)
			}
			brokertest.AssertDistinct(t, winners)
			slots := map[int]bool{}
			for _, w := range winners {
				slots[w.Alloc.Slot] = true
				again, err := b.Allocate(ctx, w.Req)
				if err != nil || again.Created || again.SandboxID != w.Alloc.SandboxID {
					t.Fatalf("replay of %s: %+v %v, want sandbox %s", w.Req.IdempotencyKey, again, err, w.Alloc.SandboxID)
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
	brokertest.Fill(t, p, "lab", 0, 30)
	b := broker.New(p, poolCfg)
	reqs := brokertest.Students(100, "")
	for i := range reqs {
		reqs[i].ClientCap = clientCap
	}
	var winners []brokertest.Result
	for _, r := range brokertest.AllocateAll(b, reqs) {
		switch {
		case r.Err == nil && r.Alloc.Created:
			winners = append(winners, r)
		case !errors.Is(r.Err, broker.ErrClientLimit):
			t.Fatalf("%s: %+v %v, want a sandbox or ErrClientLimit", r.Req.Student, r.Alloc, r.Err)
		}
	}
	if len(winners) != clientCap {
		t.Fatalf("%d allocations succeeded, want exactly the cap %d", len(winners), clientCap)
	}
	brokertest.AssertDistinct(t, winners)
	census := pooltest.Check(t, p)
	if census.ByStatus[pool.Allocated] != clientCap || census.Counters != pool.CounterShards {
		t.Fatalf("census %+v", census)
	}
	// A replay at the cap is still a replay; another client is not held by this cap.
	if again, err := b.Allocate(ctx, winners[0].Req); err != nil || again.SandboxID != winners[0].Alloc.SandboxID {
		t.Fatalf("replay at the cap: %+v %v", again, err)
	}
	if a, err := b.Allocate(ctx, broker.AllocateRequest{Student: "student--0", Client: "other-lab"}); err != nil || !a.Created {
		t.Fatalf("another client: %+v %v", a, err)
	}

	w := winners[0]
	if _, err := b.Release(ctx, w.Alloc.SandboxID, pool.Holder{Client: w.Req.Client, Student: w.Req.Student}, "r"); err != nil {
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

// A replay of a held key answers that allocation, whatever slot holds it: after a lower
// slot was freed (no second sandbox for the key), and after the limit was lowered below
// its slot (no 409).
func TestReplayOfAHeldKeyAfterAFreedSlotOrALowerLimit(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 6)
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

func release(t *testing.T, b *broker.Broker, rs ...brokertest.Result) {
	t.Helper()
	for _, r := range rs {
		if _, err := b.Release(ctx, r.Alloc.SandboxID, pool.Holder{Client: r.Req.Client, Student: r.Req.Student}, "r"); err != nil {
			t.Fatal(err)
		}
	}
}

// A client holding 40 live allocations made without a cap is given a cap of 5: none of
// 60 students racing for more gets one (the 40 are counted first), and only once it
// holds fewer than 5 does it get one more, and then no second.
func TestClientCapCountsWhatTheClientAlreadyHolds(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 60)
	b := broker.New(p, poolCfg)
	held := brokertest.AllocateN(t, b, "before-the-cap", 40, 0)
	if len(held) != 40 {
		t.Fatalf("%d uncapped allocations, want 40", len(held))
	}
	if got := brokertest.AllocateN(t, b, "capped", 60, 5); len(got) != 0 {
		t.Fatalf("%d allocations past the cap of a client holding 40", len(got))
	}
	census := pooltest.Check(t, p)
	if census.Counters != pool.CounterShards {
		t.Fatalf("census %+v", census)
	}
	release(t, b, held[:35]...)
	if got := brokertest.AllocateN(t, b, "at-the-cap", 20, 5); len(got) != 0 {
		t.Fatalf("%d allocations by a client holding its cap", len(got))
	}
	release(t, b, held[35])
	if got := brokertest.AllocateN(t, b, "below-the-cap", 20, 5); len(got) != 1 {
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
	brokertest.Fill(t, p, "lab", 0, 40)
	b := broker.New(p, poolCfg)
	held := brokertest.AllocateN(t, b, "under-16", 40, 16)
	if len(held) != 16 {
		t.Fatalf("%d allocations under a cap of 16", len(held))
	}
	// Release those in the shards a cap of 3 splits its room over (0, 1, 2).
	var kept []brokertest.Result
	for _, r := range held {
		if s := mustGet(t, p, r.Alloc.SandboxID); *s.CapShard < pool.OpenShards(3) {
			release(t, b, r)
		} else {
			kept = append(kept, r)
		}
	}
	if len(kept) < 3 {
		t.Fatalf("only %d allocations outside shards 0-2", len(kept))
	}
	if got := brokertest.AllocateN(t, b, "under-3", 20, 3); len(got) != 0 {
		t.Fatalf("%d allocations under a cap of 3 by a client holding %d", len(got), len(kept))
	}
	pooltest.Check(t, p)
	release(t, b, kept[:len(kept)-2]...)
	if got := brokertest.AllocateN(t, b, "below-3", 20, 3); len(got) != 1 {
		t.Fatalf("%d allocations by a client holding 2 under a cap of 3, want 1", len(got))
	}
	if census := pooltest.Check(t, p); census.ByStatus[pool.Allocated] != 3 {
		t.Fatalf("census %+v", census)
	}
}

// The cap holds for a client whose allocations are enrolled while 100 of its students
// race: 20 held before the cap of 25, exactly 5 more.
func TestClientCapHoldsWhileTheClientIsEnrolled(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 60)
	b := broker.New(p, poolCfg)
	if got := brokertest.AllocateN(t, b, "before-the-cap", 20, 0); len(got) != 20 {
		t.Fatalf("%d uncapped allocations, want 20", len(got))
	}
	// Each student through a broker of its own, as Lambda instances run them.
	reqs := make([]broker.AllocateRequest, 100)
	for i := range reqs {
		reqs[i] = brokertest.Capped(fmt.Sprint("racing-", i), 25)
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
