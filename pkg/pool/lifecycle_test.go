package pool_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

var cleanupJob = pool.Actor{Kind: "job", Name: "cleanup"}

// released claims s for alice and releases it, returning the pending_deletion sandbox.
func released(t *testing.T, p *pool.Pool, s pool.Sandbox) pool.Sandbox {
	t.Helper()
	if _, err := p.Claim(ctx, s, claimFor("alice", time.Now()), student); err != nil {
		t.Fatal(err)
	}
	r, err := p.Release(ctx, mustGet(t, p, s.ID), pool.Holder{Student: "alice"}, student)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestReleaseOnlyByOwner(t *testing.T) {
	p := pooltest.New(t)
	s := seed(t, p, account(1))[0]
	if _, err := p.Claim(ctx, s, claimFor("alice", time.Now()), student); err != nil {
		t.Fatal(err)
	}
	cur := mustGet(t, p, s.ID)
	_, err := p.Release(ctx, cur, pool.Holder{Student: "mallory"}, pool.Actor{Kind: "student", Name: "mallory"})
	ce := wantCondition(t, err, pool.ItemSandbox, "allocated to another student")
	if ce.Current.Owner != "alice" {
		t.Fatalf("current item not returned: %+v", ce.Current)
	}
	r, err := p.Release(ctx, cur, pool.Holder{Student: "alice"}, student)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, s.ID); got != r || got.Status != pool.PendingDeletion || got.StatusAt != got.DeletionRequestedAt {
		t.Fatalf("stored %+v, returned %+v", got, r)
	}
	if _, found, _ := p.OwnerRecord(ctx, pool.Holder{Student: "alice"}, "alice"); found {
		t.Fatal("owner record survived the release")
	}
	_, err = p.Release(ctx, cur, pool.Holder{Student: "alice"}, student)
	wantCondition(t, err, pool.ItemSandbox, "status is pending_deletion, want allocated")
	pooltest.Check(t, p)
}

func TestExpireHonoursCutoffToTheSecond(t *testing.T) {
	p := pooltest.New(t)
	s := seed(t, p, account(1))[0]
	now := time.Unix(1_800_000_000, 0)
	if _, err := p.Claim(ctx, s, claimFor("alice", now), student); err != nil {
		t.Fatal(err)
	}
	cur := mustGet(t, p, s.ID)
	expiry := pool.Actor{Kind: "job", Name: "expiry"}
	_, err := p.Expire(ctx, cur, cur.ExpiresAt-1, expiry)
	wantCondition(t, err, pool.ItemSandbox, "not due until "+time.Unix(cur.ExpiresAt, 0).UTC().Format(time.RFC3339))
	if _, err := p.Expire(ctx, cur, cur.ExpiresAt, expiry); err != nil {
		t.Fatalf("expire at exactly expires_at: %v", err)
	}
	if _, found, _ := p.OwnerRecord(ctx, pool.Holder{Student: "alice"}, "alice"); found {
		t.Fatal("owner record survived the expiry")
	}
	pooltest.Check(t, p)
}

// An extension is conditioned on the allocation not having lapsed: its expires_at must lie
// after the cutoff, the one at or before which Expire takes it back.
func TestExtendRefusesALapsedAllocation(t *testing.T) {
	p := pooltest.New(t)
	s := seed(t, p, account(1))[0]
	if _, err := p.Claim(ctx, s, claimFor("alice", time.Unix(1_800_000_000, 0)), student); err != nil {
		t.Fatal(err)
	}
	cur := mustGet(t, p, s.ID)
	alice := pool.Holder{Student: "alice"}
	_, err := p.Extend(ctx, cur, alice, cur.ExpiresAt+3600, cur.ExpiresAt, student)
	wantCondition(t, err, pool.ItemSandbox, "lapsed: due since "+time.Unix(cur.ExpiresAt, 0).UTC().Format(time.RFC3339))
	if got := mustGet(t, p, s.ID); got.Rev != cur.Rev || got.ExpiresAt != cur.ExpiresAt {
		t.Fatalf("a refused extension wrote %+v", got)
	}
	if _, err := p.Extend(ctx, cur, alice, cur.ExpiresAt+3600, cur.ExpiresAt-1, student); err != nil {
		t.Fatalf("an extension a second before the cutoff: %v", err)
	}
	pooltest.Check(t, p)
}

func TestDeletionLedger(t *testing.T) {
	p := pooltest.New(t)
	s := released(t, p, seed(t, p, account(1))[0])

	next := time.Now().Add(time.Minute).Unix()
	failed, err := p.RecordDeleteFailure(ctx, s, next, "HTTP 500: unable to get licenses", cleanupJob)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, s.ID); got != failed || got.Attempts != 1 || got.NextAttemptAt != next || got.StatusAt != next {
		t.Fatalf("after one failure stored %+v, returned %+v", got, failed)
	}
	// A second run that read the same item must not book the same failure again.
	_, err = p.RecordDeleteFailure(ctx, s, next, "dup", cleanupJob)
	wantCondition(t, err, pool.ItemSandbox, "attempts is 1, want 0")

	gaveUp, err := p.FailDeletion(ctx, failed, "HTTP 500 again", cleanupJob)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, s.ID); got != gaveUp || got.Status != pool.DeletionFailed || got.Attempts != 2 || got.LastError != "HTTP 500 again" {
		t.Fatalf("after giving up stored %+v", got)
	}
	_, err = p.MarkDeleted(ctx, gaveUp, cleanupJob)
	wantCondition(t, err, pool.ItemSandbox, "status is deletion_failed, want pending_deletion")

	admin := pool.Actor{Kind: "admin", Name: "ops"}
	retried, err := p.RetryDeletion(ctx, gaveUp, admin)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, s.ID); got != retried || got.Status != pool.PendingDeletion || got.Attempts != 0 || got.NextAttemptAt != 0 {
		t.Fatalf("after retry stored %+v", got)
	}
	_, err = p.RetryDeletion(ctx, retried, admin)
	wantCondition(t, err, pool.ItemSandbox, "status is pending_deletion, want deletion_failed")

	dead, err := p.MarkDeleted(ctx, retried, cleanupJob)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, s.ID); got != dead || got.Status != pool.Deleted || got.TTL != got.StatusAt+90*24*3600 || got.Owner == "" {
		t.Fatalf("tombstone stored %+v, returned %+v", got, dead)
	}
	// A tombstone is final: no transition of a live record applies to it.
	_, err = p.RetryDeletion(ctx, dead, admin)
	wantCondition(t, err, pool.ItemSandbox, "status is deleted, want deletion_failed")
	// Neither the record nor the account's uuid can be created again.
	_, err = p.Create(ctx, account(1), syncJob)
	wantCondition(t, err, pool.ItemSandbox, "already exists (status deleted)")
	relisted := account(1)
	relisted.ID = pool.AccountUUID(relisted.ExternalID)
	_, err = p.Create(ctx, relisted, syncJob)
	wantCondition(t, err, pool.ItemUUID, "account "+relisted.ID+" is held by sandbox "+s.ID)
	hist, err := p.History(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, h := range slices.Backward(hist) {
		steps = append(steps, fmt.Sprintf("%s>%s", h.From, h.To))
	}
	want := []string{">available", "available>allocated", "allocated>pending_deletion", "pending_deletion>pending_deletion",
		"pending_deletion>deletion_failed", "deletion_failed>pending_deletion", "pending_deletion>deleted"}
	if !slices.Equal(steps, want) {
		t.Fatalf("history oldest first = %v, want %v", steps, want)
	}
	pooltest.Check(t, p)
}

func TestStaleLifecycle(t *testing.T) {
	p := pooltest.New(t)
	ss := seed(t, p, account(1), account(2))
	missed, err := p.RecordMiss(ctx, ss[0])
	if err != nil || missed.MissedSyncs != 1 {
		t.Fatalf("record miss: %+v %v", missed, err)
	}
	_, err = p.MarkStale(ctx, ss[0], syncJob)
	wantCondition(t, err, pool.ItemSandbox, "changed since it was read (rev 2, want 1)")
	stale, err := p.MarkStale(ctx, missed, syncJob)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, ss[0].ID); got != stale || got.Status != pool.Stale || got.MissedSyncs != 0 {
		t.Fatalf("stale stored %+v, returned %+v", got, stale)
	}
	if page, _ := p.Candidates(ctx, shardOfCandidate(t, p, ss[0].ID), "", 100); slices.ContainsFunc(page, func(c pool.Sandbox) bool { return c.ID == ss[0].ID }) {
		t.Fatal("a stale sandbox is still an allocation candidate")
	}
	pooltest.Check(t, p)

	back := account(1)
	back.Name = "lab-renamed"
	revived, err := p.Unstale(ctx, stale, back, syncJob)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, ss[0].ID); got != revived || got.Status != pool.Available || got.Name != "lab-renamed" || got.StaleSince != 0 {
		t.Fatalf("unstale stored %+v, returned %+v", got, revived)
	}
	if n, _ := p.CountAvailable(ctx, "lab-renamed"); n != 1 {
		t.Fatalf("revived sandbox is not a candidate under its new name (%d)", n)
	}
	pooltest.Check(t, p)

	stale2, err := p.MarkStale(ctx, ss[1], syncJob)
	if err != nil {
		t.Fatal(err)
	}
	err = p.RemoveStale(ctx, stale2, stale2.StaleSince-1, pool.Actor{Kind: "job", Name: "stale-cleanup"})
	wantCondition(t, err, pool.ItemSandbox, "not due until "+time.Unix(stale2.StaleSince, 0).UTC().Format(time.RFC3339))
	if err := p.RemoveStale(ctx, stale2, stale2.StaleSince, pool.Actor{Kind: "job", Name: "stale-cleanup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Get(ctx, ss[1].ID); !errors.Is(err, pool.ErrNotFound) {
		t.Fatalf("stale record not removed: %v", err)
	}
	pooltest.Check(t, p)
	// It was never allocated, and its uuid item went with it: the account may come back.
	if _, err := p.Create(ctx, account(2), syncJob); err != nil {
		t.Fatalf("a removed never-allocated record cannot be adopted again: %v", err)
	}
	pooltest.Check(t, p)
}

// shardOfCandidate finds which shard lists a sandbox, by asking every shard.
func shardOfCandidate(t *testing.T, p *pool.Pool, id string) int {
	t.Helper()
	for shard := range pool.Shards {
		page, err := p.Candidates(ctx, shard, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(page, func(c pool.Sandbox) bool { return c.ID == id }) {
			return shard
		}
	}
	return 0
}

func TestRetireOnlyStaleOrFailed(t *testing.T) {
	p := pooltest.New(t)
	ss := seed(t, p, account(1), account(2), account(3))
	admin := pool.Actor{Kind: "admin", Name: "ops"}
	if _, err := p.Retire(ctx, ss[0], 0, admin); err == nil {
		t.Fatal("retired an available sandbox")
	}
	stale, err := p.MarkStale(ctx, ss[1], syncJob)
	if err != nil {
		t.Fatal(err)
	}
	// The caller's copy says stale, but sync revived it meanwhile: the purge must refuse.
	if _, err := p.Unstale(ctx, stale, account(2), syncJob); err != nil {
		t.Fatal(err)
	}
	_, err = p.Retire(ctx, stale, 0, admin)
	wantCondition(t, err, pool.ItemSandbox, "status is available, want stale")
	if got := mustGet(t, p, ss[1].ID); got.Status != pool.Available {
		t.Fatalf("retire touched a revived sandbox: %+v", got)
	}
	stale3, err := p.MarkStale(ctx, ss[2], syncJob)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Retire(ctx, stale3, stale3.StaleSince-1, admin)
	wantCondition(t, err, pool.ItemSandbox, "not due until "+time.Unix(stale3.StaleSince, 0).UTC().Format(time.RFC3339))
	retired, err := p.Retire(ctx, stale3, stale3.StaleSince, admin)
	if err != nil || retired.Status != pool.Retired || mustGet(t, p, ss[2].ID) != retired {
		t.Fatalf("retire: %+v %v", retired, err)
	}
	// Retired is a tombstone: the account cannot be created again.
	_, err = p.Create(ctx, account(3), syncJob)
	wantCondition(t, err, pool.ItemSandbox, "already exists (status retired)")
	pooltest.Check(t, p)
}

func TestRefreshWritesOnlyChanges(t *testing.T) {
	p := pooltest.New(t)
	s := seed(t, p, account(1))[0]
	same, err := p.Refresh(ctx, s, account(1))
	if err != nil || same != s || mustGet(t, p, s.ID).Rev != 1 {
		t.Fatalf("an unchanged account was written: %+v %v", same, err)
	}
	changed := account(1)
	changed.SFDCAccountID = "0016g00000ABCDE"
	got, err := p.Refresh(ctx, s, changed)
	if err != nil {
		t.Fatal(err)
	}
	if stored := mustGet(t, p, s.ID); stored != got || stored.SFDCAccountID != "0016g00000ABCDE" || stored.Rev != 2 {
		t.Fatalf("refresh stored %+v, returned %+v", stored, got)
	}
	hist, _ := p.History(ctx, s.ID)
	if len(hist) != 1 {
		t.Fatalf("a refresh is not a transition, but history has %d entries", len(hist))
	}
}
