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

// A split gives a client below its cap exactly the room left, cap − live, in the cap's
// first shards on top of what each holds; a client at or past its cap gets none.
func TestSplitLeavesExactlyTheRoomBelowTheCap(t *testing.T) {
	for cap := 1; cap <= 60; cap++ {
		for _, live := range [][pool.CounterShards]int{{}, {3}, {0, 0, 0, 0, 0, 0, 0, 9}, {5, 5, 5, 5, 5, 5, 5, 5}, {1, 2, 3, 4}} {
			var cs pool.CapCounters
			held := 0
			for k, n := range live {
				cs[k].Live = n
				held += n
			}
			limits := cs.LimitsFor(cap)
			room := 0
			for k, l := range limits {
				if l != 0 && l < live[k] || l > live[k] && k >= pool.OpenShards(cap) {
					t.Fatalf("cap %d, live %v: limits %v", cap, live, limits)
				}
				room += max(0, l-live[k])
			}
			if want := max(0, cap-held); room != want {
				t.Fatalf("cap %d, live %v: limits %v leave room for %d, want %d", cap, live, limits, room, want)
			}
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
	_, err := p.Claim(ctx, ss[0], c, student)
	wantCondition(t, err, pool.ItemCounter, "the client's live allocations are not counted yet")
	split(t, p, "lab-a", 1)
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
	ce = wantCondition(t, err, pool.ItemCounter, "shard 0 holds 1 live allocations, its limit is 1")
	if ce.Counter == nil || ce.Counter.Live != 1 || ce.Counter.Cap != 1 {
		t.Fatalf("the refusal carries the shard %+v", ce.Counter)
	}
	c.Cap = 2
	_, err = p.Claim(ctx, ss[1], c, student)
	wantCondition(t, err, pool.ItemCounter, "the counters are split for a cap of 1, not 2")
	c.Cap = 1
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

// split splits cap over the client's counter shards as they are.
func split(t *testing.T, p *pool.Pool, client string, cap int) pool.CapCounters {
	t.Helper()
	cs, err := p.CapCounters(ctx, client)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SplitCap(ctx, client, cap, cs); err != nil {
		t.Fatal(err)
	}
	if cs, err = p.CapCounters(ctx, client); err != nil {
		t.Fatal(err)
	}
	return cs
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
	split(t, p, "lab-a", 3)
	c := claimFor("alice", time.Now())
	c.Client, c.Cap, c.CapShard = "lab-a", 3, 1
	if _, err := p.Claim(ctx, ss[0], c, student); err != nil {
		t.Fatal(err)
	}
	pooltest.Check(t, p)
	counter := func(k, live, limit, cap int) map[string]types.AttributeValue {
		item, err := attributevalue.MarshalMap(map[string]any{"client": "lab-a", "shard": k, "live": live, "limit": limit, "cap": cap})
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range pool.CounterKey("lab-a", k) {
			item[k] = v
		}
		return item
	}
	putRaw(t, p, counter(1, 0, 1, 3))
	wantProblems(t, p, `counter shard "lab-a"/1 holds 0, but 1 allocated sandboxes took it`)
	putRaw(t, p, counter(1, 1, 3, 3))
	wantProblems(t, p, `client "lab-a" holds 1 counted live allocations and its counter shards admit 4 more: past its cap 3`)
	putRaw(t, p, counter(1, 1, 1, 3), counter(5, 0, 1, 3))
	wantProblems(t, p, `counter shard "lab-a"/5 offers room beyond the 3 shards of its cap 3`)
	putRaw(t, p, counter(5, 0, 0, 4))
	wantProblems(t, p, `the counter shards of client "lab-a" are split for different caps [3 4]`)
	putRaw(t, p, counter(5, 0, 0, 3))
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

// Each of a capped client's counter shards is an item of its own partition key, so a
// burst of the client's claims spreads its counter writes over CounterShards partitions.
func TestCounterShardsHaveTheirOwnPartitions(t *testing.T) {
	p := pooltest.New(t)
	split(t, p, "lab-a", 50)
	out, err := pooltest.Client().Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(p.Table())})
	if err != nil {
		t.Fatal(err)
	}
	partitions := map[string]bool{}
	for _, item := range out.Items {
		partitions[item[pool.AttrPK].(*types.AttributeValueMemberS).Value] = true
	}
	if len(out.Items) != pool.CounterShards || len(partitions) != pool.CounterShards {
		t.Fatalf("%d counter items on %d partition keys, want %d on as many", len(out.Items), len(partitions), pool.CounterShards)
	}
	pooltest.Check(t, p)
}

// An allocation no counter counts is counted once: the second count and a release that
// read it before it was counted both fail their condition; a release that reads it again
// gives the shard back.
func TestCountAllocationCountsOnce(t *testing.T) {
	p := pooltest.New(t)
	s := seed(t, p, account(1))[0]
	c := claimFor("alice", time.Now())
	c.Client = "lab-a"
	if _, err := p.Claim(ctx, s, c, student); err != nil {
		t.Fatal(err)
	}
	uncounted := mustGet(t, p, s.ID)
	var found []pool.Sandbox
	for s, err := range p.UncountedAllocations(ctx, "lab-a") {
		if err != nil {
			t.Fatal(err)
		}
		found = append(found, s)
	}
	if len(found) != 1 || found[0].ID != s.ID {
		t.Fatalf("uncounted allocations of lab-a: %+v", found)
	}
	if err := p.CountAllocation(ctx, uncounted, 2); err != nil {
		t.Fatal(err)
	}
	err := p.CountAllocation(ctx, uncounted, 3)
	wantCondition(t, err, pool.ItemSandbox, "its counter shard changed since it was read")
	split(t, p, "lab-a", 1) // closed: it holds its cap
	pooltest.Check(t, p)
	alice := pool.Holder{Client: "lab-a", Student: "alice"}
	_, err = p.Release(ctx, uncounted, alice, student)
	wantCondition(t, err, pool.ItemSandbox, "its counter shard changed since it was read")
	if _, err := p.Release(ctx, mustGet(t, p, s.ID), alice, student); err != nil {
		t.Fatal(err)
	}
	cs, err := p.CapCounters(ctx, "lab-a")
	if err != nil || cs.Live() != 0 || cs[2].Live != 0 {
		t.Fatalf("counters after the release: %+v %v", cs, err)
	}
	pooltest.Check(t, p)
}

// Counters from before each shard had its own partition (CLIENT#<client> / LIVE#<k>) are
// moved into the shard of the same number, which the releases since the upgrade already
// took from.
func TestMoveLegacyCounters(t *testing.T) {
	p := pooltest.New(t)
	ss := seed(t, p, account(1), account(2), account(3))
	for i, s := range ss {
		c := claimFor(fmt.Sprint("s", i), time.Now())
		c.Client = "lab-a"
		if _, err := p.Claim(ctx, s, c, student); err != nil {
			t.Fatal(err)
		}
		// As the previous version stored it: counted in legacy shard i%2.
		cur := mustGet(t, p, s.ID)
		if err := p.CountAllocation(ctx, cur, i%2); err != nil {
			t.Fatal(err)
		}
	}
	for k := range pool.CounterShards {
		deleteRaw(t, p, pool.CounterKey("lab-a", k))
	}
	for k, live := range []int{2, 1} {
		item, err := attributevalue.MarshalMap(map[string]any{"PK": "CLIENT#lab-a", "SK": fmt.Sprint("LIVE#", k), "client": "lab-a", "shard": k, "live": live, "limit": 2})
		if err != nil {
			t.Fatal(err)
		}
		putRaw(t, p, item)
	}
	wantProblems(t, p, "counter item CLIENT#lab-a / LIVE#0 is from before each shard had its own partition")
	// One allocation of legacy shard 0 ends after the upgrade, before the move.
	if _, err := p.Release(ctx, mustGet(t, p, ss[0].ID), pool.Holder{Client: "lab-a", Student: "s0"}, student); err != nil {
		t.Fatal(err)
	}
	if n, err := p.MoveLegacyCounters(ctx, "lab-a"); err != nil || n != 2 {
		t.Fatalf("moved %d: %v", n, err)
	}
	if cs := split(t, p, "lab-a", 5); cs[0].Live != 1 || cs[1].Live != 1 || cs.Room() != 3 {
		t.Fatalf("counters after the move: %+v", cs)
	}
	pooltest.Check(t, p)
}
