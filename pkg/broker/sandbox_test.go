package broker_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestSandboxAndReleaseByOwner(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 2)
	b := broker.New(p, poolCfg)
	a, err := b.Allocate(ctx, broker.AllocateRequest{Student: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := b.Sandbox(ctx, a.SandboxID, pool.Holder{Student: "alice"}); err != nil || s.Status != pool.Allocated {
		t.Fatalf("owner read: %+v %v", s, err)
	}
	if _, err := b.Sandbox(ctx, a.SandboxID, pool.Holder{Student: "bob"}); !errors.Is(err, broker.ErrNotOwner) {
		t.Fatalf("another student's read: want ErrNotOwner, got %v", err)
	}
	if _, err := b.Sandbox(ctx, "999", pool.Holder{Student: "alice"}); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("unknown sandbox: want ErrNotFound, got %v", err)
	}
	if _, err := b.Release(ctx, a.SandboxID, pool.Holder{Student: "bob"}, "r0"); !errors.Is(err, broker.ErrNotOwner) {
		t.Fatalf("another student's release: want ErrNotOwner, got %v", err)
	}
	first, err := b.Release(ctx, a.SandboxID, pool.Holder{Student: "alice"}, "r1")
	if err != nil || first.Status != pool.PendingDeletion {
		t.Fatalf("release: %+v %v", first, err)
	}
	again, err := b.Release(ctx, a.SandboxID, pool.Holder{Student: "alice"}, "r2")
	if err != nil || again.DeletionRequestedAt != first.DeletionRequestedAt || again.Status != pool.PendingDeletion {
		t.Fatalf("repeated release must answer the same: %+v %v", again, err)
	}
	if s, err := b.Sandbox(ctx, a.SandboxID, pool.Holder{Student: "alice"}); err != nil || s.Status != pool.PendingDeletion {
		t.Fatalf("the owner still reads a released sandbox until it is deleted: %+v %v", s, err)
	}
	if _, err := b.Release(ctx, "999", pool.Holder{Student: "alice"}, "r3"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("unknown sandbox: want ErrNotFound, got %v", err)
	}
	// Another available sandbox is nobody's: not the student's to release.
	for s, err := range p.ByStatus(ctx, pool.Available, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Release(ctx, s.ID, pool.Holder{Student: "alice"}, "r4"); !errors.Is(err, broker.ErrNotOwner) {
			t.Fatalf("releasing an available sandbox: want ErrNotOwner, got %v", err)
		}
	}
	pooltest.Check(t, p)
}

// The owner's release races the expiry job on every sandbox: both answer without error
// (the owner's call is idempotent), each sandbox is ended once, no owner record remains.
func TestReleaseRacingExpiryThroughBroker(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 40)
	then := time.Now().Add(-49 * time.Hour)
	b := broker.New(p, poolCfg)
	results := brokertest.AllocateAll(broker.New(pooltest.Clocked(p, func() time.Time { return then }), poolCfg), brokertest.Students(40, ""))
	cutoff := time.Now().Add(-poolCfg.Grace).Unix()
	var wg sync.WaitGroup
	for _, r := range results {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		wg.Go(func() {
			if _, err := b.Release(ctx, r.Alloc.SandboxID, pool.Holder{Client: r.Req.Client, Student: r.Req.Student}, "req"); err != nil {
				t.Errorf("release %s: %v", r.Alloc.SandboxID, err)
			}
		})
		wg.Go(func() {
			s, err := p.Get(ctx, r.Alloc.SandboxID)
			if err != nil {
				t.Error(err)
				return
			}
			if _, err := p.Expire(ctx, s, cutoff, pool.Actor{Kind: "job", Name: "expiry"}); err != nil &&
				!errors.Is(err, pool.ErrConflict) && !errors.Is(err, pool.ErrContended) {
				t.Errorf("expire %s: %v", s.ID, err)
			}
		})
	}
	wg.Wait()
	census := pooltest.Check(t, p)
	if census.Owners != 0 || census.ByStatus[pool.PendingDeletion] != 40 {
		t.Fatalf("census %+v", census)
	}
}
