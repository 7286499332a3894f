package jobs_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// pastEveryTTL is further than any TTL the pool writes: history (180 days), a tombstone
// (90 days) and its uuid item after it.
const pastEveryTTL = 400 * 24 * time.Hour

// buryEveryWay makes one tombstone of each kind of the first four accounts, through the
// cleanup job against the fake CSP and the admin operations, as in production:
//   - 0: allocated, its delete failing until deletion_failed, then bulk-deleted: retired;
//   - 1: allocated, its delete answered 404 while the CSP still lists it: deleted;
//   - 2: allocated, its delete confirmed (200): deleted, and no longer listed;
//   - 3: never allocated, stale, then auto-delete-stale: retired.
func (e *jobEnv) buryEveryWay(t *testing.T, accounts []cspfake.Account) {
	t.Helper()
	admin := pool.Actor{Kind: "admin", Name: "ops"}
	e.setFaults(t, cspfake.Faults{DeleteFail: cspfake.Failure{UUIDs: []string{accounts[0].UUID()}, Status: 500}})
	e.allocateRelease(t, accounts[:1])
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deletion_failed": 1})
	if res, err := e.broker.BulkDelete(ctx, pool.DeletionFailed, broker.Confirmed{Count: 1, Before: e.clock.Now().Unix()}, admin); err != nil || res.Deleted != 1 {
		t.Fatalf("bulk delete: %+v %v", res, err)
	}
	e.setFaults(t, cspfake.Faults{DeleteFail: cspfake.Failure{UUIDs: []string{accounts[1].UUID()}, Status: 404}})
	e.allocateRelease(t, accounts[1:2])
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deleted": 1})
	e.setFaults(t, cspfake.Faults{})
	e.allocateRelease(t, accounts[2:3])
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deleted": 1})
	if _, err := e.pool.MarkStale(ctx, e.get(t, sandboxID(accounts[3])), syncJob); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	if res, err := e.broker.DeleteStale(ctx, time.Hour, 1, admin); err != nil || res.Deleted != 1 {
		t.Fatalf("auto-delete-stale: %+v %v", res, err)
	}
	for i, want := range []struct {
		status pool.Status
		answer pool.DeleteAnswer
		ttl    bool
	}{{pool.Retired, "", false}, {pool.Deleted, pool.DeleteNotFound, false}, {pool.Deleted, pool.DeleteConfirmed, true}, {pool.Retired, "", true}} {
		if s := e.get(t, sandboxID(accounts[i])); s.Status != want.status || s.DeleteAnswer != want.answer || (s.TTL != 0) != want.ttl {
			t.Fatalf("account %d: %s, answer %q, ttl %d; want %s, %q, a ttl: %v", i, s.Status, s.DeleteAnswer, s.TTL, want.status, want.answer, want.ttl)
		}
	}
	pooltest.Check(t, e.pool)
}

// Single use outlives every TTL: the clock moves past every TTL the pool writes, the
// items DynamoDB would have deleted by then are deleted, and sync runs against a CSP that
// still lists the accounts. The retired deletion_failed account and the one deleted on a
// 404 are still tombstones and are handed to no one; the confirmed delete and the
// never-allocated retired record expired (the record and its uuid item), and the latter,
// listed again, is adopted again.
func TestSingleUseOutlivesEveryTTL(t *testing.T) {
	accounts := cspfake.Generate(4, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, jobs: func(c *config.Jobs) { c.CleanupMaxAttempts = 1 }})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 4})
	e.buryEveryWay(t, accounts)

	e.clock.Advance(pastEveryTTL)
	if n := pooltest.ExpireTTLs(t, e.pool, e.clock.Now()); n == 0 {
		t.Fatal("nothing expired: the test proves nothing")
	}
	for i, gone := range []bool{false, false, true, true} {
		if _, err := e.pool.Get(ctx, sandboxID(accounts[i])); (err != nil) != gone {
			t.Fatalf("account %d: record expired %v, want %v", i, err != nil, gone)
		}
	}
	pooltest.Check(t, e.pool)

	sum := e.run(t, "sync")
	wantCounts(t, sum, map[string]int{"listed": 3, "tombstoned": 2, "created": 1, "uuid_conflicts": 0})
	got := e.allocateWave(t, "after-ttl", 3)
	if len(got) != 1 || got[0] != sandboxID(accounts[3]) {
		t.Fatalf("after every TTL the students got %v, want only the never-allocated %s", got, sandboxID(accounts[3]))
	}
	for _, a := range accounts[:2] {
		if s := e.get(t, sandboxID(a)); !s.Status.Tombstone() || s.TTL != 0 {
			t.Fatalf("%s after every TTL: %+v", a.Name, s)
		}
	}
	pooltest.Check(t, e.pool)
}

// Tables from before the TTL rule gave every tombstone and its uuid item the tombstone
// TTL. The stale-cleanup job's migration (pool.FixTombstoneTTLs) reads them and removes
// the TTL of every one that must not expire, from the record and its uuid item, and
// leaves the others; it is done after two complete passes an hour or more apart, and from
// then on reads nothing else. Past every TTL, sync then adopts none of the kept accounts.
func TestStaleCleanupKeepsTombstonesBuriedBeforeTheTTLRule(t *testing.T) {
	accounts := cspfake.Generate(5, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, poolPages: 2, jobs: func(c *config.Jobs) { c.CleanupMaxAttempts = 1 }})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 5})
	e.buryEveryWay(t, accounts)
	e.allocateRelease(t, accounts[4:])
	wantCounts(t, e.run(t, "cleanup"), map[string]int{"deleted": 1})
	e.fake.Seed(accounts[4]) // listed again: the CSP keeps it after all

	// Rewrite every tombstone as the previous version stored it: the tombstone TTL on the
	// record and on its uuid item, and no delete answer on account 4's.
	oldTTL := &types.AttributeValueMemberN{Value: strconv.FormatInt(e.clock.Now().Add(90*24*time.Hour).Unix(), 10)}
	for i, a := range accounts {
		record, uuid := pool.SandboxKey(sandboxID(a)), map[string]types.AttributeValue{
			pool.AttrPK: &types.AttributeValueMemberS{Value: "UUID#" + a.UUID()}, pool.AttrSK: &types.AttributeValueMemberS{Value: "UUID"}}
		for _, k := range []map[string]types.AttributeValue{record, uuid} {
			update := "SET #ttl = :ttl"
			if i == 4 && k[pool.AttrPK] == record[pool.AttrPK] {
				update += " REMOVE delete_answer"
			}
			if _, err := pooltest.Client().UpdateItem(ctx, &dynamodb.UpdateItemInput{
				TableName: aws.String(e.pool.Table()), Key: k, UpdateExpression: aws.String(update),
				ConditionExpression:      aws.String("attribute_exists(#pk)"),
				ExpressionAttributeNames: map[string]string{"#ttl": pool.AttrTTL, "#pk": pool.AttrPK}, ExpressionAttributeValues: map[string]types.AttributeValue{":ttl": oldTTL},
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := e.pool.CheckInvariants(ctx); err == nil || strings.Count(err.Error(), "it must never expire") != 3 {
		t.Fatalf("the old TTLs are not reported: %v", err)
	}

	wantCounts(t, e.run(t, "stale-cleanup"), map[string]int{"ttl_tombstones_read": 5, "ttl_tombstones_kept": 3})
	pooltest.Check(t, e.pool)
	for i, kept := range []bool{true, true, false, false, true} {
		if s := e.get(t, sandboxID(accounts[i])); (s.TTL == 0) != kept {
			t.Fatalf("account %d after the migration: ttl %d, want kept for good: %v", i, s.TTL, kept)
		}
	}
	// The second complete pass, an hour or more after the first, finishes the migration.
	wantCounts(t, e.run(t, "stale-cleanup"), map[string]int{"ttl_tombstones_read": 2, "ttl_tombstones_kept": 0})
	e.clock.Advance(time.Hour)
	wantCounts(t, e.run(t, "stale-cleanup"), map[string]int{"ttl_tombstones_read": 2, "ttl_tombstones_kept": 0})
	if sum := e.run(t, "stale-cleanup"); slices.Contains(keys(sum.Counts), "ttl_tombstones_read") {
		t.Fatalf("the migration ran after it was done: %v", sum.Counts)
	}

	e.clock.Advance(pastEveryTTL)
	pooltest.ExpireTTLs(t, e.pool, e.clock.Now())
	wantCounts(t, e.run(t, "sync"), map[string]int{"listed": 4, "tombstoned": 3, "created": 1})
	if got := e.allocateWave(t, "after-ttl", 4); len(got) != 1 || got[0] != sandboxID(accounts[3]) {
		t.Fatalf("after every TTL the students got %v, want only the never-allocated %s", got, sandboxID(accounts[3]))
	}
	pooltest.Check(t, e.pool)
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
