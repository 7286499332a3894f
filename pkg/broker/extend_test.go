package broker_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// The tests' labs last 48 h (poolCfg) and are extended by 24 h at a time up to 84 h: two
// extensions, the second one short.
const labExtension, maxLabDuration = 24 * time.Hour, 84 * time.Hour

func extendingBroker(p *pool.Pool) *broker.Broker {
	cfg := poolCfg
	cfg.LabExtension, cfg.MaxLabDuration = labExtension, maxLabDuration
	return broker.New(p, cfg)
}

func mustGet(t *testing.T, p *pool.Pool, id string) pool.Sandbox {
	t.Helper()
	s, err := p.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestExtendByTheOwnerUpToTheLongestDuration(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 1)
	b := extendingBroker(p)
	req := broker.AllocateRequest{Student: "student-1", Client: "instruqt"}
	a, err := b.Allocate(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, other := range []pool.Holder{{Client: "instruqt", Student: "student-2"}, {Client: "other-lab", Student: "student-1"}} {
		if _, err := b.Extend(ctx, a.SandboxID, other, "r0"); !errors.Is(err, broker.ErrNotOwner) {
			t.Fatalf("%+v's extension: %v", other, err)
		}
	}
	owner := pool.Holder{Client: "instruqt", Student: "student-1"}
	s, err := b.Extend(ctx, a.SandboxID, owner, "r1")
	if err != nil || s.ExpiresAt != a.ExpiresAt+int64(labExtension/time.Second) || s.StatusAt != s.ExpiresAt {
		t.Fatalf("first extension %+v, %v", s, err)
	}
	replay, err := b.Allocate(ctx, req)
	if err != nil || replay.Created || replay.ExpiresAt != s.ExpiresAt {
		t.Fatalf("a replay after the extension: %+v, %v; want expires_at %d", replay, err, s.ExpiresAt)
	}
	pooltest.Check(t, p)
	// The second stops at allocated_at + 84 h, the third is refused.
	limit := a.AllocatedAt + int64(maxLabDuration/time.Second)
	if s, err = b.Extend(ctx, a.SandboxID, owner, "r2"); err != nil || s.ExpiresAt != limit {
		t.Fatalf("second extension %+v, %v; want expires_at %d", s, err, limit)
	}
	if _, err := b.Extend(ctx, a.SandboxID, owner, "r3"); !errors.Is(err, broker.ErrExtensionLimit) {
		t.Fatalf("an extension past the longest duration: %v", err)
	}
	if got := mustGet(t, p, a.SandboxID); got.ExpiresAt != limit {
		t.Fatalf("a refused extension moved expires_at to %d", got.ExpiresAt)
	}
	h, err := p.History(ctx, a.SandboxID)
	if err != nil {
		t.Fatal(err)
	}
	extensions := 0
	for _, e := range h {
		if strings.HasPrefix(e.Reason, "extended to ") && e.Actor == "student-1" && e.From == pool.Allocated && e.To == pool.Allocated {
			extensions++
		}
	}
	if extensions != 2 {
		t.Fatalf("history %+v: %d extensions, want 2", h, extensions)
	}
	if _, err := b.Release(ctx, a.SandboxID, owner, "r4"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Extend(ctx, a.SandboxID, owner, "r5"); !errors.Is(err, broker.ErrWrongStatus) {
		t.Fatalf("extending a released sandbox: %v", err)
	}
	pooltest.Check(t, p)
}

// TestExtendRacingExpiry extends 40 allocations at the last second of their grace while
// the expiry write, whose clock is one second later, ends them: each sandbox has exactly
// one outcome. Either the extension committed (still allocated, expires_at moved on, owner
// record kept with the new value, the expiry's condition failed) or the expiry did
// (pending deletion, no owner record, the extension refused with ErrWrongStatus). Never
// both, never neither.
func TestExtendRacingExpiry(t *testing.T) {
	const n = 40
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, n)
	then := time.Unix(1_800_000_000, 0)
	results := brokertest.AllocateAll(extendingBroker(pooltest.Clocked(p, func() time.Time { return then })), brokertest.Students(n, ""))
	expiresAt := then.Add(poolCfg.LabDuration)
	// The extension's clock: the allocations have not lapsed yet. The expiry's cutoff:
	// they have.
	lastSecond := expiresAt.Add(poolCfg.Grace - time.Second)
	b := extendingBroker(pooltest.Clocked(p, func() time.Time { return lastSecond }))
	cutoff := expiresAt.Unix()

	extendErrs, expireErrs := make([]error, n), make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, r := range results {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		wg.Go(func() {
			<-start
			_, extendErrs[i] = b.Extend(ctx, r.Alloc.SandboxID, pool.Holder{Client: r.Req.Client, Student: r.Req.Student}, "req")
		})
		wg.Go(func() {
			<-start
			s, err := p.Get(ctx, r.Alloc.SandboxID)
			if err == nil {
				_, err = p.Expire(ctx, s, cutoff, pool.Actor{Kind: "job", Name: "expiry"})
			}
			expireErrs[i] = err
		})
	}
	close(start)
	wg.Wait()

	extended := 0
	for i, r := range results {
		s := mustGet(t, p, r.Alloc.SandboxID)
		switch {
		case extendErrs[i] == nil && pool.LostRace(expireErrs[i]):
			extended++
			if s.Status != pool.Allocated || s.ExpiresAt != r.Alloc.ExpiresAt+int64(labExtension/time.Second) {
				t.Errorf("%s: extended, but %s expiring at %d", s.ID, s.Status, s.ExpiresAt)
			}
		case expireErrs[i] == nil && errors.Is(extendErrs[i], broker.ErrWrongStatus):
			if s.Status != pool.PendingDeletion {
				t.Errorf("%s: expired, but %s", s.ID, s.Status)
			}
		default:
			t.Errorf("%s: extend %v, expire %v: not exactly one outcome", s.ID, extendErrs[i], expireErrs[i])
		}
	}
	census := pooltest.Check(t, p)
	if census.Owners != extended || census.ByStatus[pool.Allocated] != extended || census.ByStatus[pool.PendingDeletion] != n-extended {
		t.Fatalf("census %+v, %d extended", census, extended)
	}
	t.Logf("%d of %d extended, %d expired", extended, n, n-extended)
}
