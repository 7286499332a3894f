package pool

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Drain stops new allocations of sandboxes whose name starts with its Prefix (an empty
// Prefix drains every sandbox), while sync, cleanup and expiry go on. Each drain is one
// item under the partition drainPK; the history of starting and ending drains lives beside
// them, as a sandbox's history lives beside it.
//
// A drain costs allocation no request (docs/operations.md, "Drain mode"): StartDrain
// moves every matching available sandbox out of the AvailableIndex shards allocation reads
// into its drained shard (DrainedShard), bumping its rev, so a claim from a page read before
// cannot land and no later page lists it; EndDrains moves them back. Every other write that
// puts a sandbox into AvailableIndex (sync's create, unstale and rename) is conditioned on
// the drain state it read (its version, drainGate) and puts it into the drained shard when a
// drain matches. Each of these writes also logs the sandbox in the drains' partition for
// indexLogTTL, so a pass finds a sandbox written a moment before it even while the index,
// which DynamoDB updates asynchronously, does not list it yet.
type Drain struct {
	Prefix string `dynamodbav:"prefix"`
	Reason string `dynamodbav:"reason,omitempty"`
	// By is the admin client that started it; Since when (unix seconds).
	By    string `dynamodbav:"by,omitempty"`
	Since int64  `dynamodbav:"since"`
}

const (
	drainPK          = "DRAIN"
	prefixDrainEntry = "PREFIX#"
	// skDrainState is the drain state's item: its version grows with every drain started
	// or ended.
	skDrainState = "STATE"
	// prefixJoinedLog and prefixDrainedLog log a write that put a sandbox into a claimable
	// or a drained AvailableIndex shard: <prefix><name>#<sandbox id>.
	prefixJoinedLog  = "JOINED#"
	prefixDrainedLog = "DRAINED#"
	// indexLogTTL is how long a log entry is kept: far longer than the index takes to
	// show the write it logs (a fraction of a second, as DynamoDB documents it).
	indexLogTTL = time.Hour
	// passWorkers bounds the writes a drain pass has in flight.
	passWorkers = 16
	// maxPassTries bounds the attempts of a pass on one sandbox that other writes keep
	// changing.
	maxPassTries = 10
	// maxGateTries bounds the attempts of a write whose drain state changed meanwhile.
	maxGateTries = 3
)

// DrainedShard is the AvailableIndex shard of the drained available sandboxes of shard k.
// Allocation reads shards 0 to Shards-1 only.
func DrainedShard(k int) int { return Shards + k }

// drainGate is the drains in force and the version of the drain state they were read at.
type drainGate struct {
	drains  []Drain
	version int64
}

// holds reports whether a drain in force covers the sandbox named name.
func (g drainGate) holds(name string) bool {
	for _, d := range g.drains {
		if strings.HasPrefix(name, d.Prefix) {
			return true
		}
	}
	return false
}

// availShard is the AvailableIndex shard an available sandbox belongs in under g.
func (g drainGate) availShard(id, name string) int {
	if g.holds(name) {
		return DrainedShard(shardOf(id))
	}
	return shardOf(id)
}

// gateCache is the drain state a process last read for its gated writes. A stale one is
// harmless: the write it decides is conditioned on its version, and refused once the
// state moved on (ItemDrains), and the write is decided again from a fresh read.
type gateCache struct {
	mu   sync.Mutex
	gate *drainGate
	// afterRead, when set, is called with each gate a gated write read, before it writes
	// (tests: a drain started in between).
	afterRead func()
}

func (p *Pool) cachedGate(ctx context.Context, fresh bool) (drainGate, error) {
	p.gates.mu.Lock()
	g := p.gates.gate
	p.gates.mu.Unlock()
	if g == nil || fresh {
		read, err := p.readGate(ctx)
		if err != nil {
			return drainGate{}, err
		}
		g = &read
		p.gates.mu.Lock()
		p.gates.gate = g
		p.gates.mu.Unlock()
	}
	if p.gates.afterRead != nil {
		p.gates.afterRead()
	}
	return *g, nil
}

// gated runs the write write builds for a gate, reading the gate again when the drain
// state moved on between the read and the write.
func (p *Pool) gated(ctx context.Context, write func(drainGate) error) error {
	for attempt := 0; ; attempt++ {
		g, err := p.cachedGate(ctx, attempt > 0)
		if err != nil {
			return err
		}
		err = write(g)
		var ce *ConditionError
		if !errors.As(err, &ce) || ce.Item != ItemDrains || attempt+1 >= maxGateTries {
			return err
		}
	}
}

// readGate reads the drains and the version of the drain state in one strongly consistent
// query: a read that starts after a drain was written sees it.
func (p *Pool) readGate(ctx context.Context) (drainGate, error) {
	var e expr
	e.set(":pk", drainPK)
	e.set(":from", prefixDrainEntry)
	e.set(":to", skDrainState)
	in := &dynamodb.QueryInput{
		KeyConditionExpression: aws.String(e.use("#PK = :pk AND #SK BETWEEN :from AND :to")),
		ConsistentRead:         aws.Bool(true),
	}
	var g drainGate
	for item, err := range p.query(ctx, in, &e) {
		if err != nil {
			return drainGate{}, err
		}
		var k struct {
			SK      string
			Version int64 `dynamodbav:"version"`
		}
		if err := attributevalue.UnmarshalMap(item, &k); err != nil {
			return drainGate{}, fmt.Errorf("pool: drains: %w", err)
		}
		if k.SK == skDrainState {
			g.version = k.Version
			continue
		}
		var d Drain
		if err := attributevalue.UnmarshalMap(item, &d); err != nil {
			return drainGate{}, fmt.Errorf("pool: drains: %w", err)
		}
		g.drains = append(g.drains, d)
	}
	return g, nil
}

// underGate conditions t on the drain state being still at g's version: a drain started or
// ended since g was read cancels it (a *ConditionError with Item ItemDrains). It only reads
// the state item: only sync's writes, one at a time, and drains take it.
func (t *tx) underGate(table string, g drainGate) {
	var e expr
	e.set(":version", g.version)
	cond := "#version = :version"
	if g.version == 0 {
		cond = "attribute_not_exists(#version) OR " + cond
	}
	t.add(ItemDrains, types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName:                 aws.String(table),
		Key:                       key(drainPK, skDrainState),
		ConditionExpression:       aws.String(e.use(cond)),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	}})
}

// bumpGate moves the drain state to its next version, which cancels every gated write
// decided from the drains before.
func (t *tx) bumpGate(table string) {
	var e expr
	e.set(":zero", 0)
	e.set(":one", 1)
	t.add("", types.TransactWriteItem{Update: &types.Update{
		TableName:                 aws.String(table),
		Key:                       key(drainPK, skDrainState),
		UpdateExpression:          aws.String(e.use("SET #version = if_not_exists(#version, :zero) + :one")),
		ExpressionAttributeNames:  e.names,
		ExpressionAttributeValues: e.values,
	}})
}

// logIndexed logs that t puts sandbox id, named name, into AvailableIndex shard shard.
func (p *Pool) logIndexed(t *tx, id, name string, shard int) {
	kind := prefixJoinedLog
	if shard >= Shards {
		kind = prefixDrainedLog
	}
	item := key(drainPK, kind+name+"#"+id)
	item["sandbox_id"] = av(id)
	item[AttrTTL] = av(p.now().Add(indexLogTTL).Unix())
	t.put("", p.table, item, "")
}

// StartDrain writes the drain (a drain of the same prefix is replaced: its reason and
// start change) with a history entry and the next version of the drain state, in one
// transaction, and then moves every available sandbox it covers into its drained shard.
// When it returns, no claim of a covered sandbox can land: each one a claim could have read
// has moved, and every later write that makes one available decides from the new drain
// state. An error can leave the drain written and its pass unfinished: starting it again
// finishes it.
func (p *Pool) StartDrain(ctx context.Context, d Drain, by Actor) (Drain, error) {
	d.Since = p.now().Unix()
	item := key(drainPK, prefixDrainEntry+d.Prefix)
	item["prefix"] = av(d.Prefix)
	item["since"] = av(d.Since)
	for name, v := range map[string]string{"reason": d.Reason, "by": d.By} {
		if v != "" {
			item[name] = av(v)
		}
	}
	t := p.newTx("start drain", drainPK, expect{})
	t.put("", p.table, item, "")
	by.Reason = fmt.Sprintf("drain started for prefix %q: %s", d.Prefix, d.Reason)
	t.put("", p.table, p.drainHistoryItem(by), "")
	t.bumpGate(p.table)
	if err := p.run(ctx, t); err != nil {
		return Drain{}, err
	}
	return d, p.drainPass(ctx, d.Prefix)
}

// EndDrains ends the drain of prefix, or every drain when all is set, each in a
// transaction of its own with a history entry and the next version of the drain state. It
// returns the prefixes it ended; ending a drain that does not exist ends nothing, and a
// drain another call ended meanwhile is not among them. On an error the drains before it
// stay ended. Then it moves every drained sandbox that no drain in force covers back into
// its shard (restorePass), whether or not it ended a drain, so ending a drain again repairs
// a pass an error cut short.
func (p *Pool) EndDrains(ctx context.Context, prefix string, all bool, by Actor) ([]string, error) {
	drains, err := p.Drains(ctx)
	if err != nil {
		return nil, err
	}
	ended := []string{}
	for _, d := range drains {
		if !all && d.Prefix != prefix {
			continue
		}
		t := p.newTx("end drain", drainPK, expect{})
		var e expr
		t.add("", types.TransactWriteItem{Delete: &types.Delete{
			TableName:                aws.String(p.table),
			Key:                      key(drainPK, prefixDrainEntry+d.Prefix),
			ConditionExpression:      aws.String(e.use("attribute_exists(#PK)")),
			ExpressionAttributeNames: e.names,
		}})
		entry := by
		entry.Reason = fmt.Sprintf("drain ended for prefix %q", d.Prefix)
		t.put("", p.table, p.drainHistoryItem(entry), "")
		t.bumpGate(p.table)
		err := p.run(ctx, t)
		var ce *ConditionError
		switch {
		case errors.As(err, &ce): // ended meanwhile by another call
		case err != nil:
			return ended, err
		default:
			ended = append(ended, d.Prefix)
		}
	}
	return ended, p.restorePass(ctx)
}

// Drains lists the drains in force, strongly consistent: a read that starts after a
// drain was written sees it.
func (p *Pool) Drains(ctx context.Context) ([]Drain, error) {
	g, err := p.readGate(ctx)
	return g.drains, err
}

// DrainHistory lists the starts and ends of drains, newest first.
func (p *Pool) DrainHistory(ctx context.Context) ([]HistoryEntry, error) {
	return collect[HistoryEntry](p.itemsUnder(ctx, drainPK, prefixHistory, &dynamodb.QueryInput{ScanIndexForward: aws.Bool(false)}))
}

// drainHistoryItem is a history entry (no status change) in the drains' partition.
func (p *Pool) drainHistoryItem(by Actor) map[string]types.AttributeValue {
	item := p.historyItem("", p.entry("", "", by), p.now())
	item[AttrPK] = av(drainPK)
	return item
}

// drainPass moves every available sandbox whose name starts with prefix into its drained
// shard, including those drained already (their rev moves too, so an EndDrains that read
// one before this drain cannot put it back: restorePass). It finds them in AvailableIndex
// and in the log of the last indexLogTTL, reads each one (strongly consistent) and moves it
// on the version read; a write that lost to another is tried again on a fresh read.
func (p *Pool) drainPass(ctx context.Context, prefix string) error {
	ids, err := p.indexedSandboxes(ctx, prefix, true, true)
	if err != nil {
		return err
	}
	return p.eachAvailable(ctx, ids, func(cur Sandbox, shard int) (bool, error) {
		if !strings.HasPrefix(cur.Name, prefix) {
			return true, nil // renamed since it was listed
		}
		return false, p.moveShard(ctx, cur, DrainedShard(shardOf(cur.ID)))
	})
}

// restorePass moves every drained sandbox that no drain in force covers back into its
// shard. Each move is decided from a read of the drains made after the read of the
// sandbox, and conditioned on the sandbox's rev: a drain started after that read of the
// drains moves the sandbox itself (drainPass), which makes the move back lose and be
// decided again.
func (p *Pool) restorePass(ctx context.Context) error {
	ids, err := p.indexedSandboxes(ctx, "", false, true)
	if err != nil {
		return err
	}
	return p.eachAvailable(ctx, ids, func(cur Sandbox, shard int) (bool, error) {
		if shard < Shards {
			return true, nil
		}
		g, err := p.readGate(ctx)
		if err != nil || g.holds(cur.Name) {
			return true, err
		}
		return false, p.moveShard(ctx, cur, shardOf(cur.ID))
	})
}

// eachAvailable runs move, passWorkers at a time, on each sandbox of ids that is available,
// as a strongly consistent read finds it, with its AvailableIndex shard; move says done
// when it has nothing to write. A move that lost to another write is tried again on a
// fresh read, up to maxPassTries times.
func (p *Pool) eachAvailable(ctx context.Context, ids []string, move func(cur Sandbox, shard int) (done bool, err error)) error {
	work := make(chan string)
	errs := make(chan error, passWorkers)
	var wg sync.WaitGroup
	for range passWorkers {
		wg.Go(func() {
			var first error
			for id := range work {
				if first != nil {
					continue
				}
				first = p.untilMoved(ctx, id, move)
			}
			errs <- first
		})
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func (p *Pool) untilMoved(ctx context.Context, id string, move func(cur Sandbox, shard int) (bool, error)) error {
	for range maxPassTries {
		cur, shard, err := p.availableEntry(ctx, id)
		if err != nil || cur == nil {
			return err
		}
		done, err := move(*cur, shard)
		if done || err == nil {
			return err
		}
		if !LostRace(err) {
			return err
		}
	}
	return fmt.Errorf("pool: sandbox %s changed %d times during a drain pass: %w", id, maxPassTries, ErrContended)
}

// availableEntry reads sandbox id strongly consistent: nil when it is not available, and
// otherwise with its AvailableIndex shard.
func (p *Pool) availableEntry(ctx context.Context, id string) (*Sandbox, int, error) {
	out, err := p.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(p.table), Key: SandboxKey(id), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, 0, wrapAPIError("get", err)
	}
	var s Sandbox
	if err := attributevalue.UnmarshalMap(out.Item, &s); err != nil {
		return nil, 0, fmt.Errorf("pool: decode sandbox %s: %w", id, err)
	}
	if len(out.Item) == 0 || s.Status != Available {
		return nil, 0, nil
	}
	shard, ok := out.Item[AttrAvailShard]
	if !ok {
		return nil, 0, fmt.Errorf("pool: available sandbox %s has no AvailableIndex shard", id)
	}
	return &s, int(numberAttr(shard)), nil
}

// moveShard moves available sandbox cur, on the rev read, into AvailableIndex shard shard,
// and logs the move.
func (p *Pool) moveShard(ctx context.Context, cur Sandbox, shard int) error {
	t := p.newTx("move to shard "+strconv.Itoa(shard), cur.ID, expect{statuses: []Status{Available}, rev: cur.Rev})
	var e expr
	e.set(":shard", shard)
	e.set(":now", p.now().Unix())
	e.set(":one", 1)
	t.updateSandbox(p.table, &e, "SET #avail_shard = :shard, #updated_at = :now, #rev = #rev + :one")
	p.logIndexed(t, cur.ID, cur.Name, shard)
	return p.run(ctx, t)
}

// indexedSandboxes lists the IDs of the available sandboxes whose name starts with prefix
// in AvailableIndex's claimable shards (when claimable) and its drained ones (when
// drained), and in the log of the writes that put one there within indexLogTTL, which
// lists what the index may not show yet.
func (p *Pool) indexedSandboxes(ctx context.Context, prefix string, claimable, drained bool) ([]string, error) {
	seen := map[string]bool{}
	var ids []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	var shards []int
	var logs []string
	for k := range Shards {
		if claimable {
			shards = append(shards, k)
		}
		if drained {
			shards = append(shards, DrainedShard(k))
		}
	}
	if claimable {
		logs = append(logs, prefixJoinedLog)
	}
	if drained {
		logs = append(logs, prefixDrainedLog)
	}
	for _, shard := range shards {
		in, e := availableQuery(shard, prefix)
		in.ProjectionExpression = aws.String(e.use("#sandbox_id"))
		for item, err := range p.query(ctx, in, e) {
			if err != nil {
				return nil, err
			}
			add(stringAttr(item["sandbox_id"]))
		}
	}
	for _, log := range logs {
		for item, err := range p.itemsUnder(ctx, drainPK, log+prefix, &dynamodb.QueryInput{ConsistentRead: aws.Bool(true)}) {
			if err != nil {
				return nil, err
			}
			add(stringAttr(item["sandbox_id"]))
		}
	}
	return ids, nil
}
