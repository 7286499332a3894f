package pool

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
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

// CheckInvariants reads the whole table once, in one consistent scan (census), and checks
// docs/architecture.md §5 and the index keys over what it read, one invariant at a time
// (invariants): each is a method of census named for what it guarantees. It returns the
// counts and every violation found, joined.
//
// It is the proof the concurrency tests run after each scenario (pooltest.Check), and an
// operator's consistency check. The scan reads each item consistently but is no snapshot
// of the table: a transaction that commits while it runs may show half done (a sandbox
// allocated, its owner record not yet read), so run it when no writer is active. Items
// whose TTL has passed are skipped: DynamoDB drops them within days, not at once.
func (p *Pool) CheckInvariants(ctx context.Context) (Census, error) {
	c, err := p.takeCensus(ctx)
	if err != nil {
		return c.Census, err
	}
	var problems []error
	for _, check := range invariants {
		problems = append(problems, check(c)...)
	}
	return c.Census, errors.Join(problems...)
}

// invariants are the checks CheckInvariants runs, each over the whole census.
var invariants = []func(*census) []error{
	(*census).ownerRecordsMatchAllocations,
	(*census).countersCountLiveAllocations,
	(*census).recordsSitInTheirIndexShards,
	(*census).allocatedOnlyOnce,
	(*census).statusAtFollowsStatus,
	(*census).onlyGoneAccountsExpire,
	(*census).oneRecordPerAccount,
	(*census).labProfilesAreValid,
	(*census).reservationsCountTheirSetAsides,
	(*census).everyItemIsOfAKind,
}

// census is everything one consistent scan of the table found, by kind of item, with the
// counts (Census). Reading it checks nothing but that an item decodes; what a key says
// that its item contradicts is kept for the invariant it breaks.
type census struct {
	Census
	now int64
	// sandboxes are the records by ID, with the index attributes each carries (keys) and
	// whether its history holds an allocation, on the record or in a history item.
	sandboxes     map[string]Sandbox
	keys          map[string]map[string]any
	allocatedOnce map[string]bool
	owners        []keyed[Owner]
	// counters are the counter shards by client; misfiled the counter items whose key
	// names another client or shard than the item; legacy those from before each shard
	// had its own partition.
	counters map[string]*CapCounters
	misfiled []keyed[CapCounter]
	legacy   []itemKey
	// uuids are the UUID items by account uuid; misnamed those whose key names another.
	uuids    map[string]uuidItem
	misnamed []keyed[uuidItem]
	// profiles are the lab profiles; reservations the reservations by ID.
	profiles     []keyed[Profile]
	reservations map[string]keyed[Reservation]
	// unknown are the items of no kind the pool writes.
	unknown []itemKey
	// drains are the drains in force.
	drains drainGate
}

// itemKey is an item's primary key as the scan read it.
type itemKey struct{ pk, sk string }

// keyed is an item with the key it is stored under.
type keyed[T any] struct {
	itemKey
	v T
}

// takeCensus scans the whole table, strongly consistent, to the last page.
func (p *Pool) takeCensus(ctx context.Context) (*census, error) {
	c := &census{
		Census:    Census{ByStatus: map[Status]int{}},
		now:       p.now().Unix(),
		sandboxes: map[string]Sandbox{}, keys: map[string]map[string]any{}, allocatedOnce: map[string]bool{},
		counters: map[string]*CapCounters{}, uuids: map[string]uuidItem{}, reservations: map[string]keyed[Reservation]{},
	}
	pages := dynamodb.NewScanPaginator(p.db, &dynamodb.ScanInput{TableName: aws.String(p.table), ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return c, wrapAPIError("scan", err)
		}
		for _, item := range out.Items {
			if err := c.add(item); err != nil {
				return c, err
			}
		}
	}
	return c, nil
}

// add files one scanned item under its kind.
func (c *census) add(item map[string]types.AttributeValue) error {
	var k struct {
		PK, SK string
		TTL    int64  `dynamodbav:"ttl"`
		To     Status `dynamodbav:"to_status"`
	}
	if err := attributevalue.UnmarshalMap(item, &k); err != nil {
		return err
	}
	if k.TTL > 0 && k.TTL <= c.now {
		return nil
	}
	at := itemKey{k.PK, k.SK}
	switch {
	case strings.HasPrefix(k.PK, prefixSandbox) && k.SK == skMeta:
		var s Sandbox
		var keys map[string]any
		if err := unmarshalBoth(item, &s, &keys); err != nil {
			return err
		}
		c.sandboxes[s.ID] = s
		c.keys[s.ID] = keys
		if s.Allocation != nil {
			c.allocatedOnce[s.ID] = true
		}
		c.ByStatus[s.Status]++
	case strings.HasPrefix(k.PK, prefixSandbox) && strings.HasPrefix(k.SK, prefixHistory):
		c.History++
		if k.To == Allocated {
			c.allocatedOnce[strings.TrimPrefix(k.PK, prefixSandbox)] = true
		}
	case strings.HasPrefix(k.PK, prefixOwner) && (strings.HasPrefix(k.SK, prefixSlot) || strings.HasPrefix(k.SK, prefixIdem)):
		var o Owner
		if err := attributevalue.UnmarshalMap(item, &o); err != nil {
			return err
		}
		c.owners = append(c.owners, keyed[Owner]{at, o})
		c.Owners++
	case k.PK == drainPK && strings.HasPrefix(k.SK, prefixDrainEntry):
		var d Drain
		if err := attributevalue.UnmarshalMap(item, &d); err != nil {
			return err
		}
		c.drains.drains = append(c.drains.drains, d)
		c.Drains++
	case k.PK == drainPK && (k.SK == skDrainState || strings.HasPrefix(k.SK, prefixJoinedLog) || strings.HasPrefix(k.SK, prefixDrainedLog)):
	case strings.HasPrefix(k.PK, prefixCap) && k.SK == skLive:
		var cc CapCounter
		if err := attributevalue.UnmarshalMap(item, &cc); err != nil {
			return err
		}
		if !sameKey(CounterKey(cc.Client, cc.Shard), k.PK, k.SK) || cc.Shard < 0 || cc.Shard >= CounterShards {
			c.misfiled = append(c.misfiled, keyed[CapCounter]{at, cc})
			return nil
		}
		if c.counters[cc.Client] == nil {
			c.counters[cc.Client] = &CapCounters{}
		}
		cc.stored = true
		c.counters[cc.Client][cc.Shard] = cc
		c.Counters++
	case strings.HasPrefix(k.PK, prefixLegacyCounter) && strings.HasPrefix(k.SK, prefixLegacyLive):
		c.legacy = append(c.legacy, at)
		c.Counters++
	case strings.HasPrefix(k.PK, prefixUUID) && k.SK == skUUID:
		var u uuidItem
		if err := attributevalue.UnmarshalMap(item, &u); err != nil {
			return err
		}
		if k.PK != prefixUUID+u.UUID {
			c.misnamed = append(c.misnamed, keyed[uuidItem]{at, u})
		}
		c.uuids[u.UUID] = u
		c.UUIDs++
	case strings.HasPrefix(k.PK, prefixLease) && k.SK == skLease:
		c.Leases++
	case strings.HasPrefix(k.PK, prefixJob) && strings.HasPrefix(k.SK, prefixRun):
		c.Runs++
	case k.PK == drainPK && (strings.HasPrefix(k.SK, prefixDrainEntry) || strings.HasPrefix(k.SK, prefixHistory)):
		c.Drains++
	case k.PK == migrationPK && k.SK == skMigration:
	case k.PK == labsPK && strings.HasPrefix(k.SK, prefixProfileEntry):
		var pr Profile
		if err := attributevalue.UnmarshalMap(item, &pr); err != nil {
			return err
		}
		c.profiles = append(c.profiles, keyed[Profile]{at, pr})
		c.Profiles++
	case k.PK == labsPK && strings.HasPrefix(k.SK, prefixReservationEntry):
		var r Reservation
		if err := attributevalue.UnmarshalMap(item, &r); err != nil {
			return err
		}
		c.reservations[r.ID] = keyed[Reservation]{at, r}
		c.Reservations++
	case IsPrefixSignal(k.PK, k.SK):
	default:
		c.unknown = append(c.unknown, at)
	}
	return nil
}

// violations collects what one invariant found.
type violations []error

func (v *violations) add(format string, args ...any) { *v = append(*v, fmt.Errorf(format, args...)) }

// ownerRecordsMatchAllocations guarantees (1)–(3): every allocated sandbox has exactly
// the owner record that points back at it, at the slot the sandbox names (or under its
// idempotency key, for an allocation from before slots), with the sandbox's expires_at;
// every owner record points at a sandbox allocated to its client and student under its
// key; and no other status names an owner slot or a counter shard.
func (c *census) ownerRecordsMatchAllocations() []error {
	var v violations
	claimedBy := map[string]Owner{}
	for _, o := range c.owners {
		if prev, dup := claimedBy[o.v.SandboxID]; dup {
			v.add("sandbox %s has two owner records (%q/%q and %q/%q)", o.v.SandboxID, prev.Student, prev.IdempotencyKey, o.v.Student, o.v.IdempotencyKey)
		}
		claimedBy[o.v.SandboxID] = o.v
		s, ok := c.sandboxes[o.v.SandboxID]
		switch {
		case !ok:
			v.add("owner record %s / %s points at missing sandbox %s", o.pk, o.sk, o.v.SandboxID)
		case s.Status != Allocated:
			v.add("owner record %s / %s points at sandbox %s in status %s", o.pk, o.sk, s.ID, s.Status)
		case s.Owner != o.v.Student || s.Client != o.v.Client || s.IdempotencyKey != o.v.IdempotencyKey:
			v.add("owner record %s / %s (key %q) points at sandbox %s allocated to %q/%q under key %q", o.pk, o.sk, o.v.IdempotencyKey, s.ID, s.Client, s.Owner, s.IdempotencyKey)
		case !sameKey(ownerKeyOf(s), o.pk, o.sk):
			v.add("owner record %s / %s points at sandbox %s, which names its owner record elsewhere", o.pk, o.sk, s.ID)
		case s.ExpiresAt != o.v.ExpiresAt:
			// A replay answers from the owner record: it must show what an extension set.
			v.add("owner record %s / %s says expires_at %d, sandbox %s says %d", o.pk, o.sk, o.v.ExpiresAt, s.ID, s.ExpiresAt)
		}
	}
	for id, s := range c.sandboxes {
		if _, owned := claimedBy[id]; s.Status == Allocated && !owned {
			v.add("allocated sandbox %s has no owner record", id)
		}
		if s.Status != Allocated && (s.OwnerSlot != nil || s.CapShard != nil) {
			v.add("%s sandbox %s still names an owner slot or counter shard", s.Status, id)
		}
	}
	return v
}

// countersCountLiveAllocations guarantees (9): per client and counter shard, the shard
// counts exactly the client's allocated sandboxes that name it, and none is negative; a
// sandbox names only a shard that exists; per client, all shards are split for one cap,
// room lies only in the cap's shards, and the live allocations counted plus the room
// offered are at most the cap, or no room is offered. A counter item filed under another
// client's or shard's key, or from before each shard had its own partition, is reported.
func (c *census) countersCountLiveAllocations() []error {
	var v violations
	for _, m := range c.misfiled {
		v.add("counter item %s / %s names client %q shard %d", m.pk, m.sk, m.v.Client, m.v.Shard)
	}
	for _, l := range c.legacy {
		v.add("counter item %s / %s is from before each shard had its own partition: the client's next capped allocation moves it", l.pk, l.sk)
	}
	type shardRef struct {
		client string
		k      int
	}
	live := map[shardRef]int{} // allocated sandboxes per counter shard that counts them
	for _, s := range c.sandboxes {
		if s.Status == Allocated && s.CapShard != nil {
			live[shardRef{s.Client, *s.CapShard}]++
		}
	}
	for client, cs := range c.counters {
		caps := map[int]bool{}
		for k, cc := range cs {
			name, took := shardName(client, k), live[shardRef{client, k}]
			if cc.Live != took || cc.Live < 0 {
				v.add("counter shard %s holds %d, but %d allocated sandboxes took it", name, cc.Live, took)
			}
			if cc.Room() > 0 && k >= OpenShards(cc.Cap) {
				v.add("counter shard %s offers room beyond the %d shards of its cap %d", name, OpenShards(cc.Cap), cc.Cap)
			}
			if cc.stored {
				caps[cc.Cap] = true
			}
		}
		if len(caps) > 1 {
			v.add("the counter shards of client %q are split for different caps %v", client, slices.Sorted(maps.Keys(caps)))
		}
		// The cap bounds every live allocation counted: what the client holds plus the
		// room its shards offer is at most its cap, or they offer none.
		if room := cs.Room(); room > 0 && cs.Live()+room > cs.Cap() {
			v.add("client %q holds %d counted live allocations and its counter shards admit %d more: past its cap %d", client, cs.Live(), room, cs.Cap())
		}
	}
	for ref, n := range live {
		if cs := c.counters[ref.client]; ref.k < 0 || ref.k >= CounterShards || cs == nil || !cs[ref.k].stored {
			v.add("%d allocated sandboxes took counter shard %s, which does not exist", n, shardName(ref.client, ref.k))
		}
	}
	return v
}

// recordsSitInTheirIndexShards guarantees that the queries find every record where they
// look: every record, tombstones too, has a known status and carries the StatusIndex key
// of its status and shard (StatusKey), so each is in the one StatusIndex shard that
// ByStatus, Count and List read; only available sandboxes carry AvailableIndex keys, under
// their name and in the right shard: the drained one (DrainedShard) while a drain covers
// the name, its own otherwise; so a tombstone carries none (and no job's
// due-work query reads a tombstone status: ByStatus refuses it).
func (c *census) recordsSitInTheirIndexShards() []error {
	var v violations
	for id, s := range c.sandboxes {
		keys := c.keys[id]
		if !s.Status.Valid() {
			v.add("sandbox %s has unknown status %q", id, s.Status)
		}
		if got, want := keys[AttrStatusKey], StatusKey(s.Status, id); got != want {
			v.add("%s sandbox %s has status_key %v, want %s (a live record from before StatusIndex was sharded: sync backfills it)", s.Status, id, got, want)
		}
		_, hasShard := keys[AttrAvailShard]
		switch {
		case s.Status == Available && (!hasShard || keys[AttrAvailShard] != float64(c.availShard(s)) || keys[AttrAvailName] != s.Name):
			v.add("available sandbox %s has wrong AvailableIndex keys", id)
		case s.Status != Available && hasShard:
			v.add("%s sandbox %s still carries AvailableIndex keys", s.Status, id)
		}
	}
	return v
}

// allocatedOnlyOnce guarantees single use (7): no record whose history holds an
// allocation (in a history item, or on the record while it is allocated) is available,
// stale or a candidate; every allocated record has its allocation entry, and only an
// allocated one carries it on the record.
func (c *census) allocatedOnlyOnce() []error {
	var v violations
	for id, s := range c.sandboxes {
		_, candidate := c.keys[id][AttrAvailShard]
		if s.Status == Allocated && !c.allocatedOnce[id] {
			v.add("allocated sandbox %s has no allocation entry, on the record or in its history", id)
		}
		if s.Allocation != nil && (s.Status != Allocated || s.Allocation.To != Allocated) {
			v.add("%s sandbox %s carries an allocation entry to %q: only an allocated record does", s.Status, id, s.Allocation.To)
		}
		if c.allocatedOnce[id] && (s.Status == Available || s.Status == Stale || candidate) {
			v.add("sandbox %s was allocated once and is %s again (single use)", id, s.Status)
		}
	}
	return v
}

// statusAtFollowsStatus guarantees that StatusIndex orders each status by the moment the
// record next needs attention: status_at agrees with the status (statusAtProblem).
func (c *census) statusAtFollowsStatus() []error {
	var v violations
	for id, s := range c.sandboxes {
		if why := statusAtProblem(s); why != "" {
			v.add("%s sandbox %s: %s", s.Status, id, why)
		}
	}
	return v
}

// onlyGoneAccountsExpire guarantees that nothing which keeps an account from being
// adopted again leaves the table while the account may still exist upstream: only a
// tombstone that may expire (MayExpire, and for a retired one no allocation in its
// history) has a TTL, and it has one; the UUID item of a record expires with it or after
// it, and only if the record does.
func (c *census) onlyGoneAccountsExpire() []error {
	var v violations
	for id, s := range c.sandboxes {
		// A retired record whose history shows an allocation never expires, whatever
		// traces of it the record kept.
		mayExpire := s.MayExpire() && !(s.Status == Retired && c.allocatedOnce[id])
		switch {
		case s.TTL != 0 && !s.Status.Tombstone():
			v.add("%s sandbox %s has ttl %d: only tombstones expire", s.Status, id, s.TTL)
		case s.TTL != 0 && !mayExpire:
			v.add("%s tombstone %s has ttl %d, but its account may still exist upstream: it must never expire (the tombstone TTL migration removes it)", s.Status, id, s.TTL)
		case s.TTL == 0 && mayExpire:
			v.add("%s tombstone %s has no ttl", s.Status, id)
		}
		if u, held := c.uuids[uuidOf(s)]; held && u.SandboxID == id && s.AccountUUID != "" && s.AccountUUID == AccountUUID(s.ExternalID) &&
			((u.TTL == 0) != (s.TTL == 0) || u.TTL < s.TTL) {
			v.add("uuid item of sandbox %s expires at %d, the record at %d: it must expire with the record or after it, and only if the record does", id, u.TTL, s.TTL)
		}
	}
	return v
}

// oneRecordPerAccount guarantees (8): every record holds its account uuid (the one its
// external ID names) and the UUID item of it; every UUID item is stored under its uuid and
// points at the record that holds it, or is the tail of an expired tombstone; no two
// records share an account uuid.
func (c *census) oneRecordPerAccount() []error {
	var v violations
	for _, m := range c.misnamed {
		v.add("uuid item %s names account %s", m.pk, m.v.UUID)
	}
	recordOf := map[string]string{} // account uuid → sandbox ID
	for _, id := range slices.Sorted(maps.Keys(c.sandboxes)) {
		s := c.sandboxes[id]
		uuid := uuidOf(s)
		if other, dup := recordOf[uuid]; dup {
			v.add("sandboxes %s and %s are records of one account %s", other, id, uuid)
		}
		recordOf[uuid] = id
		u, held := c.uuids[uuid]
		switch {
		case s.AccountUUID == "":
			v.add("sandbox %s has not claimed its account uuid (a record from before uuid items; sync adopts it)", id)
		case s.AccountUUID != AccountUUID(s.ExternalID):
			v.add("sandbox %s holds account %s but its external ID names %s", id, s.AccountUUID, AccountUUID(s.ExternalID))
		case !held:
			v.add("sandbox %s has no uuid item for account %s", id, uuid)
		case u.SandboxID != id:
			v.add("account %s of sandbox %s is held by sandbox %s", uuid, id, u.SandboxID)
		}
	}
	for uuid, u := range c.uuids {
		s, ok := c.sandboxes[u.SandboxID]
		switch {
		case !ok && u.TTL != 0 && u.TTL-int64(uuidOutlives/time.Second) <= c.now:
			// The tail of an expired tombstone: its record's TTL has passed.
		case !ok || uuidOf(s) != uuid:
			v.add("uuid item of account %s points at sandbox %s, which is not its record", uuid, u.SandboxID)
		}
	}
	return v
}

// everyItemIsOfAKind guarantees that the table holds only what the pool writes: an item
// of any other kind is reported, not skipped.
func (c *census) everyItemIsOfAKind() []error {
	var v violations
	for _, k := range c.unknown {
		v.add("item %s / %s is of no kind the pool writes", k.pk, k.sk)
	}
	return v
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
