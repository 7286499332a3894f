package broker_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestExpiryBoundaries(t *testing.T) {
	e := newJobEnv(t, envOptions{})
	fill(t, e.pool, "lab", 0, 3)
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
	fill(t, e.pool, "lab", 0, n)
	results := allocateAll(e.broker, students(n, ""))
	e.clock.Advance(poolCfg.LabDuration + poolCfg.Grace + time.Minute)

	var wg sync.WaitGroup
	start := make(chan struct{})
	var sum broker.RunSummary
	var runErr error
	wg.Go(func() {
		<-start
		sum, runErr = e.runner.Run(ctx, "expiry")
	})
	releaseErrs := make([]error, n)
	for i, r := range results {
		if r.err != nil {
			t.Fatal(r.err)
		}
		// Spread over the job's run, so both sides win some.
		delay := time.Duration(i) * 40 * time.Millisecond
		wg.Go(func() {
			<-start
			time.Sleep(delay)
			_, releaseErrs[i] = e.broker.Release(ctx, r.alloc.SandboxID, pool.Holder{Client: r.req.Client, Student: r.req.Student}, "req")
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
			t.Fatalf("release by %s: %v", r.req.Student, releaseErrs[i])
		}
		if s := e.get(t, r.alloc.SandboxID); s.Status != pool.PendingDeletion {
			t.Fatalf("%s is %s", s.ID, s.Status)
		}
		hist, err := e.pool.History(ctx, r.alloc.SandboxID)
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
			t.Fatalf("%s: allocation ended %d times", r.alloc.SandboxID, ends)
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
