package broker_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

var drainAdmin = pool.Actor{Kind: "admin", Name: "ops", RequestID: "req-drain"}

// TestDrainRacingABurst races a steady burst of allocations from four processes (four
// brokers, each with its own drain cache) against a drain of everything. Once StartDrain
// returns (the drain is acknowledged), no allocation lands: the pool's allocated count at
// the acknowledgement is its count after the burst went on for another second, and every
// successful allocation returned before the acknowledgement. Replays of allocations made
// before the drain still answer, and new ones are refused with ErrDraining; ending the
// drain lets allocations through again.
func TestDrainRacingABurst(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 300)
	var brokers []*broker.Broker
	for range 4 {
		brokers = append(brokers, broker.New(p, poolCfg))
	}
	held := brokertest.AllocateAll(brokers[0], []broker.AllocateRequest{{Student: "held-0"}, {Student: "held-1"}, {Student: "held-2"}})
	for _, r := range held {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}

	var stop atomic.Bool
	var mu sync.Mutex
	var lastSuccess time.Time
	var successes, refused int
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				_, err := brokers[w%len(brokers)].Allocate(ctx, broker.AllocateRequest{Student: fmt.Sprintf("burst-%d-%d", w, i)})
				mu.Lock()
				switch {
				case err == nil:
					successes++
					lastSuccess = time.Now()
				case errors.Is(err, broker.ErrDraining):
					refused++
				default:
					t.Errorf("allocate: %v", err)
				}
				mu.Unlock()
				time.Sleep(150 * time.Millisecond)
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	if _, err := brokers[0].StartDrain(ctx, "", "CSP maintenance", drainAdmin); err != nil {
		t.Fatal(err)
	}
	acked := time.Now()
	atAck := pooltest.Check(t, p).ByStatus[pool.Allocated]
	time.Sleep(time.Second)
	stop.Store(true)
	wg.Wait()

	after := pooltest.Check(t, p).ByStatus[pool.Allocated]
	if after != atAck {
		t.Fatalf("%d allocations landed after the drain was acknowledged (%d at the acknowledgement, %d after)", after-atAck, atAck, after)
	}
	if lastSuccess.After(acked) {
		t.Fatalf("an allocation succeeded %s after the acknowledgement", lastSuccess.Sub(acked))
	}
	if successes == 0 || refused == 0 {
		t.Fatalf("%d allocations succeeded and %d were refused: the burst did not straddle the drain", successes, refused)
	}
	t.Logf("%d allocations before the acknowledgement, %d refused", successes, refused)

	for _, r := range held {
		a, err := brokers[1].Allocate(ctx, r.Req)
		if err != nil || a.Created || a.SandboxID != r.Alloc.SandboxID {
			t.Fatalf("a replay while draining: %+v, %v", a, err)
		}
	}
	ended, err := brokers[0].EndDrains(ctx, "", true, drainAdmin)
	if err != nil || len(ended) != 1 || ended[0] != "" {
		t.Fatalf("end drains: %v, %v", ended, err)
	}
	time.Sleep(2 * time.Second) // every process's drain read expires
	if _, err := brokers[2].Allocate(ctx, broker.AllocateRequest{Student: "after-the-drain"}); err != nil {
		t.Fatalf("allocate after the drain ended: %v", err)
	}
	h, err := p.DrainHistory(ctx)
	if err != nil || len(h) != 2 || h[0].ActorKind != "admin" || h[0].Actor != "ops" {
		t.Fatalf("drain history %+v, %v", h, err)
	}
	pooltest.Check(t, p)
}

// A drain of one prefix refuses the requests that could get its sandboxes (that prefix,
// a longer one, none at all) and lets the others through.
func TestDrainOfOnePrefix(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab-a", 0, 3)
	brokertest.Fill(t, p, "lab-b", 10, 3)
	b := broker.New(p, poolCfg)
	if _, err := b.StartDrain(ctx, "lab-a", "", drainAdmin); err != nil {
		t.Fatal(err)
	}
	for prefix, refused := range map[string]bool{"lab-a": true, "lab-a-0": true, "": true, "lab": true, "lab-b": false} {
		_, err := b.Allocate(ctx, broker.AllocateRequest{Student: "s-" + prefix, NamePrefix: prefix})
		if errors.Is(err, broker.ErrDraining) != refused || (!refused && err != nil) {
			t.Errorf("prefix %q while lab-a drains: %v", prefix, err)
		}
	}
	if ended, err := b.EndDrains(ctx, "lab-b", false, drainAdmin); err != nil || len(ended) != 0 {
		t.Fatalf("ending a drain that does not exist: %v, %v", ended, err)
	}
	pooltest.Check(t, p)
}

// TestDrainCacheIsTimedOnTheWallClock admits an allocation (the process's drain cache
// reads: no drain), starts a drain (straight in the pool: the acknowledgement delay is not
// what is tested), and then moves the clock as a Lambda freeze does (an hour on the wall
// clock, none on the monotonic one), or steps the wall clock back past the read. The next
// allocation must be refused; a cache timed on the monotonic reading would still be fresh
// and let it claim a drained sandbox.
func TestDrainCacheIsTimedOnTheWallClock(t *testing.T) {
	for _, jump := range testkit.ClockJumps() {
		t.Run(jump.Name, func(t *testing.T) {
			p := pooltest.New(t)
			brokertest.Fill(t, p, "lab", 0, 2)
			b := broker.New(p, poolCfg)
			clock := testkit.NewMonotonicClock()
			broker.SetDrainClock(b, clock.Now)
			if _, err := b.Allocate(ctx, broker.AllocateRequest{Student: "before-the-drain"}); err != nil {
				t.Fatal(err)
			}
			if _, err := p.StartDrain(ctx, pool.Drain{Reason: "CSP maintenance", By: drainAdmin.Name}, drainAdmin); err != nil {
				t.Fatal(err)
			}
			jump.Move(clock)
			if a, err := b.Allocate(ctx, broker.AllocateRequest{Student: "after-the-drain"}); !errors.Is(err, broker.ErrDraining) {
				t.Fatalf("allocation after the drain: %+v, %v; want ErrDraining", a, err)
			}
			pooltest.Check(t, p)
		})
	}
}
