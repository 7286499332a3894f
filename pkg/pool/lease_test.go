package pool_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func wantLeaseHeldBy(t *testing.T, err error, holder string) {
	t.Helper()
	var held *pool.LeaseHeldError
	if !errors.As(err, &held) || !errors.Is(err, pool.ErrLeaseHeld) {
		t.Fatalf("want a *pool.LeaseHeldError, got %v", err)
	}
	if held.Current.Holder != holder {
		t.Fatalf("lease reported held by %q, want %q", held.Current.Holder, holder)
	}
}

func TestLeaseExcludesUntilReleasedOrExpired(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now})

	first, err := p.AcquireLease(ctx, "cleanup", "run-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if first.ExpiresAt != 1_800_000_060 {
		t.Fatalf("lease expires at %d, want now + 60 s", first.ExpiresAt)
	}
	_, err = p.AcquireLease(ctx, "cleanup", "run-2", time.Minute)
	wantLeaseHeldBy(t, err, "run-1")
	if _, err := p.AcquireLease(ctx, "sync", "run-3", time.Minute); err != nil {
		t.Fatalf("another job's lease is independent: %v", err)
	}

	// At exactly expires_at the lease still holds; a second later it is free to take.
	clock.Advance(time.Minute)
	_, err = p.AcquireLease(ctx, "cleanup", "run-2", time.Minute)
	wantLeaseHeldBy(t, err, "run-1")
	clock.Advance(time.Second)
	second, err := p.AcquireLease(ctx, "cleanup", "run-2", time.Minute)
	if err != nil {
		t.Fatalf("take over an expired lease: %v", err)
	}

	// The late first run must not free its successor's lease.
	wantLeaseHeldBy(t, p.ReleaseLease(ctx, first), "run-2")
	_, err = p.AcquireLease(ctx, "cleanup", "run-4", time.Minute)
	wantLeaseHeldBy(t, err, "run-2")

	if err := p.ReleaseLease(ctx, second); err != nil {
		t.Fatal(err)
	}
	if err := p.ReleaseLease(ctx, second); err != nil {
		t.Fatalf("releasing a lease already gone: %v", err)
	}
	if _, err := p.AcquireLease(ctx, "cleanup", "run-4", time.Minute); err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
}

func TestLeaseConcurrentAcquireHasOneWinner(t *testing.T) {
	p := pooltest.New(t)
	const runs = 20
	var wg sync.WaitGroup
	errs := make([]error, runs)
	start := make(chan struct{})
	for i := range runs {
		wg.Go(func() {
			<-start
			_, errs[i] = p.AcquireLease(ctx, "sync", fmt.Sprintf("run-%d", i), time.Minute)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, pool.ErrLeaseHeld):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d runs acquired the lease, want exactly 1", won)
	}
	pooltest.Check(t, p)
}

// An SDK retry of the lease put whose first attempt landed finds the lease held by the
// same run: that is the run's own lease, not another run's.
func TestLeaseRetriedByItsHolderIsItsOwn(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now})
	first, err := p.AcquireLease(ctx, "sync", "run-1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Second)
	again, err := p.AcquireLease(ctx, "sync", "run-1", time.Minute)
	if err != nil || again != first {
		t.Fatalf("the holder's second acquire = %+v, %v; want its lease %+v", again, err, first)
	}
	_, err = p.AcquireLease(ctx, "sync", "run-2", time.Minute)
	wantLeaseHeldBy(t, err, "run-1")
	if err := p.ReleaseLease(ctx, again); err != nil {
		t.Fatal(err)
	}
	pooltest.Check(t, p)
}
