package broker_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// onFirstDeal runs take between b's first pick and its claim: another process (a second
// pool object on the same table) claims what take returns, so b's page is stale. It returns
// the candidates b picked, in order, how many reads were logged when take had run, and the
// log of b's candidate reads.
func onFirstDeal(t *testing.T, b *broker.Broker, other *pool.Pool, take func(dealt pool.Sandbox) []pool.Sandbox) (dealt func() []pool.Sandbox, tookAt func() int, reads *readLog) {
	t.Helper()
	var mu sync.Mutex
	var seen []pool.Sandbox
	took := -1
	reads = &readLog{}
	broker.ObserveCandidateReads(b, reads.add)
	broker.SetAfterPick(b, func(c pool.Sandbox) {
		mu.Lock()
		seen = append(seen, c)
		first := len(seen) == 1
		mu.Unlock()
		if !first {
			return
		}
		now := time.Now()
		for i, s := range take(c) {
			bob := fmt.Sprint("bob-", i)
			if _, err := other.Claim(ctx, s, pool.Claim{Student: bob, IdempotencyKey: bob,
				AllocatedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}, pool.Actor{Kind: "student", Name: bob}); err != nil {
				t.Errorf("the other process's claim of %s: %v", s.ID, err)
			}
		}
		mu.Lock()
		took = reads.len()
		mu.Unlock()
	})
	return func() []pool.Sandbox {
			mu.Lock()
			defer mu.Unlock()
			return append([]pool.Sandbox(nil), seen...)
		}, func() int {
			mu.Lock()
			defer mu.Unlock()
			return took
		}, reads
}

// readLog records each candidate page read: its shard and how many it listed. One
// allocation waits for each read it makes, so every read logged after the other process's
// claim started after it.
type readLog struct {
	mu     sync.Mutex
	shards []int
	listed []int
}

func (l *readLog) add(shard int, listed []pool.Sandbox) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.shards = append(l.shards, shard)
	l.listed = append(l.listed, len(listed))
}

func (l *readLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.shards)
}

func TestAllocateMovesOnFromAStalePage(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 2)
	b := broker.New(p, poolCfg)
	dealt, _, _ := onFirstDeal(t, b, pool.New(pooltest.Client(), p.Table(), pool.Options{}), func(c pool.Sandbox) []pool.Sandbox { return []pool.Sandbox{c} })

	a, err := b.Allocate(ctx, broker.AllocateRequest{Student: "alice"})
	if err != nil || !a.Created {
		t.Fatalf("alice after a lost claim: %+v %v", a, err)
	}
	got := dealt()
	if len(got) != 2 || got[0].ID == got[1].ID {
		t.Fatalf("picked %v: want the taken candidate, then the other one", got)
	}
	if a.SandboxID != got[1].ID {
		t.Fatalf("alice got %s, want %s (the one not taken)", a.SandboxID, got[1].ID)
	}
	taken, err := p.Get(ctx, got[0].ID)
	if err != nil || taken.Owner != "bob-0" {
		t.Fatalf("the taken candidate: %+v %v, want bob's", taken, err)
	}
	census := pooltest.Check(t, p)
	if census.ByStatus[pool.Allocated] != 2 || census.Owners != 2 {
		t.Fatalf("census %+v", census)
	}
}

func TestAllocateExhaustionBehindAStalePageComesFromFreshReads(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 40) // these IDs put at least two sandboxes in every shard
	b := broker.New(p, poolCfg)
	other := pool.New(pooltest.Client(), p.Table(), pool.Options{})
	// Between alice's first deal and her claim, the other process takes every free sandbox:
	// the rest of alice's page is stale too.
	dealt, tookAt, reads := onFirstDeal(t, b, other, func(pool.Sandbox) []pool.Sandbox {
		var all []pool.Sandbox
		for shard := range pool.Shards {
			page, err := other.Candidates(ctx, shard, "", 100)
			if err != nil {
				t.Error(err)
			}
			all = append(all, page...)
		}
		return all
	})

	if _, err := b.Allocate(ctx, broker.AllocateRequest{Student: "alice"}); !errors.Is(err, broker.ErrNoSandbox) {
		t.Fatalf("every sandbox taken behind alice's page: want ErrNoSandbox, got %v", err)
	}
	reads.mu.Lock()
	defer reads.mu.Unlock()
	before := tookAt()
	if before != 1 || reads.listed[0] < 2 {
		t.Fatalf("reads before the other process took the pool: %d listing %v; want one page of several", before, reads.listed)
	}
	// The lost claim discarded the page: none of its other (taken) candidates was claimed.
	if got := dealt(); len(got) != 1 {
		t.Fatalf("picked %d candidates, want only the first: a lost claim must discard its page", len(got))
	}
	// The 409 rests on reads of every shard made after the page went stale, all empty.
	after := map[int]bool{}
	for i, shard := range reads.shards[before:] {
		if n := reads.listed[before+i]; n != 0 {
			t.Fatalf("shard %d listed %d after the pool was taken, yet the answer was ErrNoSandbox", shard, n)
		}
		after[shard] = true
	}
	if len(after) != pool.Shards {
		t.Fatalf("read %d shards after the page went stale, want all %d (reads %v)", len(after), pool.Shards, reads.shards)
	}
	census := pooltest.Check(t, p)
	if census.ByStatus[pool.Allocated] != 40 || census.Owners != 40 {
		t.Fatalf("census %+v", census)
	}
}
