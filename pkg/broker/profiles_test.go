package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func putProfile(t *testing.T, p *pool.Pool, pr pool.Profile) {
	t.Helper()
	if _, err := p.PutProfile(ctx, pr, admin); err != nil {
		t.Fatal(err)
	}
}

// TestProfileTermsAreStampedAndOutliveAChange: a 2-hour lab's allocation expires 2 hours
// after it was made and is extended by its profile's step up to its cap, while a lab
// without a profile gets the configuration's 48 hours; a later change of the profile
// (shorter everything) reaches new allocations only: the running one keeps what it
// stamped, so the expiry job's due query takes the 2-hour allocation on time and never
// the 48-hour one.
func TestProfileTermsAreStampedAndOutliveAChange(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 12, 8, 9, 0, 0, 0, time.UTC))
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now})
	brokertest.Fill(t, p, "lab", 0, 4)
	putProfile(t, p, pool.Profile{Lab: "dns-lab", LabDurationMinutes: 120, ExtensionMinutes: 30, MaxDurationMinutes: 180})
	b := extendingBroker(p)
	short, err := b.Allocate(ctx, broker.AllocateRequest{Student: "s1", Client: "instruqt", TrackName: "dns-lab"})
	if err != nil {
		t.Fatal(err)
	}
	long, err := b.Allocate(ctx, broker.AllocateRequest{Student: "s2", Client: "instruqt", TrackName: "k8s-lab"})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now().Unix()
	if short.ExpiresAt != now+2*3600 || long.ExpiresAt != now+48*3600 {
		t.Fatalf("expires_at %d and %d, want now + 2 h and now + 48 h", short.ExpiresAt-now, long.ExpiresAt-now)
	}
	if s := mustGet(t, p, short.SandboxID); s.Profile != broker.ProfileName(pool.Profile{Lab: "dns-lab"}) ||
		s.ExtensionSeconds != 1800 || s.MaxExpiresAt != now+3*3600 {
		t.Fatalf("the profiled allocation stamped %q, %d, %d", s.Profile, s.ExtensionSeconds, s.MaxExpiresAt-now)
	}
	if s := mustGet(t, p, long.SandboxID); s.Profile != "" || s.MaxExpiresAt != 0 || s.ExtensionSeconds != 0 {
		t.Fatalf("an allocation without a profile stamped %+v", s)
	}

	// The profile is cut to 10 minutes, no extension past them. A fresh broker (another
	// process) reads it at once.
	putProfile(t, p, pool.Profile{Lab: "dns-lab", LabDurationMinutes: 10, ExtensionMinutes: 10, MaxDurationMinutes: 10})
	b2 := extendingBroker(p)
	holder := pool.Holder{Client: "instruqt", Student: "s1"}
	for i, want := range []int64{now + 2*3600 + 1800, now + 3*3600} {
		s, err := b2.Extend(ctx, short.SandboxID, holder, "r")
		if err != nil || s.ExpiresAt != want {
			t.Fatalf("extension %d under the changed profile: %d, %v; want the stamped step and cap (%d)", i, s.ExpiresAt-now, err, want-now)
		}
	}
	if _, err := b2.Extend(ctx, short.SandboxID, holder, "r"); !errors.Is(err, broker.ErrExtensionLimit) {
		t.Fatalf("past the stamped cap: %v", err)
	}
	fresh, err := b2.Allocate(ctx, broker.AllocateRequest{Student: "s3", Client: "instruqt", TrackName: "dns-lab"})
	if err != nil || fresh.ExpiresAt != now+600 {
		t.Fatalf("a new allocation under the changed profile: %+v, %v; want now + 10 min", fresh, err)
	}

	// 3 h and the grace later the 2-hour lab (extended to its cap) is due; the 48-hour one is not.
	clock.Advance(3*time.Hour + poolCfg.Grace + time.Second)
	var due []string
	for s, err := range p.ByStatus(ctx, pool.Allocated, clock.Now().Add(-poolCfg.Grace).Unix()) {
		if err != nil {
			t.Fatal(err)
		}
		due = append(due, s.ID)
	}
	if len(due) != 2 || due[0] != fresh.SandboxID || due[1] != short.SandboxID {
		t.Fatalf("due for expiry: %v; want the 10-minute and the 2-hour lab (%s, %s), not the 48-hour one", due, fresh.SandboxID, short.SandboxID)
	}
	pooltest.Check(t, p)
}

// TestProfileResolution: field by field, a lab's profile before a prefix's, the longer
// prefix first, the configuration last; the student limit and the 409's message come
// from the profile too.
func TestProfileResolution(t *testing.T) {
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab-a", 0, 2)
	putProfile(t, p, pool.Profile{Prefix: "lab-", LabDurationMinutes: 600, StudentLimit: 2, NoSandboxMessage: "The lab pool is empty; try at the top of the hour"})
	putProfile(t, p, pool.Profile{Prefix: "lab-a", LabDurationMinutes: 300})
	putProfile(t, p, pool.Profile{Lab: "dns-lab", Prefix: "lab-", ExtensionMinutes: 15})
	b := broker.New(p, poolCfg)
	a, err := b.Allocate(ctx, broker.AllocateRequest{Student: "s1", Client: "c", TrackName: "dns-lab", NamePrefix: "lab-a", IdempotencyKey: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	s := mustGet(t, p, a.SandboxID)
	if s.ExpiresAt-s.AllocatedAt != 300*60 || s.ExtensionSeconds != 15*60 || s.Profile != `lab="dns-lab" prefix="lab-"` {
		t.Fatalf("resolved duration %d s, extension %d s, profile %s", s.ExpiresAt-s.AllocatedAt, s.ExtensionSeconds, s.Profile)
	}
	// student_limit 2 from the "lab-" profile: a second key gets a second sandbox, a third is refused.
	if _, err := b.Allocate(ctx, broker.AllocateRequest{Student: "s1", Client: "c", TrackName: "dns-lab", NamePrefix: "lab-a", IdempotencyKey: "k2"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Allocate(ctx, broker.AllocateRequest{Student: "s1", Client: "c", TrackName: "dns-lab", NamePrefix: "lab-a", IdempotencyKey: "k3"}); !errors.Is(err, broker.ErrStudentLimit) {
		t.Fatalf("a third key under student_limit 2: %v", err)
	}
	_, err = b.Allocate(ctx, broker.AllocateRequest{Student: "s2", Client: "c", NamePrefix: "lab-b"})
	var ns *broker.NoSandboxError
	if !errors.As(err, &ns) || !errors.Is(err, broker.ErrNoSandbox) || ns.Message != "The lab pool is empty; try at the top of the hour" {
		t.Fatalf("an empty prefix under a profile with a message: %v", err)
	}
	if _, err := b.Allocate(ctx, broker.AllocateRequest{Student: "s2", Client: "c", NamePrefix: "other"}); !errors.Is(err, broker.ErrNoSandbox) || errors.As(err, &ns) {
		t.Fatalf("an empty prefix without a profile: %v", err)
	}
	if got := broker.LowWater([]pool.Profile{{Prefix: "lab-", LowWater: 50}, {Prefix: "lab-a", LowWater: 20}, {Lab: "x", Prefix: "lab-a-1", LowWater: 5}}, "lab-a-1"); got != 20 {
		t.Fatalf("low water of lab-a-1: %d, want the longest lab-less prefix's 20", got)
	}
	pooltest.Check(t, p)
}

func TestProfileValidation(t *testing.T) {
	p := pooltest.New(t)
	for _, bad := range []pool.Profile{
		{},
		{Lab: "x", LabDurationMinutes: 5},
		{Lab: "x", LabDurationMinutes: 200, MaxDurationMinutes: 100},
		{Lab: "x", StudentLimit: 21},
		{Lab: "x", NoSandboxMessage: "line\nbreak"},
		{Prefix: "lab", ExtensionMinutes: 90*24*60 + 1},
	} {
		if _, err := p.PutProfile(ctx, bad, admin); err == nil {
			t.Errorf("profile %+v was accepted", bad)
		}
	}
	if err := p.DeleteProfile(ctx, "x", ""); !errors.Is(err, pool.ErrNoProfile) {
		t.Fatalf("deleting a missing profile: %v", err)
	}
	if got, err := p.Profiles(ctx); err != nil || len(got) != 0 {
		t.Fatalf("profiles after refusals: %+v, %v", got, err)
	}
}
