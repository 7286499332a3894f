package jobs_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// allocateRelease allocates each named account to a student of its own and releases it:
// allocated → pending_deletion through the broker, as a track does.
func (e *jobEnv) allocateRelease(t *testing.T, accounts []cspfake.Account) {
	t.Helper()
	for i, a := range accounts {
		student := fmt.Sprintf("wave1-%d", i)
		alloc, err := e.broker.Allocate(ctx, broker.AllocateRequest{Student: student, NamePrefix: a.Name})
		if err != nil || alloc.SandboxID != sandboxID(a) {
			t.Fatalf("allocate %s: %+v %v", a.Name, alloc, err)
		}
		if _, err := e.broker.Release(ctx, alloc.SandboxID, pool.Holder{Student: student}, ""); err != nil {
			t.Fatal(err)
		}
	}
}

// allocateWave allocates to n new students and returns the sandbox IDs they got; a
// student who finds no free sandbox gets ErrNoSandbox.
func (e *jobEnv) allocateWave(t *testing.T, prefix string, n int) []string {
	t.Helper()
	reqs := make([]broker.AllocateRequest, n)
	for i := range reqs {
		reqs[i] = broker.AllocateRequest{Student: fmt.Sprintf("%s-%d", prefix, i)}
	}
	var got []string
	for _, r := range brokertest.AllocateAll(e.broker, reqs) {
		switch {
		case r.Err == nil:
			got = append(got, r.Alloc.SandboxID)
		case !errors.Is(r.Err, broker.ErrNoSandbox):
			t.Fatalf("%s: %v", r.Req.Student, r.Err)
		}
	}
	return got
}

// The racing-sync interleaving, forced: sync reads the listing, cleanup then confirms the
// delete of a listed account, and only then does sync read the pool and write. The
// create is conditioned on the record and the account uuid not existing, so the account
// stays a tombstone.
func TestSyncRacingACleanupNeverRecreatesTheAccount(t *testing.T) {
	accounts := cspfake.Generate(3, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	e.released(t, accounts[:1])
	raced := false
	jobs.SetAfterListing(e.runner, func() {
		if raced {
			return
		}
		raced = true
		wantCounts(t, e.run(t, "cleanup"), map[string]int{"deleted": 1})
	})

	sum := e.run(t, "sync")
	wantCounts(t, sum, map[string]int{"listed": 3, "created": 2, "tombstoned": 1, "in_use": 0, "uuid_conflicts": 0})
	if s := e.get(t, sandboxID(accounts[0])); s.Status != pool.Deleted || !e.fake.Deleted(accounts[0].UUID()) {
		t.Fatalf("the account deleted mid-sync: %+v (deleted upstream %v)", s, e.fake.Deleted(accounts[0].UUID()))
	}
	if n := pooltest.Check(t, e.pool).ByStatus[pool.Available]; n != 2 {
		t.Fatalf("%d available, want the 2 never-allocated accounts", n)
	}
	pooltest.Check(t, e.pool)
}

// The CSP keeps listing deleted accounts, as active, across several syncs (the fake's
// DeletedListLag, on the test's clock): none comes back, and a second wave of students
// gets none of them. Once the lag is over, the listing drops them and nothing changes.
func TestSyncListingLagNeverResurrects(t *testing.T) {
	accounts := cspfake.Generate(6, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, fakeOnTestClock: true})
	e.setFaults(t, cspfake.Faults{DeletedListLag: 35 * time.Minute})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 6})
	used := accounts[:3]
	e.allocateRelease(t, used)
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deleted": 3})
	for _, a := range used {
		if !e.fake.Deleted(a.UUID()) {
			t.Fatalf("%s not deleted in the CSP", a.Name)
		}
	}
	for i := range 4 {
		e.clock.Advance(10 * time.Minute)
		lagging := 3
		if i == 3 { // 40 minutes after the deletes: past the lag
			lagging = 0
		}
		sum := e.run(t, "sync")
		wantCounts(t, sum, map[string]int{"listed": 3 + lagging, "tombstoned": lagging, "unchanged": 3, "created": 0, "unstaled": 0})
		if sum.Alarm != "" {
			t.Fatalf("sync alarm %q: %s", sum.Alarm, sum.Reason)
		}
		pooltest.Check(t, e.pool)
	}
	got := e.allocateWave(t, "wave2", 5)
	if len(got) != 3 {
		t.Fatalf("second wave got %v, want the 3 never-used sandboxes", got)
	}
	for _, a := range used {
		if slices.Contains(got, sandboxID(a)) {
			t.Fatalf("%s was handed out a second time", a.Name)
		}
		if s := e.get(t, sandboxID(a)); s.Status != pool.Deleted {
			t.Fatalf("tombstone changed: %+v", s)
		}
	}
	pooltest.Check(t, e.pool)
}

// bulk-delete of deletion_failed leaves retired tombstones: the accounts still exist in
// the CSP, with the last students' users, and no sync may adopt them again.
func TestBulkDeleteOfFailedDeletionsThenSync(t *testing.T) {
	accounts := cspfake.Generate(4, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	e.released(t, accounts[:2])
	for _, a := range accounts[:2] {
		if _, err := e.pool.FailDeletion(ctx, e.get(t, sandboxID(a)), "HTTP 500", cleanupActor); err != nil {
			t.Fatal(err)
		}
	}
	res, err := e.broker.BulkDelete(ctx, pool.DeletionFailed, broker.Confirmed{Count: 2, Before: e.clock.Now().Unix()}, pool.Actor{Kind: "admin", Name: "ops"})
	if err != nil || res.Deleted != 2 || !res.Complete {
		t.Fatalf("bulk delete: %+v %v", res, err)
	}
	for range 3 {
		e.clock.Advance(10 * time.Minute)
		wantCounts(t, e.run(t, "sync"), map[string]int{"listed": 4, "tombstoned": 2})
	}
	got := e.allocateWave(t, "after-bulk", 4)
	if len(got) != 2 || slices.Contains(got, sandboxID(accounts[0])) || slices.Contains(got, sandboxID(accounts[1])) {
		t.Fatalf("allocations after bulk delete and sync: %v", got)
	}
	if census := pooltest.Check(t, e.pool); census.ByStatus[pool.Retired] != 2 {
		t.Fatalf("census %+v", census)
	}
	if n := e.count(t, pool.Retired); n != 2 {
		t.Fatalf("%d retired listed by status, want 2", n)
	}
	page, err := e.broker.List(ctx, pool.ListFilter{Status: pool.Retired}, 10, "")
	if err != nil || len(page.Sandboxes) != 2 {
		t.Fatalf("admin list of retired: %+v %v", page, err)
	}
}

// One account listed first without csp_id (its uuid is its sandbox ID), later with one:
// one record, a conflict counted, reported and alarmed on every run (an operator decides,
// docs/operations.md), and the record is not struck as missing.
func TestSyncOneRecordPerAccountUUID(t *testing.T) {
	a := cspfake.Generate(1, nil)[0]
	bare := a
	bare.CSPID = 0
	e := newJobEnv(t, envOptions{accounts: []cspfake.Account{bare}})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 1})
	if s := e.get(t, a.UUID()); s.ID != a.UUID() || s.AccountUUID != a.UUID() {
		t.Fatalf("record of an account without csp_id: %+v", s)
	}
	e.fake.Seed(a)
	for range 3 {
		e.clock.Advance(10 * time.Minute)
		sum := e.run(t, "sync")
		wantCounts(t, sum, map[string]int{"listed": 1, "created": 0, "uuid_conflicts": 1, "missed": 0, "marked_stale": 0})
		if sum.Alarm != jobs.AlarmSyncUUIDConflict || len(sum.Errors) != 1 || !containsAll(sum.Errors[0], sandboxID(a), a.UUID(), "no second record") {
			t.Fatalf("summary %+v, want the conflict reported and %s", sum, jobs.AlarmSyncUUIDConflict)
		}
	}
	if _, err := e.pool.Get(ctx, sandboxID(a)); !errors.Is(err, pool.ErrNotFound) {
		t.Fatalf("a second record for one account: %v", err)
	}
	if s := e.get(t, a.UUID()); s.Status != pool.Available || s.MissedSyncs != 0 {
		t.Fatalf("the record of a listed account was struck: %+v", s)
	}
	if logs := e.logs.String(); !containsAll(logs, "account uuid claimed by two sandbox IDs", sandboxID(a), a.UUID()) {
		t.Fatalf("conflict not logged:\n%s", logs)
	}
	pooltest.Check(t, e.pool)
}

func containsAll(s string, parts ...string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// The shrink guard measures available sandboxes only: 5 of 10 go stale over two syncs,
// then one more goes missing; it is struck, and no alarm is raised.
func TestSyncShrinkGuardCountsAvailableOnly(t *testing.T) {
	accounts := cspfake.Generate(10, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 10})
	e.fake.Seed(withState(accounts[:5], "deleted")...)
	wantCounts(t, e.run(t, "sync"), map[string]int{"missed": 5})
	wantCounts(t, e.run(t, "sync"), map[string]int{"marked_stale": 5})
	e.fake.Seed(withState(accounts[5:6], "deleted")...)
	for _, want := range []map[string]int{{"missed": 1, "marked_stale": 0}, {"missed": 0, "marked_stale": 1}} {
		sum := e.run(t, "sync")
		if sum.Alarm != "" {
			t.Fatalf("alarm %q: %s", sum.Alarm, sum.Reason)
		}
		wantCounts(t, sum, want)
	}
	if n := e.count(t, pool.Stale); n != 6 {
		t.Fatalf("%d stale, want 6", n)
	}
	pooltest.Check(t, e.pool)
}

// For a track a tombstone is a sandbox that is gone: 404 to GET and to mark-for-deletion.
func TestTombstoneIsNotFoundForTracks(t *testing.T) {
	accounts := cspfake.Generate(1, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 1})
	e.allocateRelease(t, accounts)
	id := sandboxID(accounts[0])
	if _, err := e.broker.Sandbox(ctx, id, pool.Holder{Student: "wave1-0"}); err != nil {
		t.Fatalf("a released sandbox is its student's until deleted: %v", err)
	}
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deleted": 1})
	if _, err := e.broker.Sandbox(ctx, id, pool.Holder{Student: "wave1-0"}); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("GET of a tombstone: %v, want ErrNotFound", err)
	}
	if _, err := e.broker.Release(ctx, id, pool.Holder{Student: "wave1-0"}, ""); !errors.Is(err, broker.ErrNotFound) {
		t.Fatalf("mark-for-deletion of a tombstone: %v, want ErrNotFound", err)
	}
	s, history, err := e.broker.Inspect(ctx, id)
	if err != nil || s == nil || s.Status != pool.Deleted || len(history) != 4 {
		t.Fatalf("inspect of a tombstone: %+v, %d entries, %v", s, len(history), err)
	}
	pooltest.Check(t, e.pool)
}

// An SDK retry of the lease put that finds the run's own lease runs the job.
func TestRunWithItsOwnLeaseRuns(t *testing.T) {
	e := newJobEnv(t, envOptions{})
	if _, err := e.pool.AcquireLease(ctx, "expiry", "run-retried", time.Minute); err != nil {
		t.Fatal(err)
	}
	sum, err := e.runner.RunWithID(ctx, "expiry", "run-retried")
	if err != nil || sum.Outcome != jobs.OutcomeOK {
		t.Fatalf("run holding its own lease: %+v %v", sum, err)
	}
	if _, held, _ := e.pool.CurrentLease(ctx, "expiry"); held {
		t.Fatal("the run did not release its lease")
	}
	pooltest.Check(t, e.pool)
}

// A record written before UUID items existed (here a stale one, listed again) gets its
// uuid item from the sync that reads it, once, and is then synced as any other.
func TestSyncAdoptsTheUUIDOfOldRecords(t *testing.T) {
	accounts := cspfake.Generate(2, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	old := asPoolAccount(accounts[0])
	at := e.clock.Now().Unix()
	item, err := attributevalue.MarshalMap(pool.Sandbox{ID: old.ID, Name: old.Name, ExternalID: old.ExternalID,
		SFDCAccountID: old.SFDCAccountID, CreatedAt: old.CreatedAt, Status: pool.Stale, StatusAt: at, StaleSince: at, UpdatedAt: at, Rev: 3})
	if err != nil {
		t.Fatal(err)
	}
	item["PK"] = &types.AttributeValueMemberS{Value: "SBX#" + old.ID}
	item["SK"] = &types.AttributeValueMemberS{Value: "META"}
	if _, err := pooltest.Client().PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.pool.Table()), Item: item}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.CheckInvariants(ctx); err == nil || !strings.Contains(err.Error(), "has not claimed its account uuid") {
		t.Fatalf("an old record is not reported: %v", err)
	}
	// Older than the sharded StatusIndex too, it carries no status_key: the first sync
	// backfills that (TestSyncBackfillsTheStatusKeyOfOldRecords), the next one reads it.
	wantCounts(t, e.run(t, "sync"), map[string]int{"status_key_backfilled": 1, "created": 1})
	wantCounts(t, e.run(t, "sync"), map[string]int{"uuid_adopted": 1, "unstaled": 1, "unchanged": 1, "uuid_conflicts": 0})
	if s := e.get(t, old.ID); s.Status != pool.Available || s.AccountUUID != accounts[0].UUID() {
		t.Fatalf("old record after sync: %+v", s)
	}
	wantCounts(t, e.run(t, "sync"), map[string]int{"uuid_adopted": 0, "unchanged": 2})
	pooltest.Check(t, e.pool)
}

// TestSyncAlarmsOnARecordThatCanNeverBeTombstoned holds two records of one account, as
// before uuid items: one holds the account's uuid item, the other (written before uuid
// items) cannot adopt it, and so can never become a tombstone (its delete or retirement
// would fail on the uuid item every time). Every sync reports it by both sandbox IDs and
// raises sync_uuid_conflict until an operator removes it; the invariant checker names it.
func TestSyncAlarmsOnARecordThatCanNeverBeTombstoned(t *testing.T) {
	accounts := cspfake.Generate(2, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 2})
	holder := sandboxID(accounts[0])
	second := pool.Sandbox{ID: accounts[0].UUID(), Name: accounts[0].Name, ExternalID: accounts[0].ID,
		Status: pool.Available, StatusAt: e.clock.Now().Unix(), UpdatedAt: e.clock.Now().Unix(), Rev: 1}
	item, err := attributevalue.MarshalMap(second)
	if err != nil {
		t.Fatal(err)
	}
	maps.Copy(item, pool.SandboxKey(second.ID))
	item[pool.AttrStatusKey] = &types.AttributeValueMemberS{Value: pool.StatusKey(pool.Available, second.ID)}
	if _, err := pooltest.Client().PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(e.pool.Table()), Item: item}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		e.clock.Advance(10 * time.Minute)
		sum := e.run(t, "sync")
		wantCounts(t, sum, map[string]int{"uuid_adopted": 0, "uuid_conflicts": 1, "unchanged": 2})
		if sum.Alarm != jobs.AlarmSyncUUIDConflict || len(sum.Errors) != 1 ||
			!containsAll(sum.Errors[0], second.ID, holder, "can never become a tombstone") {
			t.Fatalf("summary %+v, want the record reported and %s", sum, jobs.AlarmSyncUUIDConflict)
		}
	}
	if _, err := e.pool.CheckInvariants(ctx); err == nil || !strings.Contains(err.Error(), "are records of one account") {
		t.Fatalf("the invariant checker does not name the second record: %v", err)
	}
}

// Records written before StatusIndex was sharded carry no status_key: they are in no
// shard, so neither sync's read nor the expiry and cleanup queries see them. The next
// sync meets each listed one when its create fails, gives it its key, and from then on
// every job sees it.
func TestSyncBackfillsTheStatusKeyOfOldRecords(t *testing.T) {
	accounts := cspfake.Generate(3, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 3})
	held, err := e.broker.Allocate(ctx, broker.AllocateRequest{Student: "alice", NamePrefix: accounts[1].Name})
	if err != nil || held.SandboxID != sandboxID(accounts[1]) {
		t.Fatalf("allocate: %+v %v", held, err)
	}
	released, err := e.broker.Allocate(ctx, broker.AllocateRequest{Student: "bob", NamePrefix: accounts[2].Name})
	if err != nil || released.SandboxID != sandboxID(accounts[2]) {
		t.Fatalf("allocate: %+v %v", released, err)
	}
	if _, err := e.broker.Release(ctx, released.SandboxID, pool.Holder{Student: "bob"}, ""); err != nil {
		t.Fatal(err)
	}
	for _, a := range accounts {
		if _, err := pooltest.Client().UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(e.pool.Table()), Key: pool.SandboxKey(sandboxID(a)),
			UpdateExpression: aws.String("REMOVE #k"), ExpressionAttributeNames: map[string]string{"#k": pool.AttrStatusKey},
		}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.pool.CheckInvariants(ctx); err == nil || !strings.Contains(err.Error(), "has status_key <nil>") {
		t.Fatalf("old records are not reported: %v", err)
	}
	e.clock.Advance(poolCfg.LabDuration + poolCfg.Grace + time.Minute)
	wantCounts(t, e.run(t, "expiry"), map[string]int{"expired": 0})
	for _, status := range []pool.Status{pool.Available, pool.Allocated, pool.PendingDeletion} {
		if n := e.count(t, status); n != 0 {
			t.Fatalf("%d old %s records counted before the backfill", n, status)
		}
	}

	wantCounts(t, e.run(t, "sync"), map[string]int{"status_key_backfilled": 3, "created": 0, "conflicts": 0})
	pooltest.Check(t, e.pool)
	wantCounts(t, e.run(t, "sync"), map[string]int{"status_key_backfilled": 0, "unchanged": 1, "in_use": 2})
	wantCounts(t, e.run(t, "expiry"), map[string]int{"expired": 1})
	if n := e.count(t, pool.PendingDeletion); n != 2 {
		t.Fatalf("%d pending deletions after the expiry, want 2", n)
	}
	pooltest.Check(t, e.pool)
}
