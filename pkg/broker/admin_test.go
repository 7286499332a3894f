package broker_test

import (
	"errors"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

var admin = pool.Actor{Kind: "admin", Name: "ops", RequestID: "req-admin"}

// stages the pool: 2 stale, 2 deletion_failed, 1 pending, 1 allocated, rest available.
func staged(t *testing.T) (*pool.Pool, *broker.Broker, map[pool.Status][]pool.Sandbox) {
	t.Helper()
	p := pooltest.New(t)
	brokertest.Fill(t, p, "lab", 0, 8)
	b := broker.New(p, poolCfg)
	by := map[pool.Status][]pool.Sandbox{}
	var all []pool.Sandbox
	for s, err := range p.ByStatus(ctx, pool.Available, 0) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, s)
	}
	for _, s := range all[:2] {
		st, err := p.MarkStale(ctx, s, syncJob)
		if err != nil {
			t.Fatal(err)
		}
		by[pool.Stale] = append(by[pool.Stale], st)
	}
	for i := range 3 {
		a, err := b.Allocate(ctx, broker.AllocateRequest{Student: "student-" + string(rune('a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			s, _ := p.Get(ctx, a.SandboxID)
			by[pool.Allocated] = append(by[pool.Allocated], s)
			continue
		}
		s, err := b.Release(ctx, a.SandboxID, pool.Holder{Client: a.Client, Student: a.Student}, "r")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			by[pool.PendingDeletion] = append(by[pool.PendingDeletion], s)
			continue
		}
		failed, err := p.FailDeletion(ctx, s, "HTTP 500", pool.Actor{Kind: "job", Name: "cleanup"})
		if err != nil {
			t.Fatal(err)
		}
		by[pool.DeletionFailed] = append(by[pool.DeletionFailed], failed)
	}
	return p, b, by
}

func TestBulkDeleteOnlyStaleOrFailed(t *testing.T) {
	p, b, _ := staged(t)
	asOfNow := broker.Confirmed{Count: 1, Before: time.Now().Unix()}
	for _, status := range []pool.Status{pool.Available, pool.Allocated, pool.PendingDeletion, "", "bogus"} {
		if _, err := b.BulkDelete(ctx, status, asOfNow, admin); !errors.Is(err, broker.ErrWrongStatus) {
			t.Fatalf("bulk delete of %q: want ErrWrongStatus, got %v", status, err)
		}
	}
	res, err := b.BulkDelete(ctx, pool.DeletionFailed, asOfNow, admin)
	if err != nil || res.Deleted != 1 || !res.Complete {
		t.Fatalf("bulk delete deletion_failed: %+v %v", res, err)
	}
	for status, want := range map[pool.Status]int{pool.DeletionFailed: 0, pool.Stale: 2, pool.Allocated: 1, pool.PendingDeletion: 1} {
		if n, _ := p.Count(ctx, status); n != want {
			t.Fatalf("%s: %d left, want %d", status, n, want)
		}
	}
	pooltest.Check(t, p)
}

// The operator confirms the 2 stale records they see; then a CSP outage turns 3 more
// available sandboxes stale before their click arrives. The call retires the 2 confirmed
// ones and not the 3 (their status_at is after the bound); a bound that takes the 3 in
// no longer matches the count, and nothing is retired; a confirmed record that came back
// and went stale again after the bound while the call ran is skipped, not retired.
func TestBulkDeleteRetiresOnlyWhatTheOperatorConfirmed(t *testing.T) {
	p, b, by := staged(t)
	seen := broker.Confirmed{Count: 2, Before: time.Now().Unix()}
	outage := pooltest.Clocked(p, func() time.Time { return time.Now().Add(time.Hour) })
	var later []pool.Sandbox
	for s, err := range p.ByStatus(ctx, pool.Available, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if len(later) == 3 {
			break
		}
		st, err := outage.MarkStale(ctx, s, syncJob)
		if err != nil {
			t.Fatal(err)
		}
		later = append(later, st)
	}

	afterOutage := broker.Confirmed{Count: 2, Before: time.Now().Add(2 * time.Hour).Unix()}
	_, err := b.BulkDelete(ctx, pool.Stale, afterOutage, admin)
	var changed *broker.PoolChangedError
	if !errors.Is(err, broker.ErrPoolChanged) || !errors.As(err, &changed) || changed.Matching != 5 || changed.Confirmed != afterOutage {
		t.Fatalf("2 confirmed, 5 match: want a PoolChangedError, got %v", err)
	}
	if n, _ := p.Count(ctx, pool.Stale); n != 5 {
		t.Fatalf("a refused call retired records: %d stale left, want 5", n)
	}

	res, err := b.BulkDelete(ctx, pool.Stale, seen, admin)
	if err != nil || res.Deleted != 2 || res.Skipped != 0 || !res.Complete {
		t.Fatalf("the 2 confirmed: %+v %v", res, err)
	}
	for _, s := range by[pool.Stale] {
		if got, _ := p.Get(ctx, s.ID); got.Status != pool.Retired {
			t.Errorf("confirmed %s is %s, want retired", s.ID, got.Status)
		}
	}
	for _, s := range later {
		if got, _ := p.Get(ctx, s.ID); got.Status != pool.Stale {
			t.Errorf("%s went stale after the bound and is %s, want stale", s.ID, got.Status)
		}
	}
	pooltest.Check(t, p)

	// The 3 are confirmed as of two hours on; while the call runs, the first comes back
	// and goes stale again three hours on, after the bound.
	again := pooltest.Clocked(p, func() time.Time { return time.Now().Add(3 * time.Hour) })
	broker.SetAfterMatching(b, func() {
		cur, _ := p.Get(ctx, later[0].ID)
		back, err := p.Unstale(ctx, cur, pool.Account{ID: cur.ID, Name: cur.Name, ExternalID: cur.ExternalID}, syncJob)
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := again.MarkStale(ctx, back, syncJob); err != nil {
			t.Error(err)
		}
	})
	res, err = b.BulkDelete(ctx, pool.Stale, broker.Confirmed{Count: 3, Before: afterOutage.Before}, admin)
	if err != nil || res.Deleted != 2 || res.Skipped != 1 || !res.Complete {
		t.Fatalf("3 confirmed, 1 of them stale again after the bound: %+v %v", res, err)
	}
	if got, _ := p.Get(ctx, later[0].ID); got.Status != pool.Stale || got.StaleSince <= afterOutage.Before {
		t.Fatalf("the record stale again after the bound is %s since %d", got.Status, got.StaleSince)
	}
	pooltest.Check(t, p)
}

func TestDeleteStaleHonoursGraceAndCount(t *testing.T) {
	p, b, _ := staged(t)
	res, err := b.DeleteStale(ctx, time.Hour, 0, admin)
	if err != nil || res.Deleted != 0 || !res.Complete {
		t.Fatalf("fresh stale records must stay: %+v %v", res, err)
	}
	later := broker.New(pooltest.Clocked(p, func() time.Time { return time.Now().Add(2 * time.Hour) }), poolCfg)
	var changed *broker.PoolChangedError
	if _, err = later.DeleteStale(ctx, time.Hour, 1, admin); !errors.As(err, &changed) || changed.Matching != 2 || changed.Status != pool.Stale {
		t.Fatalf("1 confirmed, 2 stale past the grace: want a PoolChangedError, got %v", err)
	}
	if res, err = later.DeleteStale(ctx, time.Hour, 2, admin); err != nil || res.Deleted != 2 {
		t.Fatalf("stale past the grace: %+v %v", res, err)
	}
	if n, _ := p.Count(ctx, pool.Stale); n != 0 {
		t.Fatalf("%d stale left", n)
	}
	pooltest.Check(t, p)
}

func TestRetryDeletionAndInspect(t *testing.T) {
	p, b, by := staged(t)
	if _, err := b.RetryDeletion(ctx, by[pool.PendingDeletion][0].ID, admin); !errors.Is(err, broker.ErrWrongStatus) {
		t.Fatalf("retry of a pending sandbox: want ErrWrongStatus, got %v", err)
	}
	if _, err := b.RetryDeletion(ctx, "404", admin); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("retry of an unknown sandbox: want ErrNotFound, got %v", err)
	}
	failed := by[pool.DeletionFailed][0]
	retried, err := b.RetryDeletion(ctx, failed.ID, admin)
	if err != nil || retried.Status != pool.PendingDeletion || retried.Attempts != 0 {
		t.Fatalf("retry: %+v %v", retried, err)
	}
	s, history, err := b.Inspect(ctx, failed.ID)
	if err != nil || s == nil || s.Status != pool.PendingDeletion || len(history) != 5 || history[0].RequestID != "req-admin" {
		t.Fatalf("inspect: %+v %d entries %v", s, len(history), err)
	}
	if _, err := p.MarkDeleted(ctx, retried, pool.Actor{Kind: "job", Name: "cleanup"}); err != nil {
		t.Fatal(err)
	}
	s, history, err = b.Inspect(ctx, failed.ID)
	if err != nil || s == nil || s.Status != pool.Deleted || len(history) != 6 || history[0].To != pool.Deleted {
		t.Fatalf("a deleted sandbox is a tombstone with its whole history: %+v %d %v", s, len(history), err)
	}
	if _, _, err := b.Inspect(ctx, "404"); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("unknown sandbox: %v", err)
	}
}

func TestListMapsInvalidCursor(t *testing.T) {
	_, b, _ := staged(t)
	if _, err := b.List(ctx, pool.ListFilter{}, 10, "forged"); !errors.Is(err, broker.ErrInvalidCursor) {
		t.Fatalf("want ErrInvalidCursor, got %v", err)
	}
	page, err := b.List(ctx, pool.ListFilter{}, 100, "")
	if err != nil || len(page.Sandboxes) != 8 || page.Cursor != "" {
		t.Fatalf("list: %d %q %v", len(page.Sandboxes), page.Cursor, err)
	}
}

func TestCheckJobIdleSeesTheLease(t *testing.T) {
	p, b, _ := staged(t)
	if err := b.CheckJobIdle(ctx, "sync"); err != nil {
		t.Fatalf("idle job: %v", err)
	}
	if _, err := p.AcquireLease(ctx, "sync", "run-1", time.Minute); err != nil {
		t.Fatal(err)
	}
	err := b.CheckJobIdle(ctx, "sync")
	var running *broker.JobRunningError
	if !errors.Is(err, broker.ErrJobRunning) || !errors.As(err, &running) || running.RunID != "run-1" || running.Job != "sync" {
		t.Fatalf("held lease: want ErrJobRunning naming run-1, got %v", err)
	}
}
