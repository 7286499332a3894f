package pool

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Census is what a full read of the table found.
type Census struct {
	ByStatus map[Status]int
	Owners   int
	// Counters counts client counter shards.
	Counters int
	History  int
	// Drains counts drain items and their history entries.
	Drains int
	UUIDs  int
	Leases int
	Runs   int
	// Profiles counts lab profiles, Reservations reservations.
	Profiles     int
	Reservations int
}

// CheckInvariants reads the whole table and checks docs/architecture.md §5 and the index
// keys:
//   - every allocated sandbox has exactly the owner record that points back at it, at the
//     slot the sandbox names (or under its idempotency key, for an allocation from before
//     slots), and every owner record points at a sandbox allocated to its client and
//     student under its key (1)–(3), with the sandbox's expires_at;
//   - per client and counter shard, the shard counts exactly the client's allocated
//     sandboxes that name it, and none is negative; per client, all shards are split for
//     one cap, room lies only in the cap's shards, and the live allocations counted plus
//     the room offered are at most the cap, or no room is offered (9);
//   - every record, tombstones too, carries the StatusIndex key of its status and shard
//     (StatusKey), so each is in the one StatusIndex shard that ByStatus, Count and List read;
//   - only available sandboxes carry AvailableIndex keys, in the right shard; a tombstone
//     carries none and has a tombstone status (no job queries one: ByStatus refuses due
//     tombstones);
//   - only a tombstone that may expire (MayExpire, and no allocation in its history) has a
//     TTL, and has one; its uuid item expires with it or after it, and no other uuid item
//     expires;
//   - single use (7): no record whose history holds an allocation (in a history item, or
//     on the record while it is allocated) is available, stale or a candidate; every
//     allocated record has its allocation entry, and only an allocated one carries it;
//   - one record per account (8): every record holds its uuid item and every uuid item
//     points at the record that holds it (or outlives an expired tombstone); no two
//     records share an account uuid;
//   - status_at agrees with the status (statusAtProblem);
//   - every lab profile is valid and under its own key;
//   - reservations (reservationProblems): each counts exactly the sandboxes set aside for
//     it and claimed from its set-aside, never more than its seats; only an available
//     sandbox is set aside, in its reservation's partition, and only for a reservation
//     that holds (scheduled) or is returning its set-aside (cancelled, or past its end);
//   - every item is of a kind the pool writes; anything else is reported.
//
// It is the proof the concurrency tests run after each scenario, and an operator's
// consistency check. Items whose TTL has passed are skipped: DynamoDB drops them within
// days, not at once.
func (p *Pool) CheckInvariants(ctx context.Context) (Census, error) {
	census := Census{ByStatus: map[Status]int{}}
	sandboxes := map[string]Sandbox{}
	avail := map[string]map[string]any{}
	allocatedOnce := map[string]bool{}
	uuids := map[string]uuidItem{}
	type ownerAt struct {
		Owner
		pk, sk string
	}
	var owners []ownerAt
	counters := map[string]*CapCounters{} // by client
	reservations := map[string]Reservation{}
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	now := p.now().Unix()
	pages := dynamodb.NewScanPaginator(p.db, &dynamodb.ScanInput{TableName: aws.String(p.table), ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return census, wrapAPIError("scan", err)
		}
		for _, item := range out.Items {
			var k struct {
				PK, SK string
				TTL    int64  `dynamodbav:"ttl"`
				To     Status `dynamodbav:"to_status"`
			}
			if err := attributevalue.UnmarshalMap(item, &k); err != nil {
				return census, err
			}
			if k.TTL > 0 && k.TTL <= now {
				continue
			}
			switch {
			case strings.HasPrefix(k.PK, prefixSandbox) && k.SK == skMeta:
				var s Sandbox
				var keys map[string]any
				if err := unmarshalBoth(item, &s, &keys); err != nil {
					return census, err
				}
				sandboxes[s.ID] = s
				avail[s.ID] = keys
				if s.Allocation != nil {
					allocatedOnce[s.ID] = true
				}
				census.ByStatus[s.Status]++
			case strings.HasPrefix(k.PK, prefixSandbox) && strings.HasPrefix(k.SK, prefixHistory):
				census.History++
				if k.To == Allocated {
					allocatedOnce[strings.TrimPrefix(k.PK, prefixSandbox)] = true
				}
			case strings.HasPrefix(k.PK, prefixOwner) && (strings.HasPrefix(k.SK, prefixSlot) || strings.HasPrefix(k.SK, prefixIdem)):
				var o Owner
				if err := attributevalue.UnmarshalMap(item, &o); err != nil {
					return census, err
				}
				owners = append(owners, ownerAt{o, k.PK, k.SK})
				census.Owners++
			case strings.HasPrefix(k.PK, prefixCap) && k.SK == skLive:
				var c CapCounter
				if err := attributevalue.UnmarshalMap(item, &c); err != nil {
					return census, err
				}
				if !sameKey(CounterKey(c.Client, c.Shard), k.PK, k.SK) || c.Shard < 0 || c.Shard >= CounterShards {
					bad("counter item %s / %s names client %q shard %d", k.PK, k.SK, c.Client, c.Shard)
					continue
				}
				if counters[c.Client] == nil {
					counters[c.Client] = &CapCounters{}
				}
				c.stored = true
				counters[c.Client][c.Shard] = c
				census.Counters++
			case strings.HasPrefix(k.PK, prefixLegacyCounter) && strings.HasPrefix(k.SK, prefixLegacyLive):
				bad("counter item %s / %s is from before each shard had its own partition: the client's next capped allocation moves it", k.PK, k.SK)
				census.Counters++
			case strings.HasPrefix(k.PK, prefixUUID) && k.SK == skUUID:
				var u uuidItem
				if err := attributevalue.UnmarshalMap(item, &u); err != nil {
					return census, err
				}
				if k.PK != prefixUUID+u.UUID {
					bad("uuid item %s names account %s", k.PK, u.UUID)
				}
				uuids[u.UUID] = u
				census.UUIDs++
			case strings.HasPrefix(k.PK, prefixLease) && k.SK == skLease:
				census.Leases++
			case strings.HasPrefix(k.PK, prefixJob) && strings.HasPrefix(k.SK, prefixRun):
				census.Runs++
			case k.PK == drainPK && (strings.HasPrefix(k.SK, prefixDrainEntry) || strings.HasPrefix(k.SK, prefixHistory)):
				census.Drains++
			case k.PK == migrationPK && k.SK == skMigration:
			case k.PK == labsPK && strings.HasPrefix(k.SK, prefixReservationEntry):
				var r Reservation
				if err := attributevalue.UnmarshalMap(item, &r); err != nil {
					return census, err
				}
				if k.SK != reservationSK(r.ID) || r.ID != strconv.Itoa(r.Shard) || r.Shard < firstReservationShard {
					bad("reservation %s / %s names ID %s and shard %d", k.PK, k.SK, r.ID, r.Shard)
				}
				reservations[r.ID] = r
				census.Reservations++
			case k.PK == labsPK && strings.HasPrefix(k.SK, prefixProfileEntry):
				var pr Profile
				if err := attributevalue.UnmarshalMap(item, &pr); err != nil {
					return census, err
				}
				if err := pr.Validate(); err != nil || k.SK != profileSK(pr.Lab, pr.Prefix) {
					bad("profile %s / %s: key of lab %q prefix %q, %v", k.PK, k.SK, pr.Lab, pr.Prefix, err)
				}
				census.Profiles++
			default:
				bad("item %s / %s is of no kind the pool writes", k.PK, k.SK)
			}
		}
	}

	claimedBy := map[string]Owner{}
	for _, o := range owners {
		if prev, dup := claimedBy[o.SandboxID]; dup {
			bad("sandbox %s has two owner records (%q/%q and %q/%q)", o.SandboxID, prev.Student, prev.IdempotencyKey, o.Student, o.IdempotencyKey)
		}
		claimedBy[o.SandboxID] = o.Owner
		s, ok := sandboxes[o.SandboxID]
		switch {
		case !ok:
			bad("owner record %s / %s points at missing sandbox %s", o.pk, o.sk, o.SandboxID)
		case s.Status != Allocated:
			bad("owner record %s / %s points at sandbox %s in status %s", o.pk, o.sk, s.ID, s.Status)
		case s.Owner != o.Student || s.Client != o.Client || s.IdempotencyKey != o.IdempotencyKey:
			bad("owner record %s / %s (key %q) points at sandbox %s allocated to %q/%q under key %q", o.pk, o.sk, o.IdempotencyKey, s.ID, s.Client, s.Owner, s.IdempotencyKey)
		case !sameKey(ownerKeyOf(s), o.pk, o.sk):
			bad("owner record %s / %s points at sandbox %s, which names its owner record elsewhere", o.pk, o.sk, s.ID)
		case s.ExpiresAt != o.ExpiresAt:
			// A replay answers from the owner record: it must show what an extension set.
			bad("owner record %s / %s says expires_at %d, sandbox %s says %d", o.pk, o.sk, o.ExpiresAt, s.ID, s.ExpiresAt)
		}
	}
	type shardRef struct {
		client string
		k      int
	}
	live := map[shardRef]int{} // allocated sandboxes per counter shard that counts them
	for id, s := range sandboxes {
		switch {
		case s.Status != Allocated && (s.OwnerSlot != nil || s.CapShard != nil):
			bad("%s sandbox %s still names an owner slot or counter shard", s.Status, id)
		case s.Status == Allocated && s.CapShard != nil:
			live[shardRef{s.Client, *s.CapShard}]++
		}
	}
	for client, cs := range counters {
		caps := map[int]bool{}
		for k, c := range cs {
			name, took := shardName(client, k), live[shardRef{client, k}]
			if c.Live != took || c.Live < 0 {
				bad("counter shard %s holds %d, but %d allocated sandboxes took it", name, c.Live, took)
			}
			if c.Room() > 0 && k >= OpenShards(c.Cap) {
				bad("counter shard %s offers room beyond the %d shards of its cap %d", name, OpenShards(c.Cap), c.Cap)
			}
			if c.stored {
				caps[c.Cap] = true
			}
		}
		if len(caps) > 1 {
			bad("the counter shards of client %q are split for different caps %v", client, slices.Sorted(maps.Keys(caps)))
		}
		// The cap bounds every live allocation counted: what the client holds plus the
		// room its shards offer is at most its cap, or they offer none.
		if room := cs.Room(); room > 0 && cs.Live()+room > cs.Cap() {
			bad("client %q holds %d counted live allocations and its counter shards admit %d more: past its cap %d", client, cs.Live(), room, cs.Cap())
		}
	}
	for ref, n := range live {
		if cs := counters[ref.client]; ref.k < 0 || ref.k >= CounterShards || cs == nil || !cs[ref.k].stored {
			bad("%d allocated sandboxes took counter shard %s, which does not exist", n, shardName(ref.client, ref.k))
		}
	}
	problems = append(problems, reservationProblems(sandboxes, reservations)...)
	recordOf := map[string]string{} // account uuid → sandbox ID
	for id, s := range sandboxes {
		if !s.Status.Valid() {
			bad("sandbox %s has unknown status %q", id, s.Status)
		}
		if _, owned := claimedBy[id]; s.Status == Allocated && !owned {
			bad("allocated sandbox %s has no owner record", id)
		}
		if got, want := avail[id][AttrStatusKey], StatusKey(s.Status, id); got != want {
			bad("%s sandbox %s has status_key %v, want %s (a live record from before StatusIndex was sharded: sync backfills it)", s.Status, id, got, want)
		}
		_, hasShard := avail[id][AttrAvailShard]
		wantShard := shardOf(id)
		if r, ok := reservations[s.Reservation]; ok && s.Status == Available {
			wantShard = r.Shard
		}
		if s.Status == Available {
			if !hasShard || avail[id][AttrAvailShard] != float64(wantShard) || avail[id][AttrAvailName] != s.Name {
				bad("available sandbox %s has wrong AvailableIndex keys", id)
			}
		} else if hasShard {
			bad("%s sandbox %s still carries AvailableIndex keys", s.Status, id)
		}
		if s.Status == Allocated && !allocatedOnce[id] {
			bad("allocated sandbox %s has no allocation entry, on the record or in its history", id)
		}
		if s.Allocation != nil && (s.Status != Allocated || s.Allocation.To != Allocated) {
			bad("%s sandbox %s carries an allocation entry to %q: only an allocated record does", s.Status, id, s.Allocation.To)
		}
		if allocatedOnce[id] && (s.Status == Available || s.Status == Stale || hasShard) {
			bad("sandbox %s was allocated once and is %s again (single use)", id, s.Status)
		}
		if why := statusAtProblem(s); why != "" {
			bad("%s sandbox %s: %s", s.Status, id, why)
		}
		// A retired record whose history shows an allocation never expires, whatever
		// traces of it the record kept.
		mayExpire := s.MayExpire() && !(s.Status == Retired && allocatedOnce[id])
		switch {
		case s.TTL != 0 && !s.Status.Tombstone():
			bad("%s sandbox %s has ttl %d: only tombstones expire", s.Status, id, s.TTL)
		case s.TTL != 0 && !mayExpire:
			bad("%s tombstone %s has ttl %d, but its account may still exist upstream: it must never expire (the tombstone TTL migration removes it)", s.Status, id, s.TTL)
		case s.TTL == 0 && mayExpire:
			bad("%s tombstone %s has no ttl", s.Status, id)
		}

		uuid := uuidOf(s)
		if other, dup := recordOf[uuid]; dup {
			bad("sandboxes %s and %s are records of one account %s", other, id, uuid)
		}
		recordOf[uuid] = id
		u, held := uuids[uuid]
		switch {
		case s.AccountUUID == "":
			bad("sandbox %s has not claimed its account uuid (a record from before uuid items; sync adopts it)", id)
		case s.AccountUUID != AccountUUID(s.ExternalID):
			bad("sandbox %s holds account %s but its external ID names %s", id, s.AccountUUID, AccountUUID(s.ExternalID))
		case !held:
			bad("sandbox %s has no uuid item for account %s", id, uuid)
		case u.SandboxID != id:
			bad("account %s of sandbox %s is held by sandbox %s", uuid, id, u.SandboxID)
		case (u.TTL == 0) != (s.TTL == 0) || u.TTL < s.TTL:
			bad("uuid item of sandbox %s expires at %d, the record at %d: it must expire with the record or after it, and only if the record does", id, u.TTL, s.TTL)
		}
	}
	for uuid, u := range uuids {
		s, ok := sandboxes[u.SandboxID]
		switch {
		case !ok && u.TTL != 0 && u.TTL-int64(uuidOutlives/time.Second) <= now:
			// The tail of an expired tombstone: its record's TTL has passed.
		case !ok || uuidOf(s) != uuid:
			bad("uuid item of account %s points at sandbox %s, which is not its record", uuid, u.SandboxID)
		}
	}
	return census, errors.Join(problems...)
}

// keyStrings returns the partition and sort key of a key built by key().
func keyStrings(k map[string]types.AttributeValue) (pk, sk string) {
	p, _ := k[AttrPK].(*types.AttributeValueMemberS)
	s, _ := k[AttrSK].(*types.AttributeValueMemberS)
	return p.Value, s.Value
}

func sameKey(k map[string]types.AttributeValue, pk, sk string) bool {
	p, s := keyStrings(k)
	return p == pk && s == sk
}

// shardName names a client's counter shard in CheckInvariants' reports.
func shardName(client string, k int) string { return fmt.Sprintf("%q/%d", client, k) }

func unmarshalBoth(item map[string]types.AttributeValue, into ...any) error {
	for _, v := range into {
		if err := attributevalue.UnmarshalMap(item, v); err != nil {
			return err
		}
	}
	return nil
}
