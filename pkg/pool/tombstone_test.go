package pool_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

const tombstoneTTL = 90 * 24 * time.Hour

// ttlOf reads the ttl attribute of an item ("" when it has none).
func ttlOf(t *testing.T, p *pool.Pool, k map[string]types.AttributeValue) string {
	t.Helper()
	out, err := pooltest.Client().GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(p.Table()), Key: k, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := out.Item[pool.AttrTTL].(*types.AttributeValueMemberN); ok {
		return n.Value
	}
	return ""
}

// setTTL writes ttl on an item, as the previous version buried tombstones or as an
// operator might.
func setTTL(t *testing.T, p *pool.Pool, k map[string]types.AttributeValue, ttl int64) {
	t.Helper()
	if _, err := pooltest.Client().UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: aws.String(p.Table()), Key: k, UpdateExpression: aws.String("SET #ttl = :ttl"),
		ExpressionAttributeNames:  map[string]string{"#ttl": pool.AttrTTL},
		ExpressionAttributeValues: map[string]types.AttributeValue{":ttl": &types.AttributeValueMemberN{Value: strconv.FormatInt(ttl, 10)}},
	}); err != nil {
		t.Fatal(err)
	}
}

func uuidKey(uuid string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{pool.AttrPK: &types.AttributeValueMemberS{Value: "UUID#" + uuid}, pool.AttrSK: &types.AttributeValueMemberS{Value: "UUID"}}
}

// Only a confirmed delete and a never-allocated retired record expire; a delete booked
// from a 404 and a retired deletion_failed record keep their record and uuid item for
// good. An expiring tombstone's uuid item expires two weeks after it, so whatever order
// DynamoDB's TTL process takes them in, the uuid item goes last: until it goes, the
// account cannot be created again under any sandbox ID.
func TestOnlyTombstonesOfGoneAccountsExpire(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now})
	ss := seed(t, p, account(1), account(2), account(3), account(4))
	confirmed, err := p.MarkDeleted(ctx, released(t, p, ss[0]), cleanupJob)
	if err != nil {
		t.Fatal(err)
	}
	notFound, err := p.MarkNotFound(ctx, released(t, p, ss[1]), cleanupJob)
	if err != nil {
		t.Fatal(err)
	}
	failed, err := p.FailDeletion(ctx, released(t, p, ss[2]), "HTTP 500", cleanupJob)
	if err != nil {
		t.Fatal(err)
	}
	admin := pool.Actor{Kind: "admin", Name: "ops"}
	retiredFailed, err := p.Retire(ctx, failed, 0, admin)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := p.MarkStale(ctx, ss[3], syncJob)
	if err != nil {
		t.Fatal(err)
	}
	retiredStale, err := p.Retire(ctx, stale, 0, admin)
	if err != nil {
		t.Fatal(err)
	}
	expiresAt := clock.Now().Add(tombstoneTTL).Unix()
	uuidExpiresAt := clock.Now().Add(tombstoneTTL + 14*24*time.Hour).Unix()
	for _, c := range []struct {
		s               pool.Sandbox
		record, uuidTTL int64
	}{{confirmed, expiresAt, uuidExpiresAt}, {notFound, 0, 0}, {retiredFailed, 0, 0}, {retiredStale, expiresAt, uuidExpiresAt}} {
		stored := mustGet(t, p, c.s.ID)
		if stored.TTL != c.record || c.s.TTL != c.record || stored.MayExpire() != (c.record != 0) {
			t.Fatalf("%s %s (answer %q): ttl %d, returned %d, want %d", stored.Status, stored.ID, stored.DeleteAnswer, stored.TTL, c.s.TTL, c.record)
		}
		want := ""
		if c.uuidTTL != 0 {
			want = strconv.FormatInt(c.uuidTTL, 10)
		}
		if got := ttlOf(t, p, uuidKey(stored.AccountUUID)); got != want {
			t.Fatalf("uuid item of %s: ttl %q, want %q", stored.ID, got, want)
		}
	}
	pooltest.Check(t, p)

	// DynamoDB takes the expired records first; their uuid items stay. The creates' index
	// logs (pool.StartDrain) expire within the hour.
	clock.Advance(tombstoneTTL + time.Second)
	if n := pooltest.ExpireTTLs(t, p, clock.Now()); n != 2+len(ss) {
		t.Fatalf("%d items expired, want the 2 records and the %d creates' index logs", n, len(ss))
	}
	pooltest.Check(t, p)
	relisted := account(1)
	relisted.ID = pool.AccountUUID(relisted.ExternalID)
	_, err = p.Create(ctx, relisted, syncJob)
	wantCondition(t, err, pool.ItemUUID, "account "+relisted.ID+" is held by sandbox "+confirmed.ID)

	clock.Advance(14 * 24 * time.Hour)
	if n := pooltest.ExpireTTLs(t, p, clock.Now()); n != 2 {
		t.Fatalf("%d items expired, want the 2 uuid items", n)
	}
	pooltest.Check(t, p)
	if _, err := p.Create(ctx, relisted, syncJob); err != nil {
		t.Fatalf("a confirmed delete's account once both items expired: %v", err)
	}
	for _, kept := range []pool.Sandbox{notFound, retiredFailed} {
		if got := mustGet(t, p, kept.ID); got.TTL != 0 || got.Status != kept.Status {
			t.Fatalf("%s after every TTL: %+v", kept.ID, got)
		}
	}
	pooltest.Check(t, p)
}

// The checker holds tombstones to the TTL rule: a tombstone of an account that may still
// exist upstream carries no TTL, an expiring one's uuid item never expires before it.
func TestCheckInvariantsReportsTombstoneTTLs(t *testing.T) {
	p := pooltest.New(t)
	ss := seed(t, p, account(1), account(2))
	notFound, err := p.MarkNotFound(ctx, released(t, p, ss[0]), cleanupJob)
	if err != nil {
		t.Fatal(err)
	}
	confirmed, err := p.MarkDeleted(ctx, released(t, p, ss[1]), cleanupJob)
	if err != nil {
		t.Fatal(err)
	}
	setTTL(t, p, pool.SandboxKey(notFound.ID), confirmed.TTL)
	wantProblems(t, p, "deleted tombstone "+notFound.ID+" has ttl", "uuid item of sandbox "+notFound.ID+" expires at 0")
	if err := p.KeepTombstone(ctx, mustGet(t, p, notFound.ID)); err != nil {
		t.Fatal(err)
	}
	pooltest.Check(t, p)
	if err := p.KeepTombstone(ctx, confirmed); err == nil {
		t.Fatal("a tombstone that may expire was kept")
	}
	setTTL(t, p, uuidKey(confirmed.AccountUUID), confirmed.TTL-1)
	wantProblems(t, p, "uuid item of sandbox "+confirmed.ID+" expires at")
}

// The migration makes a pass over the tombstones with a TTL per call; a pass cut short
// counts for nothing, and it is done after two complete passes an hour apart, and then
// reads nothing.
func TestFixTombstoneTTLsFinishesAfterTwoPasses(t *testing.T) {
	clock := testkit.NewClock(time.Unix(1_800_000_000, 0))
	p := pooltest.NewWith(t, pool.Options{Now: clock.Now, PageSize: 1})
	ss := seed(t, p, account(1), account(2), account(3))
	for _, s := range ss {
		dead, err := p.MarkNotFound(ctx, released(t, p, s), cleanupJob)
		if err != nil {
			t.Fatal(err)
		}
		// As the previous version buried it.
		setTTL(t, p, pool.SandboxKey(dead.ID), 1807776000)
		setTTL(t, p, uuidKey(dead.AccountUUID), 1807776000)
	}
	wantProblems(t, p, "must never expire")
	pass := func(stop bool) pool.TTLFix {
		t.Helper()
		fix, err := p.FixTombstoneTTLs(ctx, func() bool { return stop })
		if err != nil {
			t.Fatal(err)
		}
		return fix
	}
	if fix := pass(true); fix.Complete || fix.Read != 0 {
		t.Fatalf("a pass stopped at once: %+v", fix)
	}
	if fix := pass(false); !fix.Complete || fix.Done || fix.Read != 3 || fix.Kept != 3 {
		t.Fatalf("the first complete pass: %+v", fix)
	}
	pooltest.Check(t, p)
	if fix := pass(false); !fix.Complete || fix.Done || fix.Read != 0 {
		t.Fatalf("a second complete pass within the hour: %+v", fix)
	}
	clock.Advance(time.Hour)
	if fix := pass(false); !fix.Done || fix.AlreadyDone {
		t.Fatalf("the pass an hour later: %+v", fix)
	}
	if fix := pass(false); !fix.AlreadyDone || fix.Read != 0 {
		t.Fatalf("after the migration: %+v", fix)
	}
	pooltest.Check(t, p)
}
