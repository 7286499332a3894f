package jobs_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestStaleCleanupRemovesOnlyRecordsPastTheGrace(t *testing.T) {
	accounts := cspfake.Generate(5, nil)
	e := newJobEnv(t, envOptions{})
	for _, a := range accounts {
		if _, err := e.pool.Create(ctx, asPoolAccount(a), syncJob); err != nil {
			t.Fatal(err)
		}
	}
	// accounts 0, 1, 2 go stale a second apart; 3 goes stale first but comes back; 4
	// stays available.
	staleOrder := []int{3, 0, 1, 2}
	for _, i := range staleOrder {
		if _, err := e.pool.MarkStale(ctx, e.get(t, sandboxID(accounts[i])), syncJob); err != nil {
			t.Fatal(err)
		}
		if i != 3 {
			e.clock.Advance(time.Second)
		}
	}
	if _, err := e.pool.Unstale(ctx, e.get(t, sandboxID(accounts[3])), asPoolAccount(accounts[3]), syncJob); err != nil {
		t.Fatal(err)
	}
	// Now is exactly stale_since + 24 h of account 1.
	e.clock.Advance(-2*time.Second + e.cfg.StaleGrace)

	sum := e.run(t, "stale-cleanup")
	wantCounts(t, sum, map[string]int{"removed": 2, "conflicts": 0})
	for i, gone := range []bool{true, true, false, false, false} {
		_, err := e.pool.Get(ctx, sandboxID(accounts[i]))
		if gone != errors.Is(err, pool.ErrNotFound) {
			t.Fatalf("account %d: removed=%v, want %v (%v)", i, !gone, gone, err)
		}
	}
	if s := e.get(t, sandboxID(accounts[2])); s.Status != pool.Stale {
		t.Fatalf("a second short of the grace: %+v", s)
	}
	hist, err := e.pool.History(ctx, sandboxID(accounts[0]))
	if err != nil || hist[0].From != pool.Stale || hist[0].To != pool.Removed || hist[0].Actor != "stale-cleanup" {
		t.Fatalf("history %+v, %v", hist, err)
	}
	e.clock.Advance(time.Second)
	wantCounts(t, e.run(t, "stale-cleanup"), map[string]int{"removed": 1})
	census := pooltest.Check(t, e.pool)
	if census.ByStatus[pool.Available] != 2 || census.ByStatus[pool.Stale] != 0 {
		t.Fatalf("census %+v", census)
	}
	if len(e.fake.Requests()) != 0 {
		t.Fatal("stale-cleanup called the CSP")
	}
}
