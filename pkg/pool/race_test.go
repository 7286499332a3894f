package pool_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// A sync works from a listing read before it writes. Racing 200 claims with a refresh of
// every sandbox from that stale read (and stale-marking of a third of them) must undo no
// claim (docs/upstream.md D1): every write is conditioned on the version it read.
func TestSyncWritesNeverRevertClaims(t *testing.T) {
	p := pooltest.New(t)
	var accounts []pool.Account
	for i := range 200 {
		accounts = append(accounts, account(i))
	}
	snapshot := seed(t, p, accounts...)
	now := time.Now()

	var wg sync.WaitGroup
	start := make(chan struct{})
	claimed := make([]bool, len(snapshot))
	var refreshed, refused atomic.Int64
	for i, s := range snapshot {
		wg.Go(func() {
			<-start
			_, err := p.Claim(ctx, s, claimFor(fmt.Sprint("student-", i), now), student)
			claimed[i] = err == nil
			if err != nil && !errors.Is(err, pool.ErrConflict) && !errors.Is(err, pool.ErrContended) {
				t.Errorf("claim %s: %v", s.ID, err)
			}
		})
		wg.Go(func() {
			<-start
			var err error
			if i%3 == 0 {
				_, err = p.MarkStale(ctx, s, syncJob)
			} else {
				a := accounts[i]
				a.Name, a.SFDCAccountID = a.Name+"-renamed", "0016g00000XYZ"
				_, err = p.Refresh(ctx, s, a)
			}
			switch {
			case err == nil:
				refreshed.Add(1)
			case errors.Is(err, pool.ErrConflict), errors.Is(err, pool.ErrContended):
				refused.Add(1)
			default:
				t.Errorf("sync write %s: %v", s.ID, err)
			}
		})
	}
	close(start)
	wg.Wait()

	// Claim and sync write both require the version read before the race: exactly one of
	// each pair lands, and a landed claim is never undone.
	census := pooltest.Check(t, p)
	won := 0
	for i, s := range snapshot {
		cur := mustGet(t, p, s.ID)
		if claimed[i] {
			won++
			if cur.Status != pool.Allocated || cur.Owner != fmt.Sprint("student-", i) || cur.Name != s.Name {
				t.Fatalf("claimed sandbox %s was touched by sync: %+v", s.ID, cur)
			}
		} else if cur.Status == pool.Allocated {
			t.Fatalf("sandbox %s is allocated but its claim failed: %+v", s.ID, cur)
		}
	}
	if census.ByStatus[pool.Allocated] != won || won+int(refreshed.Load()) != 200 || int(refused.Load()) != won {
		t.Fatalf("census %+v, %d claims won, %d sync writes applied, %d refused", census, won, refreshed.Load(), refused.Load())
	}
	t.Logf("%d claims won, %d sync writes applied, %d refused", won, refreshed.Load(), refused.Load())
}

// The owner's release and the expiry job race for the same 60 sandboxes: for each exactly
// one transition wins, the loser is told why, and the owner record is gone.
func TestReleaseRacingExpiryOneWins(t *testing.T) {
	p := pooltest.New(t)
	var accounts []pool.Account
	for i := range 60 {
		accounts = append(accounts, account(i))
	}
	past := time.Now().Add(-72 * time.Hour)
	var allocated []pool.Sandbox
	for i, s := range seed(t, p, accounts...) {
		if _, err := p.Claim(ctx, s, claimFor(fmt.Sprint("student-", i), past), student); err != nil {
			t.Fatal(err)
		}
		allocated = append(allocated, mustGet(t, p, s.ID))
	}
	cutoff := time.Now().Add(-30 * time.Minute).Unix()
	var releases, expiries atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for _, s := range allocated {
		results := make(chan error, 2)
		wg.Go(func() {
			<-start
			_, err := p.Release(ctx, s, pool.Holder{Client: s.Client, Student: s.Owner}, pool.Actor{Kind: "student", Name: s.Owner})
			if err == nil {
				releases.Add(1)
			}
			results <- err
		})
		wg.Go(func() {
			<-start
			_, err := p.Expire(ctx, s, cutoff, pool.Actor{Kind: "job", Name: "expiry"})
			if err == nil {
				expiries.Add(1)
			}
			results <- err
		})
		wg.Go(func() {
			a, b := <-results, <-results
			if (a == nil) == (b == nil) {
				t.Errorf("%s: release/expire results %v and %v, want exactly one success", s.ID, a, b)
				return
			}
			loser := a
			if loser == nil {
				loser = b
			}
			var ce *pool.ConditionError
			if !errors.Is(loser, pool.ErrContended) && !(errors.As(loser, &ce) && ce.Reason == "status is pending_deletion, want allocated") {
				t.Errorf("%s: loser error %v", s.ID, loser)
			}
		})
	}
	close(start)
	wg.Wait()

	census := pooltest.Check(t, p)
	if census.Owners != 0 || census.ByStatus[pool.PendingDeletion] != 60 {
		t.Fatalf("census %+v", census)
	}
	for _, s := range allocated {
		hist, err := p.History(ctx, s.ID)
		if err != nil {
			t.Fatal(err)
		}
		ends := 0
		for _, h := range hist {
			if h.From == pool.Allocated && h.To == pool.PendingDeletion {
				ends++
			}
		}
		if ends != 1 {
			t.Fatalf("%s: %d allocated→pending_deletion entries in history, want 1", s.ID, ends)
		}
	}
	t.Logf("%d releases and %d expiries won", releases.Load(), expiries.Load())
}
