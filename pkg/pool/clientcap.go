package pool

import (
	"context"
	"errors"
	"iter"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A client's cap on live allocations (docs/architecture.md §5, "The client cap") is held
// by CounterShards counter items, each on its own partition key (CAP#<client>#<k> /
// LIVE), so a burst of one client's claims spreads its writes over as many partitions.
// Every allocation of a capped client that a counter counts names its shard on the
// sandbox (cap_shard), and the transaction that ends it gives that shard back.
//
// Shard k holds Live allocations and admits claims up to its Limit. Limits are set only
// by SplitCap, never by a claim: a client holding fewer than its cap gets the room left,
// cap − live, spread over the first OpenShards(cap) shards on top of what each holds; one
// holding its cap or more gets no room anywhere. So a client's live allocations plus the
// room its shards offer never exceed its cap, or the shards offer no room at all: a cap
// bounds every live allocation the counters count, whenever it was made and under
// whatever cap. Allocations no counter counts yet (made before the cap, or by a process
// that did not know it yet) are counted by CountAllocation before the cap is split.

// CounterShards is how many counter shards a capped client has, whatever its cap: a
// lower cap never forgets a shard that counts allocations.
const CounterShards = 8

// OpenShards is how many of the counter shards a cap's room is split over, and claims
// take: one per allowed allocation, up to CounterShards.
func OpenShards(cap int) int { return min(cap, CounterShards) }

// CounterKey is the key of a client's counter shard k.
func CounterKey(client string, k int) map[string]types.AttributeValue {
	return key(prefixCap+client+ownerSep+strconv.Itoa(k), skLive)
}

// CapCounter is one shard of a capped client's count of live allocations. It has no TTL:
// it is the only count of the client's live allocations, and one dropped while they live
// would let the client past its cap; a client has CounterShards of them.
type CapCounter struct {
	Client string `dynamodbav:"client"`
	Shard  int    `dynamodbav:"shard"`
	Live   int    `dynamodbav:"live"`
	// Limit is how many live allocations the shard admits claims up to; Cap the cap it
	// was split for (SplitCap), 0 before the first split.
	Limit int `dynamodbav:"limit"`
	Cap   int `dynamodbav:"cap"`
	// stored: the item exists (CapCounters read it).
	stored bool
}

// Room is how many more claims the shard admits.
func (c CapCounter) Room() int { return max(0, c.Limit-c.Live) }

// CapCounters are a client's counter shards, by shard.
type CapCounters [CounterShards]CapCounter

// Live is how many live allocations the shards count.
func (cs CapCounters) Live() int {
	n := 0
	for _, c := range cs {
		n += c.Live
	}
	return n
}

// Room is how many more claims the shards admit.
func (cs CapCounters) Room() int {
	n := 0
	for _, c := range cs {
		n += c.Room()
	}
	return n
}

// Cap is the cap the shards were last split for, 0 if never.
func (cs CapCounters) Cap() int {
	for _, c := range cs {
		if c.Cap != 0 {
			return c.Cap
		}
	}
	return 0
}

// limits splits cap over the shards as they are (SplitCap).
func (cs CapCounters) limits(cap int) [CounterShards]int {
	var limits [CounterShards]int
	room, n := cap-cs.Live(), OpenShards(cap)
	if room <= 0 {
		return limits
	}
	for k := range n {
		limits[k] = cs[k].Live + room/n
		if k < room%n {
			limits[k]++
		}
	}
	return limits
}

// CapCounters reads a client's counter shards, strongly consistent: one GetItem per
// shard, all at once (the role the functions have grants GetItem, not BatchGetItem). A
// shard that does not exist reads as live 0, limit 0.
func (p *Pool) CapCounters(ctx context.Context, client string) (CapCounters, error) {
	var cs CapCounters
	errs := make([]error, CounterShards)
	var wg sync.WaitGroup
	for k := range cs {
		cs[k] = CapCounter{Client: client, Shard: k}
		wg.Go(func() {
			pk, sk := keyStrings(CounterKey(client, k))
			var c CapCounter
			found, err := p.getItem(ctx, pk, sk, &c)
			if found {
				c.stored = true
				cs[k] = c
			}
			errs[k] = err
		})
	}
	wg.Wait()
	return cs, errors.Join(errs...)
}

// SplitCap sets the limits of a client's counter shards for cap (see CounterShards): the
// room left below the cap over the first OpenShards(cap) shards, or none when the client
// holds its cap or more. read is the shards as CapCounters returned them; every shard is
// written, conditioned on its live count being the one read, so a claim or a release in
// between makes the split a lost race, to read again and redo.
func (p *Pool) SplitCap(ctx context.Context, client string, cap int, read CapCounters) error {
	limits := read.limits(cap)
	t := p.newTx("split cap", client, expect{})
	for k, c := range read {
		var e expr
		cond := "attribute_not_exists(#PK)"
		if c.stored {
			cond = "#live = :live"
		}
		e.set(":client", client)
		e.set(":shard", k)
		e.set(":live", c.Live)
		e.set(":limit", limits[k])
		e.set(":cap", cap)
		t.add(ItemCounter, types.TransactWriteItem{Update: &types.Update{
			TableName:                           aws.String(p.table),
			Key:                                 CounterKey(client, k),
			UpdateExpression:                    aws.String(e.use("SET #client = :client, #shard = :shard, #live = :live, #limit = :limit, #cap = :cap")),
			ConditionExpression:                 aws.String(e.use(cond)),
			ExpressionAttributeNames:            e.names,
			ExpressionAttributeValues:           e.values,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		}})
	}
	return p.run(ctx, t)
}

// UncountedAllocations yields the allocated sandboxes of client that no counter counts
// (no cap_shard), or of every client when client is "": one filtered query of each
// StatusIndex shard of allocated, to the last page. The index is eventually consistent:
// an allocation committed a moment before may be missing.
func (p *Pool) UncountedAllocations(ctx context.Context, client string) iter.Seq2[Sandbox, error] {
	return func(yield func(Sandbox, error) bool) {
		for shard := range Shards {
			in, e := statusQuery(Allocated, shard, 0)
			filter := "attribute_exists(#client) AND attribute_not_exists(#cap_shard)"
			if client != "" {
				e.set(":client", client)
				filter = "#client = :client AND attribute_not_exists(#cap_shard)"
			}
			in.FilterExpression = aws.String(e.use(filter))
			for s, err := range decode[Sandbox](p.query(ctx, in, e)) {
				if !yield(s, err) || err != nil {
					return
				}
			}
		}
	}
}

// CountAllocation enrols a live allocation no counter counts (cur, as read) in its
// client's counter shard k, 0 to CounterShards−1: it names the shard on the sandbox and
// adds one to it, in one transaction conditioned on the sandbox still being allocated to
// that holder and counted nowhere, so it is counted once, and the release, which gives
// back the shard the sandbox names, takes it back exactly once (a release that read the
// sandbox before fails its condition on cap_shard and reads again). Not a transition: no
// history, no version bump, so a concurrent extension is not disturbed.
func (p *Pool) CountAllocation(ctx context.Context, cur Sandbox, k int) error {
	none := uncounted
	t := p.newTx("count allocation", cur.ID, expect{statuses: []Status{Allocated},
		owner: &Holder{Client: cur.Client, Student: cur.Owner}, capShard: &none})
	var e expr
	e.set(":k", k)
	t.updateSandbox(p.table, &e, "SET #cap_shard = :k")
	t.addToCounter(p.table, cur.Client, k, 1, nil)
	return p.run(ctx, t)
}

// legacyCounterKey is the key of counter shard k as it was stored before each shard had
// its own partition: CLIENT#<client> / LIVE#<k>, all of a client's shards under one key.
func legacyCounterKey(client string, k int) map[string]types.AttributeValue {
	return key(prefixLegacyCounter+client, prefixLegacyLive+strconv.Itoa(k))
}

const (
	prefixLegacyCounter = "CLIENT#"
	prefixLegacyLive    = "LIVE#"
)

// MoveLegacyCounters moves a client's counter shards from before each shard had its own
// partition into the shard of the same number, one transaction each: the old item goes,
// conditioned on the count read, and its count is added to the new one, which the
// releases since the upgrade already took their allocations from. It returns how many it
// moved.
func (p *Pool) MoveLegacyCounters(ctx context.Context, client string) (int, error) {
	old, err := collect[CapCounter](p.itemsUnder(ctx, prefixLegacyCounter+client, prefixLegacyLive, &dynamodb.QueryInput{ConsistentRead: aws.Bool(true)}))
	if err != nil {
		return 0, err
	}
	for _, c := range old {
		t := p.newTx("move legacy counter", client, expect{})
		var e expr
		e.set(":live", c.Live)
		t.add(ItemCounter, types.TransactWriteItem{Delete: &types.Delete{
			TableName:                 aws.String(p.table),
			Key:                       legacyCounterKey(client, c.Shard),
			ConditionExpression:       aws.String(e.use("#live = :live")),
			ExpressionAttributeNames:  e.names,
			ExpressionAttributeValues: e.values,
		}})
		if c.Live != 0 {
			t.addToCounter(p.table, client, c.Shard, c.Live, nil)
		}
		if err := p.run(ctx, t); err != nil {
			return 0, err
		}
	}
	return len(old), nil
}
