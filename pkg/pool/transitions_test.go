package pool_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

var (
	ctx     = context.Background()
	syncJob = pool.Actor{Kind: "job", Name: "sync"}
	student = pool.Actor{Kind: "student", Name: "alice", RequestID: "req-1"}
)

func account(i int) pool.Account {
	return pool.Account{
		ID: fmt.Sprint(2000000 + i), Name: fmt.Sprintf("lab-%04d", i),
		ExternalID: fmt.Sprintf("identity/accounts/%08d-0000-4000-8000-000000000000", i), CreatedAt: 1700000000,
	}
}

func seed(t *testing.T, p *pool.Pool, accounts ...pool.Account) []pool.Sandbox {
	t.Helper()
	out := make([]pool.Sandbox, len(accounts))
	for i, a := range accounts {
		s, err := p.Create(ctx, a, syncJob)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = s
	}
	return out
}

func claimFor(who string, now time.Time) pool.Claim {
	return pool.Claim{Student: who, IdempotencyKey: who, AllocatedAt: now.Unix(), ExpiresAt: now.Add(48 * time.Hour).Unix()}
}

func mustGet(t *testing.T, p *pool.Pool, id string) pool.Sandbox {
	t.Helper()
	s, err := p.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wantCondition(t *testing.T, err error, item, reason string) *pool.ConditionError {
	t.Helper()
	var ce *pool.ConditionError
	if !errors.As(err, &ce) {
		t.Fatalf("want a *pool.ConditionError on the %s, got %v", item, err)
	}
	if ce.Item != item || ce.Reason != reason {
		t.Fatalf("want %s condition %q, got %s %q", item, reason, ce.Item, ce.Reason)
	}
	if !errors.Is(err, pool.ErrConflict) {
		t.Fatalf("errors.Is(err, ErrConflict) is false for %v", err)
	}
	return ce
}

func TestCreateRefusesExistingSandbox(t *testing.T) {
	p := pooltest.New(t)
	seed(t, p, account(1))
	_, err := p.Create(ctx, account(1), syncJob)
	wantCondition(t, err, pool.ItemSandbox, "already exists (status available)")
	pooltest.Check(t, p)
}

func TestClaimWritesSandboxAndOwnerInOneTransaction(t *testing.T) {
	p := pooltest.New(t)
	s := seed(t, p, account(1))[0]
	now := time.Now()
	c := claimFor("alice", now)
	c.TrackName, c.Client = "dns-101", "instruqt"
	owner, err := p.Claim(ctx, s, c, student)
	if err != nil {
		t.Fatal(err)
	}
	if owner.SandboxID != s.ID || owner.ExpiresAt != c.ExpiresAt || owner.Name != s.Name {
		t.Fatalf("owner record %+v does not describe the claim", owner)
	}
	got := mustGet(t, p, s.ID)
	if got.Status != pool.Allocated || got.Owner != "alice" || got.StatusAt != c.ExpiresAt || got.Rev != 2 || got.TrackName != "dns-101" {
		t.Fatalf("claimed sandbox %+v", got)
	}
	alice := c.Holder()
	rec, found, err := p.OwnerRecord(ctx, alice, "alice")
	if err != nil || !found || rec != owner {
		t.Fatalf("owner record %+v found=%v err=%v, want %+v", rec, found, err, owner)
	}
	hist, err := p.History(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 || hist[0].From != pool.Available || hist[0].To != pool.Allocated || hist[0].Actor != "alice" || hist[0].RequestID != "req-1" {
		t.Fatalf("history newest first = %+v", hist)
	}
	// The claim wrote two items: the allocation's entry rides on the record.
	census := pooltest.Check(t, p)
	if census.ByStatus[pool.Allocated] != 1 || census.Owners != 1 || census.History != 1 {
		t.Fatalf("census %+v", census)
	}
	// The release moves it into the history with its original time, in order.
	if _, err := p.Release(ctx, got, alice, student); err != nil {
		t.Fatal(err)
	}
	after, err := p.History(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 3 || after[0].To != pool.PendingDeletion || after[1] != hist[0] || after[2] != hist[1] {
		t.Fatalf("history after release, newest first = %+v, want the release before %+v", after, hist)
	}
	if census := pooltest.Check(t, p); census.History != 3 || mustGet(t, p, s.ID).Allocation != nil {
		t.Fatalf("census after release %+v", census)
	}
}

func TestClaimConditions(t *testing.T) {
	p := pooltest.New(t)
	ss := seed(t, p, account(1), account(2))
	now := time.Now()
	if _, err := p.Claim(ctx, ss[0], claimFor("alice", now), student); err != nil {
		t.Fatal(err)
	}

	t.Run("sandbox taken", func(t *testing.T) {
		_, err := p.Claim(ctx, ss[0], claimFor("bob", now), student)
		ce := wantCondition(t, err, pool.ItemSandbox, "status is allocated, want available")
		if ce.Current == nil || ce.Current.ID != ss[0].ID {
			t.Fatalf("condition error carries no current item: %+v", ce)
		}
	})
	t.Run("owner record exists", func(t *testing.T) {
		_, err := p.Claim(ctx, ss[1], claimFor("alice", now), student)
		ce := wantCondition(t, err, pool.ItemOwner, "slot 0 holds sandbox "+ss[0].ID)
		if ce.Owner == nil || ce.Owner.SandboxID != ss[0].ID {
			t.Fatalf("owner condition error carries no owner record: %+v", ce)
		}
		if s := mustGet(t, p, ss[1].ID); s.Status != pool.Available {
			t.Fatalf("a refused transaction changed the candidate: %+v", s)
		}
	})
	t.Run("stale read", func(t *testing.T) {
		old := ss[1]
		old.Rev = 7
		_, err := p.Claim(ctx, old, claimFor("carol", now), student)
		wantCondition(t, err, pool.ItemSandbox, "changed since it was read (rev 1, want 7)")
	})
	t.Run("missing", func(t *testing.T) {
		ghost := ss[1]
		ghost.ID = "404"
		_, err := p.Claim(ctx, ghost, claimFor("dave", now), student)
		wantCondition(t, err, pool.ItemSandbox, "sandbox not found")
		if !errors.Is(err, pool.ErrNotFound) {
			t.Fatalf("missing sandbox is not ErrNotFound: %v", err)
		}
	})
	pooltest.Check(t, p)
}
