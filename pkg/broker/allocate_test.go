package broker_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestAllocate300DistinctStudentsOnPoolOf300(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 300)
	results := brokertest.AllocateAll(broker.New(p, poolCfg), brokertest.Students(300, ""))
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Req.Student, r.Err)
		}
		if !r.Alloc.Created {
			t.Fatalf("%s: first allocation reported as a replay", r.Req.Student)
		}
	}
	if got := len(brokertest.AssertDistinct(t, results)); got != 300 {
		t.Fatalf("%d distinct sandboxes for 300 students", got)
	}
	census := pooltest.Check(t, p)
	if census.ByStatus[pool.Allocated] != 300 || census.Owners != 300 || census.ByStatus[pool.Available] != 0 {
		t.Fatalf("census %+v", census)
	}
}

func TestAllocateConcurrentDuplicatesReplayOneSandbox(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 120)
	var reqs []broker.AllocateRequest
	for _, r := range brokertest.Students(50, "") {
		for range 8 {
			reqs = append(reqs, r)
		}
	}
	results := brokertest.AllocateAll(broker.New(p, poolCfg), reqs)
	perStudent := map[string]string{}
	created := map[string]int{}
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Req.Student, r.Err)
		}
		if prev, ok := perStudent[r.Req.Student]; ok && prev != r.Alloc.SandboxID {
			t.Fatalf("%s got %s and %s", r.Req.Student, prev, r.Alloc.SandboxID)
		}
		perStudent[r.Req.Student] = r.Alloc.SandboxID
		if r.Alloc.Created {
			created[r.Req.Student]++
		}
	}
	for s := range perStudent {
		if created[s] != 1 {
			t.Fatalf("%s: %d answers said created, want exactly 1", s, created[s])
		}
	}
	if got := len(brokertest.AssertDistinct(t, results)); got != 50 {
		t.Fatalf("%d sandboxes for 50 students", got)
	}
	census := pooltest.Check(t, p)
	if census.ByStatus[pool.Allocated] != 50 || census.ByStatus[pool.Available] != 70 {
		t.Fatalf("census %+v", census)
	}
}

func TestAllocateByNamePrefix(t *testing.T) {
	p := pooltest.New(t)
	prefixes := []string{"lab-dns", "lab-dhcp", "lab-ipam"}
	for i, prefix := range prefixes {
		brokertest.Fill(t, p, prefix, i*1000, 60)
	}
	brokertest.Fill(t, p, "lab", 5000, 100)   // shares the leading "lab" but matches no request
	brokertest.Fill(t, p, "other", 6000, 100) // matches nothing
	var reqs []broker.AllocateRequest
	for _, prefix := range prefixes {
		reqs = append(reqs, brokertest.Students(60, prefix)...)
	}
	results := brokertest.AllocateAll(broker.New(p, poolCfg), reqs)
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Req.Student, r.Err)
		}
		if !strings.HasPrefix(r.Alloc.Name, r.Req.NamePrefix+"-") {
			t.Fatalf("%s asked for %q and got %q", r.Req.Student, r.Req.NamePrefix, r.Alloc.Name)
		}
	}
	brokertest.AssertDistinct(t, results)
	census := pooltest.Check(t, p)
	if census.ByStatus[pool.Allocated] != 180 || census.ByStatus[pool.Available] != 200 {
		t.Fatalf("census %+v", census)
	}
}

func TestAllocateExhaustionIsExactAndClean(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 20)
	results := brokertest.AllocateAll(broker.New(p, poolCfg), brokertest.Students(40, ""))
	won, none := 0, 0
	for _, r := range results {
		switch {
		case r.Err == nil:
			won++
		case errors.Is(r.Err, broker.ErrNoSandbox):
			none++
		default:
			t.Fatalf("%s: want success or ErrNoSandbox, got %v", r.Req.Student, r.Err)
		}
	}
	if won != 20 || none != 20 {
		t.Fatalf("%d succeeded and %d got no-sandbox; want 20 and 20", won, none)
	}
	brokertest.AssertDistinct(t, results)
	census := pooltest.Check(t, p)
	if census.ByStatus[pool.Allocated] != 20 || census.Owners != 20 || census.ByStatus[pool.Available] != 0 {
		t.Fatalf("census %+v", census)
	}
}

func TestAllocateReplayAfterPoolIsEmpty(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 1)
	b := broker.New(p, poolCfg)
	req := broker.AllocateRequest{Student: "alice"}
	first, err := b.Allocate(ctx, req)
	if err != nil || !first.Created {
		t.Fatalf("first allocation: %+v %v", first, err)
	}
	again, err := b.Allocate(ctx, req)
	if err != nil || again.Created || again.Owner != first.Owner {
		t.Fatalf("replay on an empty pool: %+v %v, want %+v", again, err, first.Owner)
	}
	// A new key: alice is at her limit (1), which says more than the empty pool; with
	// room for another she is told the pool is empty.
	if _, err := b.Allocate(ctx, broker.AllocateRequest{Student: "alice", IdempotencyKey: "second-lab"}); !errors.Is(err, broker.ErrStudentLimit) {
		t.Fatalf("a new key at the limit on an empty pool: want ErrStudentLimit, got %v", err)
	}
	cfg := poolCfg
	cfg.StudentMaxLiveAllocations = 2
	if _, err := broker.New(p, cfg).Allocate(ctx, broker.AllocateRequest{Student: "alice", IdempotencyKey: "second-lab"}); !errors.Is(err, broker.ErrNoSandbox) {
		t.Fatalf("a new key below the limit on an empty pool: want ErrNoSandbox, got %v", err)
	}
	if _, err := b.Allocate(ctx, broker.AllocateRequest{Student: "mallory", IdempotencyKey: "alice"}); !errors.Is(err, broker.ErrNoSandbox) {
		t.Fatalf("another student's key must not replay alice's sandbox, got %v", err)
	}
}

func TestAllocateStampsExpiryFromConfig(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 1)
	now := time.Unix(1_800_000_000, 0)
	b := broker.New(pooltest.Clocked(p, func() time.Time { return now }), poolCfg)
	a, err := b.Allocate(ctx, broker.AllocateRequest{Student: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if a.AllocatedAt != now.Unix() || a.ExpiresAt != now.Add(48*time.Hour).Unix() {
		t.Fatalf("allocated_at %d expires_at %d", a.AllocatedAt, a.ExpiresAt)
	}
	s, err := p.Get(ctx, a.SandboxID)
	if err != nil || s.ExpiresAt != a.ExpiresAt {
		t.Fatalf("item expires_at %d, answer %d (%v)", s.ExpiresAt, a.ExpiresAt, err)
	}
}

func TestAllocateReplacesLapsedAllocation(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 2)
	now := time.Unix(1_800_000_000, 0)
	b := broker.New(pooltest.Clocked(p, func() time.Time { return now }), poolCfg)
	first, err := b.Allocate(ctx, broker.AllocateRequest{Student: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(48*time.Hour + 30*time.Minute - time.Second)
	if again, err := b.Allocate(ctx, broker.AllocateRequest{Student: "alice"}); err != nil || again.SandboxID != first.SandboxID {
		t.Fatalf("inside the grace the replay must return the same sandbox: %+v %v", again, err)
	}
	now = now.Add(2 * time.Second)
	second, err := b.Allocate(ctx, broker.AllocateRequest{Student: "alice"})
	if err != nil || !second.Created || second.SandboxID == first.SandboxID {
		t.Fatalf("past the grace: want a new sandbox, got %+v %v", second, err)
	}
	old, err := p.Get(ctx, first.SandboxID)
	if err != nil || old.Status != pool.PendingDeletion {
		t.Fatalf("lapsed sandbox: %+v %v", old, err)
	}
	pooltest.Check(t, p)
}
