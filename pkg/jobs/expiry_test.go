package jobs_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestExpiryBoundaries(t *testing.T) {
	e := newJobEnv(t, envOptions{})
	brokertest.Fill(t, e.pool, "lab", 0, 3)
	var held []broker.Allocation
	for i := range 3 {
		a, err := e.broker.Allocate(ctx, broker.AllocateRequest{Student: fmt.Sprintf("student-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, a)
		e.clock.Advance(time.Second)
	}
	// Now is exactly expires_at + grace of the second allocation: the first is a second
	// past it, the third a second short.
	e.clock.Advance(-3*time.Second + time.Second + poolCfg.LabDuration + poolCfg.Grace)
	if now := e.clock.Now().Unix(); now != held[1].ExpiresAt+int64(poolCfg.Grace/time.Second) {
		t.Fatalf("clock at %d, want expires_at + grace = %d", now, held[1].ExpiresAt+int64(poolCfg.Grace/time.Second))
	}
	sum := e.run(t, "expiry")
	wantCounts(t, sum, map[string]int{"expired": 2, "conflicts": 0})
	for i, want := range []pool.Status{pool.PendingDeletion, pool.PendingDeletion, pool.Allocated} {
		s := e.get(t, held[i].SandboxID)
		if s.Status != want {
			t.Fatalf("allocation %d (expires_at + grace = now %+ds) is %s, want %s", i, 1-i, s.Status, want)
		}
		_, found, err := e.pool.OwnerRecord(ctx, pool.Holder{Client: held[i].Client, Student: held[i].Student}, held[i].Student)
		if err != nil || found != (want == pool.Allocated) {
			t.Fatalf("allocation %d: owner record found=%v (%v)", i, found, err)
		}
	}
	e.clock.Advance(time.Second)
	wantCounts(t, e.run(t, "expiry"), map[string]int{"expired": 1})
	if s := e.get(t, held[2].SandboxID); s.Status != pool.PendingDeletion || s.DeletionRequestedAt != e.clock.Now().Unix() {
		t.Fatalf("third allocation a second later: %+v", s)
	}
	pooltest.Check(t, e.pool)
}

// TestExpiryRacingOwnerRelease runs the expiry job while every owner releases their
// expired sandbox at once: each sandbox ends its allocation exactly once, by one or the
// other, and no owner record survives.
func TestExpiryRacingOwnerRelease(t *testing.T) {
	const n = 40
	// Query pages of 7 items: the expired allocations are read to the end (docs/upstream.md D10).
	e := newJobEnv(t, envOptions{poolPages: 7})
	brokertest.Fill(t, e.pool, "lab", 0, n)
	results := brokertest.AllocateAll(e.broker, brokertest.Students(n, ""))
	e.clock.Advance(poolCfg.LabDuration + poolCfg.Grace + time.Minute)

	var wg sync.WaitGroup
	start := make(chan struct{})
	var sum jobs.Summary
	var runErr error
	wg.Go(func() {
		<-start
		sum, runErr = e.runner.Run(ctx, "expiry")
	})
	releaseErrs := make([]error, n)
	for i, r := range results {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		// Spread over the job's run, so both sides win some.
		delay := time.Duration(i) * 40 * time.Millisecond
		wg.Go(func() {
			<-start
			time.Sleep(delay)
			_, releaseErrs[i] = e.broker.Release(ctx, r.Alloc.SandboxID, pool.Holder{Client: r.Req.Client, Student: r.Req.Student}, "req")
		})
	}
	close(start)
	wg.Wait()
	if runErr != nil {
		t.Fatal(runErr)
	}
	byJob, byOwner := 0, 0
	for i, r := range results {
		if releaseErrs[i] != nil {
			t.Fatalf("release by %s: %v", r.Req.Student, releaseErrs[i])
		}
		if s := e.get(t, r.Alloc.SandboxID); s.Status != pool.PendingDeletion {
			t.Fatalf("%s is %s", s.ID, s.Status)
		}
		hist, err := e.pool.History(ctx, r.Alloc.SandboxID)
		if err != nil {
			t.Fatal(err)
		}
		ends := 0
		for _, h := range hist {
			if h.From == pool.Allocated && h.To == pool.PendingDeletion {
				ends++
				if h.Actor == "expiry" {
					byJob++
				} else {
					byOwner++
				}
			}
		}
		if ends != 1 {
			t.Fatalf("%s: allocation ended %d times", r.Alloc.SandboxID, ends)
		}
	}
	t.Logf("expiry ended %d allocations, their owners %d; the job lost %d races", byJob, byOwner, sum.Counts["conflicts"])
	if sum.Counts["expired"] != byJob || sum.Counts["expired"]+sum.Counts["conflicts"] > n {
		t.Fatalf("summary counts %v disagree with the history (%d by the job)", sum.Counts, byJob)
	}
	census := pooltest.Check(t, e.pool)
	if census.Owners != 0 || census.ByStatus[pool.PendingDeletion] != n {
		t.Fatalf("census %+v", census)
	}
}

// An allocation past its expires_at and the grace, which the expiry job has not taken back
// yet, can no longer be extended: ErrLapsed (409 ALLOCATION_LAPSED), nothing written. A
// second earlier it still can.
const labExtension = 24 * time.Hour

func TestExtendRefusesALapsedAllocation(t *testing.T) {
	e := newJobEnv(t, envOptions{})
	brokertest.Fill(t, e.pool, "lab", 0, 1)
	cfg := poolCfg
	cfg.LabExtension, cfg.MaxLabDuration = labExtension, 84*time.Hour
	b := broker.New(e.pool, cfg)
	owner := pool.Holder{Client: "instruqt", Student: "student-1"}
	a, err := b.Allocate(ctx, broker.AllocateRequest{Student: owner.Student, Client: owner.Client})
	if err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(poolCfg.LabDuration + poolCfg.Grace - time.Second)
	s, err := b.Extend(ctx, a.SandboxID, owner, "in-grace")
	if err != nil || s.ExpiresAt != a.ExpiresAt+int64(labExtension/time.Second) {
		t.Fatalf("an extension in the last second of the grace: %+v %v", s, err)
	}

	e.clock.Advance(labExtension + time.Second) // the new expires_at + the grace, exactly
	before := e.get(t, a.SandboxID)
	if _, err := b.Extend(ctx, a.SandboxID, owner, "lapsed"); !errors.Is(err, broker.ErrLapsed) {
		t.Fatalf("extending a lapsed allocation: %v, want ErrLapsed", err)
	}
	if after := e.get(t, a.SandboxID); after.Rev != before.Rev || after.ExpiresAt != before.ExpiresAt {
		t.Fatalf("a refused extension wrote: %+v, was %+v", after, before)
	}
	pooltest.Check(t, e.pool)
	wantCounts(t, e.run(t, "expiry"), map[string]int{"expired": 1})
	pooltest.Check(t, e.pool)
}

// An expiry frees the owner slot and the counter shard: by the expiry job, and by an
// allocation that finds its slot held by a lapsed allocation.
func TestExpiryFreesTheSlotAndTheCounter(t *testing.T) {
	e := newJobEnv(t, envOptions{})
	brokertest.Fill(t, e.pool, "lab", 0, 4)
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

// Allocations made without the cap after the client was enrolled (a process whose
// authorizer cache still said "no cap") are counted by the expiry job, which takes the
// room away from a client it finds at or past its cap.
func TestTheExpiryJobCountsAllocationsMadeWithoutTheCap(t *testing.T) {
	e := newJobEnv(t, envOptions{})
	brokertest.Fill(t, e.pool, "lab", 0, 20)
	if got := brokertest.AllocateN(t, e.broker, "capped", 3, 5); len(got) != 3 {
		t.Fatalf("%d capped allocations, want 3", len(got))
	}
	if got := brokertest.AllocateN(t, e.broker, "stale-cache", 4, 0); len(got) != 4 {
		t.Fatalf("%d uncapped allocations, want 4", len(got))
	}
	pooltest.Check(t, e.pool)
	wantCounts(t, e.run(t, "expiry"), map[string]int{"expired": 0, "cap_counted": 4})
	if got := brokertest.AllocateN(t, e.broker, "after-the-sweep", 10, 5); len(got) != 0 {
		t.Fatalf("%d allocations by a client holding 7 under a cap of 5", len(got))
	}
	if census := pooltest.Check(t, e.pool); census.ByStatus[pool.Allocated] != 7 {
		t.Fatalf("census %+v", census)
	}
	wantCounts(t, e.run(t, "expiry"), map[string]int{"cap_counted": 0})
}
