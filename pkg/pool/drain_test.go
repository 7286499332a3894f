package pool_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

var drainAdmin = pool.Actor{Kind: "admin", Name: "ops"}

// available lists every candidate of the claimable shards whose name starts with prefix.
func available(t *testing.T, p *pool.Pool, prefix string) []pool.Sandbox {
	t.Helper()
	var all []pool.Sandbox
	for shard := range pool.Shards {
		page, err := p.Candidates(ctx, shard, prefix, 1000)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
	}
	return all
}

// TestDrainTakesItsSandboxesOutOfAllocation: once StartDrain returns, the pages allocation
// reads list none of the drained sandboxes, and a claim from a page read before the drain
// loses (its rev moved): the drain needs no check in the claim and no read by allocation.
// Other prefixes stay claimable; the stats still count the drained sandboxes as available;
// EndDrains gives them back.
func TestDrainTakesItsSandboxesOutOfAllocation(t *testing.T) {
	p := pooltest.New(t)
	var accounts []pool.Account
	for i := range 40 {
		a := account(i)
		if i%2 == 1 {
			a.Name = strings.Replace(a.Name, "lab-", "web-", 1)
		}
		accounts = append(accounts, a)
	}
	seed(t, p, accounts...)
	before := available(t, p, "")
	if len(before) != 40 {
		t.Fatalf("%d candidates before the drain, want 40", len(before))
	}
	if _, err := p.StartDrain(ctx, pool.Drain{Prefix: "lab-", Reason: "maintenance"}, drainAdmin); err != nil {
		t.Fatal(err)
	}
	if got := available(t, p, "lab-"); len(got) != 0 {
		t.Fatalf("the drained prefix still lists %d candidates", len(got))
	}
	if got := available(t, p, "web-"); len(got) != 20 {
		t.Fatalf("another prefix lists %d candidates, want 20", len(got))
	}
	claims := 0
	for i, c := range before {
		_, err := p.Claim(ctx, c, claimFor(c.ID, time.Now()), student)
		switch {
		case strings.HasPrefix(c.Name, "lab-"):
			if !pool.LostRace(err) {
				t.Fatalf("claim %d of drained %s from a page read before the drain: %v, want a lost race", i, c.Name, err)
			}
		case err != nil:
			t.Fatalf("claim of %s: %v", c.Name, err)
		default:
			claims++
		}
	}
	st, err := p.Stats(ctx)
	if err != nil || st.ByStatus[pool.Available] != 20 || st.AvailableByPrefix["lab"] != 20 {
		t.Fatalf("stats while draining: %+v, %v; want the 20 drained sandboxes available", st, err)
	}
	pooltest.Check(t, p)

	if ended, err := p.EndDrains(ctx, "lab-", false, drainAdmin); err != nil || len(ended) != 1 {
		t.Fatalf("end drain: %v, %v", ended, err)
	}
	back := available(t, p, "lab-")
	if len(back) != 20 {
		t.Fatalf("%d candidates after the drain ended, want 20", len(back))
	}
	if _, err := p.Claim(ctx, back[0], claimFor("after", time.Now()), student); err != nil {
		t.Fatalf("claim after the drain ended: %v", err)
	}
	if census := pooltest.Check(t, p); census.ByStatus[pool.Allocated] != claims+1 {
		t.Fatalf("census %+v, want %d allocated", census, claims+1)
	}
}

// TestSyncWritesRacingADrain starts a drain between a sync write's read of the drains and
// its write, for each write that makes a sandbox available (a create, an unstale, a
// rename into the drained prefix). The write is refused on the drain state, decided again
// and lands in the drained shard: allocation never lists it, and the checker finds every
// sandbox in the shard the drains give it.
func TestSyncWritesRacingADrain(t *testing.T) {
	for _, write := range []string{"create", "unstale", "rename"} {
		t.Run(write, func(t *testing.T) {
			p := pooltest.New(t)
			admin := pool.New(pooltest.Client(), p.Table(), pool.Options{})
			var cur pool.Sandbox
			a := account(1)
			switch write {
			case "unstale":
				cur = seed(t, p, a)[0]
				var err error
				if cur, err = p.MarkStale(ctx, cur, syncJob); err != nil {
					t.Fatal(err)
				}
			case "rename":
				a.Name = "web-0001"
				cur = seed(t, p, a)[0]
				a.Name = "lab-0001"
			}
			reads := 0
			pool.SetAfterGateRead(p, func() {
				if reads++; reads == 1 {
					if _, err := admin.StartDrain(ctx, pool.Drain{Prefix: "lab-"}, drainAdmin); err != nil {
						t.Error(err)
					}
				}
			})
			var err error
			switch write {
			case "create":
				_, err = p.Create(ctx, a, syncJob)
			case "unstale":
				_, err = p.Unstale(ctx, cur, a, syncJob)
			case "rename":
				_, err = p.Refresh(ctx, cur, a)
			}
			if err != nil {
				t.Fatalf("%s racing a drain: %v", write, err)
			}
			if reads != 2 {
				t.Fatalf("the %s read the drains %d times, want twice (refused once on the drain state)", write, reads)
			}
			if got := available(t, p, ""); len(got) != 0 {
				t.Fatalf("allocation lists %v after a %s under a drain", got, write)
			}
			pooltest.Check(t, p)
		})
	}
}
