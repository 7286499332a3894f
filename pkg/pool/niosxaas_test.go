package pool_test

import (
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// pending puts the account's sandbox into pending_deletion at the clock's time.
func pending(t *testing.T, p *pool.Pool, clock *testkit.Clock, a pool.Account) pool.Sandbox {
	t.Helper()
	s := seed(t, p, a)[0]
	if _, err := p.Claim(ctx, s, claimFor("s-"+a.ID, clock.Now()), student); err != nil {
		t.Fatal(err)
	}
	s, err := p.Release(ctx, mustGet(t, p, s.ID), pool.Holder{Student: "s-" + a.ID}, student)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRecordNIOSXaaS: a finished step is recorded without touching the ledger; a retried
// failure also books an attempt; both keep a history entry with the outcome; a write on
// a state that changed since it was read is refused.
func TestRecordNIOSXaaS(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now})
	s := pending(t, p, clock, account(1))
	job := pool.Actor{Kind: "job", Name: "cleanup"}

	failed, err := p.RecordNIOSXaaS(ctx, s, pool.NIOSXaaSStep{Outcome: pool.NIOSXaaSFailed, Reason: "list services: HTTP 502"}, clock.Now().Unix()+60, job)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, s.ID); got != failed || got.Attempts != 1 || got.NIOSXaaSFailures != 1 || got.StatusAt != clock.Now().Unix()+60 ||
		got.LastError != "niosxaas: list services: HTTP 502" {
		t.Fatalf("stored %+v, returned %+v", got, failed)
	}
	if _, err := p.RecordNIOSXaaS(ctx, s, pool.NIOSXaaSStep{Outcome: pool.NIOSXaaSCleaned, Services: 1}, 0, job); err == nil || !pool.LostRace(err) {
		t.Fatalf("a write on the state before the failure: %v", err)
	}
	cleaned, err := p.RecordNIOSXaaS(ctx, failed, pool.NIOSXaaSStep{Outcome: pool.NIOSXaaSCleaned, Services: 2}, 0, job)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, s.ID); got != cleaned || got.Attempts != 1 || got.NIOSXaaSFailures != 1 || got.NIOSXaaSOutcome != pool.NIOSXaaSCleaned ||
		got.NIOSXaaSServices != 2 || got.NIOSXaaSReason != "" || !got.NIOSXaaSStep().Finished() {
		t.Fatalf("stored %+v", got)
	}
	if _, err := p.RecordNIOSXaaS(ctx, cleaned, pool.NIOSXaaSStep{Outcome: pool.NIOSXaaSShadow}, clock.Now().Unix(), job); err == nil {
		t.Fatal("a retry booked for a finished step")
	}
	h, err := p.History(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	steps := 0
	for _, e := range h {
		if e.From == pool.PendingDeletion && e.To == pool.PendingDeletion {
			steps++
		}
	}
	if steps != 2 {
		t.Fatalf("%d step entries in %+v", steps, h)
	}
	pooltest.Check(t, p)
}

// TestStatsOldestPendingDeletion: the oldest request wins even when a failed delete has
// moved it behind newer ones in StatusIndex.
func TestStatsOldestPendingDeletion(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now, PageSize: 1})
	if st, err := p.Stats(ctx); err != nil || st.OldestPendingDeletionAt != 0 {
		t.Fatalf("empty pool: %+v, %v", st, err)
	}
	first := pending(t, p, clock, account(1))
	if _, err := p.RecordDeleteFailure(ctx, first, clock.Now().Add(time.Hour).Unix(), "HTTP 500", pool.Actor{Kind: "job", Name: "cleanup"}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	pending(t, p, clock, account(2))
	clock.Advance(time.Minute)
	pending(t, p, clock, account(3))
	st, err := p.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.ByStatus[pool.PendingDeletion] != 3 || st.OldestPendingDeletionAt != first.DeletionRequestedAt {
		t.Fatalf("stats %+v, want 3 pending, oldest %d", st, first.DeletionRequestedAt)
	}
	pooltest.Check(t, p)
}
