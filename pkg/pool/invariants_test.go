package pool_test

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

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func putRaw(t *testing.T, p *pool.Pool, items ...map[string]types.AttributeValue) {
	t.Helper()
	for _, item := range items {
		if _, err := pooltest.Client().PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(p.Table()), Item: item}); err != nil {
			t.Fatal(err)
		}
	}
}

func wantProblems(t *testing.T, p *pool.Pool, want ...string) {
	t.Helper()
	_, err := p.CheckInvariants(ctx)
	for _, w := range want {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("invariant check: %v; want a problem saying %q", err, w)
		}
	}
}

// legacy is a record as it was stored before UUID items existed.
func legacy(id, uuid string) pool.Sandbox {
	now := time.Now().Unix()
	return pool.Sandbox{ID: id, Name: "lab-" + id, ExternalID: "identity/accounts/" + uuid,
		Status: pool.Available, StatusAt: now, UpdatedAt: now, Rev: 1}
}

// Records from before UUID items are adopted once; two records of one account are
// reported, and the second keeps no uuid item of its own.
func TestAdoptUUIDMigratesOldRecords(t *testing.T) {
	p := pooltest.New(t)
	const uuid = "00000000-0000-4000-8000-00000000aaaa"
	putRaw(t, p, pool.StoredItems(legacy("2000001", uuid))...)
	wantProblems(t, p, "sandbox 2000001 has not claimed its account uuid")

	old := mustGet(t, p, "2000001")
	adopted, err := p.AdoptUUID(ctx, old)
	if err != nil || adopted.AccountUUID != uuid || mustGet(t, p, "2000001") != adopted || adopted.Rev != old.Rev {
		t.Fatalf("adopt: %+v %v", adopted, err)
	}
	pooltest.Check(t, p)
	_, err = p.AdoptUUID(ctx, old)
	wantCondition(t, err, pool.ItemSandbox, "already holds its account uuid")

	// A duplicate from before: the same account under another sandbox ID.
	putRaw(t, p, pool.StoredItems(legacy("2000002", uuid))...)
	_, err = p.AdoptUUID(ctx, mustGet(t, p, "2000002"))
	var ce *pool.ConditionError
	if !errors.As(err, &ce) || ce.Item != pool.ItemUUID || ce.HeldBy != "2000001" {
		t.Fatalf("adopting a second record of one account: %v", err)
	}
	wantProblems(t, p, "are records of one account "+uuid)
}

// The checker reports what it does not recognise and what breaks single use.
func TestCheckInvariantsReportsUnknownItemsAndReuse(t *testing.T) {
	p := pooltest.New(t)
	seed(t, p, account(1))
	pooltest.Check(t, p)
	putRaw(t, p, map[string]types.AttributeValue{
		"PK": &types.AttributeValueMemberS{Value: "CACHE#x"}, "SK": &types.AttributeValueMemberS{Value: "1"},
	})
	wantProblems(t, p, "item CACHE#x / 1 is of no kind the pool writes")

	q := pooltest.New(t)
	s := seed(t, q, account(2))[0]
	if _, err := q.Claim(ctx, s, claimFor("alice", time.Now()), student); err != nil {
		t.Fatal(err)
	}
	// While held, the allocation is on the record: a buggy write that makes it available
	// but keeps the entry breaks single use.
	held := mustGet(t, q, s.ID)
	if held.Allocation == nil || held.Allocation.To != pool.Allocated {
		t.Fatalf("allocated record carries no allocation entry: %+v", held.Allocation)
	}
	back := s
	back.Rev, back.Allocation = 9, held.Allocation
	putRaw(t, q, pool.StoredItems(back)...)
	wantProblems(t, q, "sandbox "+s.ID+" was allocated once and is available again (single use)",
		"available sandbox "+s.ID+" carries an allocation entry")

	// After the release the allocation is in the history: forcing the record back to
	// available, as a buggy write would, breaks single use.
	r := pooltest.New(t)
	s = seed(t, r, account(3))[0]
	if _, err := r.Claim(ctx, s, claimFor("bob", time.Now()), student); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Release(ctx, mustGet(t, r, s.ID), pool.Holder{Student: "bob"}, student); err != nil {
		t.Fatal(err)
	}
	pooltest.Check(t, r)
	back = s
	back.Rev = 9
	putRaw(t, r, pool.StoredItems(back)...)
	wantProblems(t, r, "sandbox "+s.ID+" was allocated once and is available again (single use)")
}

// A tombstone is never due work: a due-work query of a tombstone status is refused, and
// tombstones are listable by status only.
func TestTombstonesAreNeverDueWork(t *testing.T) {
	p := pooltest.New(t)
	s := seed(t, p, account(1))[0]
	if _, err := p.Claim(ctx, s, claimFor("alice", time.Now()), student); err != nil {
		t.Fatal(err)
	}
	released, err := p.Release(ctx, mustGet(t, p, s.ID), pool.Holder{Student: "alice"}, student)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.MarkDeleted(ctx, released, cleanupJob); err != nil {
		t.Fatal(err)
	}
	for _, status := range []pool.Status{pool.Deleted, pool.Retired} {
		for _, err := range p.ByStatus(ctx, status, time.Now().Add(time.Hour).Unix()) {
			if err == nil || !strings.Contains(err.Error(), "never due work") {
				t.Fatalf("due %s query: %v", status, err)
			}
		}
	}
	n := 0
	for got, err := range p.ByStatus(ctx, pool.Deleted, 0) {
		if err != nil || got.ID != s.ID {
			t.Fatalf("listing deleted: %+v %v", got, err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("%d deleted listed, want 1", n)
	}
	pooltest.Check(t, p)
}

// A record whose status_key disagrees with its status or its shard is in the wrong
// StatusIndex shard, or in none: the checker reports it.
func TestCheckInvariantsReportsAWrongStatusKey(t *testing.T) {
	p := pooltest.New(t)
	s := seed(t, p, account(1))[0]
	pooltest.Check(t, p)
	otherShard := pool.StatusShardKey(pool.Available, 0)
	if otherShard == pool.StatusKey(pool.Available, s.ID) {
		otherShard = pool.StatusShardKey(pool.Available, 1)
	}
	for name, key := range map[string]types.AttributeValue{
		"another status": &types.AttributeValueMemberS{Value: pool.StatusKey(pool.Allocated, s.ID)},
		"another shard":  &types.AttributeValueMemberS{Value: otherShard},
		"none":           nil,
	} {
		items := pool.StoredItems(mustGet(t, p, s.ID))
		if key == nil {
			delete(items[0], pool.AttrStatusKey)
		} else {
			items[0][pool.AttrStatusKey] = key
		}
		putRaw(t, p, items...)
		_, err := p.CheckInvariants(ctx)
		if err == nil || !strings.Contains(err.Error(), "available sandbox "+s.ID+" has status_key") {
			t.Fatalf("%s: invariant check %v, want the status_key reported", name, err)
		}
	}
}

// A live record from before StatusIndex was sharded is in no shard: ByStatus, Count and
// the checker miss it until BackfillStatusKey writes its key, once, on the version read.
func TestBackfillStatusKeyPutsOldRecordsInTheirShard(t *testing.T) {
	p := pooltest.New(t)
	s := seed(t, p, account(1))[0]
	items := pool.StoredItems(mustGet(t, p, s.ID))
	delete(items[0], pool.AttrStatusKey)
	putRaw(t, p, items...)
	if n, err := p.Count(ctx, pool.Available); err != nil || n != 0 {
		t.Fatalf("an old record is counted: %d %v", n, err)
	}
	wantProblems(t, p, "available sandbox "+s.ID+" has status_key <nil>")

	old := mustGet(t, p, s.ID)
	stale := old
	stale.Rev++
	wantCondition(t, p.BackfillStatusKey(ctx, stale), pool.ItemSandbox, fmt.Sprintf("changed since it was read (rev %d, want %d)", old.Rev, stale.Rev))
	if err := p.BackfillStatusKey(ctx, old); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, p, s.ID); got != old {
		t.Fatalf("the backfill changed the record: %+v, was %+v", got, old)
	}
	n := 0
	for got, err := range p.ByStatus(ctx, pool.Available, 0) {
		if err != nil || got.ID != s.ID {
			t.Fatalf("after the backfill: %+v %v", got, err)
		}
		n++
	}
	if n != 1 {
		t.Fatalf("ByStatus(available) yielded %d after the backfill, want 1", n)
	}
	pooltest.Check(t, p)
	wantCondition(t, p.BackfillStatusKey(ctx, old), pool.ItemSandbox, "already carries its status_key")

	tomb := old
	tomb.Status = pool.Retired
	if err := p.BackfillStatusKey(ctx, tomb); err == nil || !strings.Contains(err.Error(), "tombstones") {
		t.Fatalf("backfill of a tombstone: %v", err)
	}
}

// Each invariant of CheckInvariants, run alone over a census of the table, catches a
// violation of what it guarantees planted in a table that held every invariant a moment
// before; and every invariant has its planted violation here.
func TestEachInvariantCatchesAPlantedViolation(t *testing.T) {
	type planted struct {
		plant func(t *testing.T, p *pool.Pool, s pool.Sandbox) // s: a fresh available sandbox
		want  func(s pool.Sandbox) string
	}
	claim := func(t *testing.T, p *pool.Pool, s pool.Sandbox, c pool.Claim) pool.Sandbox {
		t.Helper()
		if _, err := p.Claim(ctx, s, c, student); err != nil {
			t.Fatal(err)
		}
		return mustGet(t, p, s.ID)
	}
	cases := map[string]planted{
		"ownerRecordsMatchAllocations": {
			plant: func(t *testing.T, p *pool.Pool, s pool.Sandbox) {
				claim(t, p, s, claimFor("alice", time.Now()))
				deleteRaw(t, p, pool.OwnerKey(pool.Holder{Student: "alice"}, 0))
			},
			want: func(s pool.Sandbox) string { return "allocated sandbox " + s.ID + " has no owner record" },
		},
		"countersCountLiveAllocations": {
			plant: func(t *testing.T, p *pool.Pool, s pool.Sandbox) {
				split(t, p, "lab-a", 2)
				c := claimFor("alice", time.Now())
				c.Client, c.Cap, c.CapShard = "lab-a", 2, 1
				claim(t, p, s, c)
				item, err := attributevalue.MarshalMap(map[string]any{"client": "lab-a", "shard": 1, "live": 0, "limit": 1, "cap": 2})
				if err != nil {
					t.Fatal(err)
				}
				maps.Copy(item, pool.CounterKey("lab-a", 1))
				putRaw(t, p, item)
			},
			want: func(pool.Sandbox) string { return `counter shard "lab-a"/1 holds 0, but 1 allocated sandboxes took it` },
		},
		"recordsSitInTheirIndexShards": {
			plant: func(t *testing.T, p *pool.Pool, s pool.Sandbox) {
				items := pool.StoredItems(s)
				items[0][pool.AttrStatusKey] = &types.AttributeValueMemberS{Value: pool.StatusKey(pool.Stale, s.ID)}
				putRaw(t, p, items...)
			},
			want: func(s pool.Sandbox) string { return "available sandbox " + s.ID + " has status_key stale#" },
		},
		"allocatedOnlyOnce": {
			plant: func(t *testing.T, p *pool.Pool, s pool.Sandbox) {
				released(t, p, s)
				back := s
				back.Rev = 9
				putRaw(t, p, pool.StoredItems(back)...)
			},
			want: func(s pool.Sandbox) string {
				return "sandbox " + s.ID + " was allocated once and is available again (single use)"
			},
		},
		"statusAtFollowsStatus": {
			plant: func(t *testing.T, p *pool.Pool, s pool.Sandbox) {
				late := s
				late.StatusAt = s.UpdatedAt + 60
				putRaw(t, p, pool.StoredItems(late)...)
			},
			want: func(s pool.Sandbox) string {
				return fmt.Sprintf("available sandbox %s: status_at %d is after updated_at %d", s.ID, s.UpdatedAt+60, s.UpdatedAt)
			},
		},
		"onlyGoneAccountsExpire": {
			plant: func(t *testing.T, p *pool.Pool, s pool.Sandbox) {
				setTTL(t, p, uuidKey(s.AccountUUID), time.Now().Add(time.Hour).Unix())
			},
			want: func(s pool.Sandbox) string { return "uuid item of sandbox " + s.ID + " expires at" },
		},
		"oneRecordPerAccount": {
			plant: func(t *testing.T, p *pool.Pool, s pool.Sandbox) { deleteRaw(t, p, uuidKey(s.AccountUUID)) },
			want: func(s pool.Sandbox) string {
				return "sandbox " + s.ID + " has no uuid item for account " + s.AccountUUID
			},
		},
		"labProfilesAreValid": {
			plant: func(t *testing.T, p *pool.Pool, _ pool.Sandbox) {
				putRaw(t, p, map[string]types.AttributeValue{
					pool.AttrPK: &types.AttributeValueMemberS{Value: "LABS"}, pool.AttrSK: &types.AttributeValueMemberS{Value: `PROFILE#"dns"#""`},
					"lab": &types.AttributeValueMemberS{Value: "dns"}, "prefix": &types.AttributeValueMemberS{Value: ""},
					"student_limit": &types.AttributeValueMemberN{Value: "99"},
				})
			},
			want: func(pool.Sandbox) string {
				return `profile LABS / PROFILE#"dns"#"": lab "dns" prefix "", student_limit must be`
			},
		},
		"reservationsCountTheirSetAsides": {
			plant: func(t *testing.T, p *pool.Pool, s pool.Sandbox) {
				r, err := p.CreateReservation(ctx, pool.Reservation{Lab: "dns", Prefix: "", Seats: 2, StartsAt: 1, EndsAt: 2}, pool.Actor{})
				if err != nil {
					t.Fatal(err)
				}
				// The sandbox names the reservation without being in its partition or counted.
				marked := s
				marked.Reservation = r.ID
				putRaw(t, p, pool.StoredItems(marked)...)
			},
			want: func(s pool.Sandbox) string { return "counts 0 set aside, the records 1" },
		},
		"everyItemIsOfAKind": {
			plant: func(t *testing.T, p *pool.Pool, _ pool.Sandbox) {
				putRaw(t, p, map[string]types.AttributeValue{
					pool.AttrPK: &types.AttributeValueMemberS{Value: "CACHE#x"}, pool.AttrSK: &types.AttributeValueMemberS{Value: "1"},
				})
			},
			want: func(pool.Sandbox) string { return "item CACHE#x / 1 is of no kind the pool writes" },
		},
	}
	p := pooltest.New(t)
	clean, err := p.Violations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for name := range clean {
		if _, ok := cases[name]; !ok {
			t.Errorf("invariant %s has no planted violation in this test", name)
		}
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			p := pooltest.New(t)
			s := seed(t, p, account(1))[0]
			pooltest.Check(t, p)
			c.plant(t, p, s)
			found, err := p.Violations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := found[name]; !ok {
				t.Fatalf("CheckInvariants runs no invariant %s", name)
			}
			want := c.want(s)
			if !slices.ContainsFunc(found[name], func(err error) bool { return strings.Contains(err.Error(), want) }) {
				t.Fatalf("%s found %v; want a violation saying %q", name, found[name], want)
			}
			wantProblems(t, p, want)
		})
	}
}
