package pool_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func deleteRaw(t *testing.T, p *pool.Pool, k map[string]types.AttributeValue) {
	t.Helper()
	if _, err := pooltest.Client().DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(p.Table()), Key: k}); err != nil {
		t.Fatal(err)
	}
}

func TestShardLimitsAddUpToTheCap(t *testing.T) {
	for limit := 1; limit <= 100; limit++ {
		n, sum := pool.CapShards(limit), 0
		for k := range n {
			l := pool.ShardLimit(limit, k)
			if l < 1 {
				t.Fatalf("cap %d: shard %d holds %d", limit, k, l)
			}
			sum += l
		}
		if n != min(limit, 8) || sum != limit {
			t.Fatalf("cap %d: %d shards holding %d", limit, n, sum)
		}
	}
}

// A claim's owner slot and counter shard: a held slot refuses with the record that holds
// it, a full shard with its count, and neither writes anything; the release gives both
// back in its transaction.
func TestClaimTakesAnOwnerSlotAndACounterShard(t *testing.T) {
	p := pooltest.New(t)
	ss := seed(t, p, account(1), account(2), account(3))
	c := claimFor("alice", time.Now())
	c.Client, c.Cap, c.CapShard = "lab-a", 1, 0
	first, err := p.Claim(ctx, ss[0], c, student)
	if err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, ss[0].ID); got.OwnerSlot == nil || *got.OwnerSlot != 0 || got.CapShard == nil || *got.CapShard != 0 {
		t.Fatalf("the sandbox does not name its slot and shard: %+v", got)
	}

	c.IdempotencyKey = "second"
	_, err = p.Claim(ctx, ss[1], c, student)
	ce := wantCondition(t, err, pool.ItemOwner, "slot 0 holds sandbox "+ss[0].ID)
	if ce.Owner == nil || *ce.Owner != first {
		t.Fatalf("the refusal carries %+v, want %+v", ce.Owner, first)
	}
	c.Slot = 1
	_, err = p.Claim(ctx, ss[1], c, student)
	wantCondition(t, err, pool.ItemCounter, "shard 0 holds 1 live allocations, its limit is 1")
	if s := mustGet(t, p, ss[1].ID); s.Status != pool.Available {
		t.Fatalf("a refused claim changed the candidate: %+v", s)
	}
	pooltest.Check(t, p)

	if _, err := p.Release(ctx, mustGet(t, p, ss[0].ID), pool.Holder{Client: "lab-a", Student: "alice"}, student); err != nil {
		t.Fatal(err)
	}
	pooltest.Check(t, p)
	if _, err := p.Claim(ctx, ss[1], c, student); err != nil {
		t.Fatalf("slot 1 and the given-back shard: %v", err)
	}
	pooltest.Check(t, p)
}

// The same student ID at two clients is two holders: neither releases or extends the
// other's sandbox.
func TestHoldersAreScopedToTheClient(t *testing.T) {
	p := pooltest.New(t)
	ss := seed(t, p, account(1), account(2))
	for i, client := range []string{"lab-a", "lab-b"} {
		c := claimFor("alice", time.Now())
		c.Client = client
		if _, err := p.Claim(ctx, ss[i], c, student); err != nil {
			t.Fatalf("%s: %v", client, err)
		}
	}
	a := mustGet(t, p, ss[0].ID)
	b := pool.Holder{Client: "lab-b", Student: "alice"}
	_, err := p.Release(ctx, a, b, student)
	wantCondition(t, err, pool.ItemSandbox, "allocated to another student")
	_, err = p.Extend(ctx, a, b, a.ExpiresAt+3600, 0, student)
	wantCondition(t, err, pool.ItemSandbox, "allocated to another student")
	if _, err := p.Release(ctx, a, pool.Holder{Student: "alice"}, student); err == nil {
		t.Fatal("a holder without a client released lab-a's sandbox")
	}
	if _, err := p.Extend(ctx, a, pool.Holder{Client: "lab-a", Student: "alice"}, a.ExpiresAt+3600, 0, student); err != nil {
		t.Fatal(err)
	}
	pooltest.Check(t, p)
}

// An allocation claimed before owner slots existed has its owner record under
// OWNER#<student> / IDEM#<key> and no slot on the sandbox: the invariants accept it, an
// extension updates that record and the release drops it.
func TestAllocationFromBeforeSlots(t *testing.T) {
	p := pooltest.New(t)
	s := seed(t, p, account(1))[0]
	if _, err := p.Claim(ctx, s, claimFor("alice", time.Now()), student); err != nil {
		t.Fatal(err)
	}
	// Rewrite the allocation as the old code stored it.
	cur := mustGet(t, p, s.ID)
	cur.OwnerSlot = nil
	owner, found, err := p.OwnerRecord(ctx, pool.Holder{Student: "alice"}, "alice")
	if err != nil || !found {
		t.Fatal(found, err)
	}
	old, err := attributevalue.MarshalMap(owner) // slot 0 is not stored, as on an old record
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range pool.LegacyOwnerKey("alice", "alice") {
		old[k] = v
	}
	deleteRaw(t, p, pool.OwnerKey(pool.Holder{Student: "alice"}, 0))
	putRaw(t, p, old)
	putRaw(t, p, pool.StoredItems(cur)...)
	pooltest.Check(t, p)

	extended, err := p.Extend(ctx, cur, pool.Holder{Student: "alice"}, cur.ExpiresAt+3600, 0, student)
	if err != nil {
		t.Fatal(err)
	}
	pooltest.Check(t, p) // the old record's expires_at moved with the sandbox's
	if _, err := p.Release(ctx, extended, pool.Holder{Student: "alice"}, student); err != nil {
		t.Fatal(err)
	}
	if census := pooltest.Check(t, p); census.Owners != 0 {
		t.Fatalf("the old owner record survived the release: %+v", census)
	}
}

func TestCheckInvariantsReportsSlotsAndCounters(t *testing.T) {
	p := pooltest.New(t)
	ss := seed(t, p, account(1), account(2))
	c := claimFor("alice", time.Now())
	c.Client, c.Cap, c.CapShard = "lab-a", 3, 1
	if _, err := p.Claim(ctx, ss[0], c, student); err != nil {
		t.Fatal(err)
	}
	pooltest.Check(t, p)
	counter := func(live, limit int) map[string]types.AttributeValue {
		item, err := attributevalue.MarshalMap(map[string]any{"client": "lab-a", "shard": 1, "live": live, "limit": limit})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range pool.CounterKey("lab-a", 1) {
			item[k] = v
		}
		return item
	}
	putRaw(t, p, counter(0, 1))
	wantProblems(t, p, `counter shard "lab-a"/1 holds 0 (limit 1), but 1 allocated sandboxes took it`)
	putRaw(t, p, counter(2, 1))
	wantProblems(t, p, `counter shard "lab-a"/1 holds 2 (limit 1)`)
	putRaw(t, p, counter(1, 1))
	pooltest.Check(t, p)

	// The owner record moved to another slot than the sandbox names.
	owner, _, err := p.OwnerRecord(ctx, c.Holder(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	moved, err := attributevalue.MarshalMap(owner)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range pool.OwnerKey(c.Holder(), 2) {
		moved[k] = v
	}
	deleteRaw(t, p, pool.OwnerKey(c.Holder(), 0))
	putRaw(t, p, moved)
	wantProblems(t, p, fmt.Sprintf("owner record OWNER#lab-a#alice / SLOT#2 points at sandbox %s, which names its owner record elsewhere", ss[0].ID))
}
