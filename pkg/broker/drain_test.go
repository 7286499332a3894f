package broker_test

import (
	"errors"
	"fmt"
	"strings"
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
// brokers) against a drain of everything. Once StartDrain returns (the drain is in force),
// no allocation lands: the pool's allocated count when it returned is its count once every
// worker of the burst has been refused. Replays of allocations made before the drain still
// answer, and new ones are refused with ErrDraining; ending the drain lets allocations
// through again at once.
//
// Nothing waits on the clock: the drain starts once the burst has placed allocations, at
// most beforeAck allocations start before it is acknowledged (the pool never runs out,
// however long StartDrain takes), and each worker goes on until it is refused.
func TestDrainRacingABurst(t *testing.T) {
	const workers, beforeAck = 8, 120
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, beforeAck+3+workers)
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

	var (
		started            atomic.Int64
		acked              = make(chan struct{})
		mu                 sync.Mutex
		successes, refused int
		wg                 sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-acked:
				default:
					if started.Add(1) > beforeAck {
						<-acked
					}
				}
				_, err := brokers[w%len(brokers)].Allocate(ctx, broker.AllocateRequest{Student: fmt.Sprintf("burst-%d-%d", w, i)})
				mu.Lock()
				switch {
				case err == nil:
					successes++
				case errors.Is(err, broker.ErrDraining):
					refused++
				default:
					t.Errorf("allocate: %v", err)
				}
				mu.Unlock()
				if err != nil {
					return
				}
			}
		})
	}
	testkit.Eventually(t, "allocations before the drain", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return successes >= workers
	})
	if _, err := brokers[0].StartDrain(ctx, "", "CSP maintenance", drainAdmin); err != nil {
		t.Fatal(err)
	}
	atAck := pooltest.Check(t, p).ByStatus[pool.Allocated]
	close(acked)
	wg.Wait()

	after := pooltest.Check(t, p).ByStatus[pool.Allocated]
	if after != atAck {
		t.Fatalf("%d allocations landed after the drain was acknowledged (%d at the acknowledgement, %d after)", after-atAck, atAck, after)
	}
	if refused != workers {
		t.Fatalf("%d allocations succeeded and %d were refused, want every one of the %d workers refused once", successes, refused, workers)
	}
	t.Logf("%d allocations, %d refused", successes, refused)

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
	if _, err := brokers[2].Allocate(ctx, broker.AllocateRequest{Student: "after-the-drain"}); err != nil {
		t.Fatalf("allocate after the drain ended: %v", err)
	}
	h, err := p.DrainHistory(ctx)
	if err != nil || len(h) != 2 || h[0].ActorKind != "admin" || h[0].Actor != "ops" {
		t.Fatalf("drain history %+v, %v", h, err)
	}
	pooltest.Check(t, p)
}

// A drain of one prefix takes its sandboxes out of allocation: a request only it could
// serve (that prefix, a longer one) is refused once nothing else matches, one that other
// sandboxes match (a shorter prefix, none, another lab) gets one of those. Ending the drain
// gives its sandboxes back at once.
func TestDrainOfOnePrefix(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab-a", 0, 3)
	brokertest.Fill(t, p, "lab-b", 10, 3)
	b := broker.New(p, poolCfg)
	if _, err := b.StartDrain(ctx, "lab-a", "", drainAdmin); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{"lab-a", "lab-a-0", "", "lab", "lab-b", "lab-a"} {
		a, err := b.Allocate(ctx, broker.AllocateRequest{Student: fmt.Sprint("s-", prefix, "-", time.Now().UnixNano()), NamePrefix: prefix})
		switch {
		case strings.HasPrefix(prefix, "lab-a"):
			if !errors.Is(err, broker.ErrDraining) {
				t.Errorf("prefix %q while lab-a drains: %+v, %v; want ErrDraining", prefix, a, err)
			}
		case err != nil || !strings.HasPrefix(a.Name, "lab-b"):
			t.Errorf("prefix %q while lab-a drains: %+v, %v; want a lab-b sandbox", prefix, a, err)
		}
	}
	// Every lab-b sandbox is taken: a request for any of them now meets the drain.
	if _, err := b.Allocate(ctx, broker.AllocateRequest{Student: "late", NamePrefix: "lab"}); !errors.Is(err, broker.ErrDraining) {
		t.Fatalf("prefix lab with lab-b taken and lab-a drained: %v, want ErrDraining", err)
	}
	if _, err := b.Allocate(ctx, broker.AllocateRequest{Student: "late-b", NamePrefix: "lab-b"}); !errors.Is(err, broker.ErrNoSandbox) {
		t.Fatalf("prefix lab-b with lab-b taken: %v, want ErrNoSandbox", err)
	}
	if ended, err := b.EndDrains(ctx, "lab-b", false, drainAdmin); err != nil || len(ended) != 0 {
		t.Fatalf("ending a drain that does not exist: %v, %v", ended, err)
	}
	pooltest.Check(t, p)
	if ended, err := b.EndDrains(ctx, "lab-a", false, drainAdmin); err != nil || len(ended) != 1 {
		t.Fatalf("ending the drain: %v, %v", ended, err)
	}
	if a, err := b.Allocate(ctx, broker.AllocateRequest{Student: "after", NamePrefix: "lab-a"}); err != nil || !strings.HasPrefix(a.Name, "lab-a") {
		t.Fatalf("lab-a after its drain ended: %+v, %v", a, err)
	}
	pooltest.Check(t, p)
}
