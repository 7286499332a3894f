package pool

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Get reads one sandbox record, strongly consistent: it reflects every write that
// committed before the call. A sandbox that does not exist fails with ErrNotFound.
func (p *Pool) Get(ctx context.Context, id string) (Sandbox, error) {
	var s Sandbox
	found, err := p.getItem(ctx, sandboxPK(id), skMeta, &s)
	if err != nil {
		return Sandbox{}, err
	}
	if !found {
		return Sandbox{}, fmt.Errorf("pool: sandbox %s: %w", id, ErrNotFound)
	}
	return s, nil
}

// Candidates reads one page of at most limit available sandboxes from AvailableIndex
// shard shard (0 to Shards−1), those whose name starts with prefix (all when prefix is
// empty), in name order, each with only ClaimAttributes. The index is eventually
// consistent: a candidate may have been claimed a moment ago, which the claim's condition
// on its status and rev finds out (Claim).
func (p *Pool) Candidates(ctx context.Context, shard int, prefix string, limit int) ([]Sandbox, error) {
	in, e := availableQuery(shard, prefix)
	p.prepare(in, e)
	in.Limit = aws.Int32(int32(limit))
	out, err := p.db.Query(ctx, in)
	if err != nil {
		return nil, wrapAPIError("candidates", err)
	}
	var page []Sandbox
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &page); err != nil {
		return nil, fmt.Errorf("pool: candidates: %w", err)
	}
	return page, nil
}

// ByStatus yields every sandbox of one status in status_at order, page after page to the
// end. With dueBy > 0 it yields only those whose status_at is at or before dueBy (due
// cleanup work, expired allocations, stale records past the grace). A tombstone is never
// due work: asking for due tombstones is refused. It reads every StatusIndex shard of the
// status, one page of each at a time, and merges them (mergeByStatusAt), so memory stays
// at Shards pages whatever the count. The index is eventually consistent: a record may
// show its status of a moment ago, so whoever acts on one conditions the write on it. The
// first error ends the sequence.
func (p *Pool) ByStatus(ctx context.Context, status Status, dueBy int64) iter.Seq2[Sandbox, error] {
	if dueBy > 0 && status.Tombstone() {
		return func(yield func(Sandbox, error) bool) {
			yield(Sandbox{}, fmt.Errorf("pool: %s records are tombstones, never due work", status))
		}
	}
	shards := make([]iter.Seq2[Sandbox, error], Shards)
	for shard := range Shards {
		in, e := statusQuery(status, shard, dueBy)
		shards[shard] = decode[Sandbox](p.query(ctx, in, e))
	}
	return mergeByStatusAt(shards)
}

// mergeByStatusAt yields the sandboxes of sequences that are each in status_at order in
// status_at order overall (ties: the earlier sequence first): a k-way merge that holds one
// head per sequence. The first error ends it.
func mergeByStatusAt(seqs []iter.Seq2[Sandbox, error]) iter.Seq2[Sandbox, error] {
	return func(yield func(Sandbox, error) bool) {
		type head struct {
			s    Sandbox
			next func() (Sandbox, error, bool)
		}
		heads := make([]head, 0, len(seqs))
		for _, seq := range seqs {
			next, stop := iter.Pull2(seq)
			defer stop()
			s, err, ok := next()
			if err != nil {
				yield(Sandbox{}, err)
				return
			}
			if ok {
				heads = append(heads, head{s, next})
			}
		}
		for len(heads) > 0 {
			first := 0
			for i, h := range heads {
				if h.s.StatusAt < heads[first].s.StatusAt {
					first = i
				}
			}
			if !yield(heads[first].s, nil) {
				return
			}
			s, err, ok := heads[first].next()
			switch {
			case err != nil:
				yield(Sandbox{}, err)
				return
			case ok:
				heads[first].s = s
			default:
				heads = slices.Delete(heads, first, first+1)
			}
		}
	}
}

// Count counts the sandboxes of one status over every shard, each to its last page, as
// the eventually consistent StatusIndex has them.
func (p *Pool) Count(ctx context.Context, status Status) (int, error) {
	total := 0
	for shard := range Shards {
		in, e := statusQuery(status, shard, 0)
		n, err := p.count(ctx, in, e)
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}

func availableQuery(shard int, prefix string) (*dynamodb.QueryInput, *expr) {
	e := &expr{}
	e.set(":shard", shard)
	cond := "#avail_shard = :shard"
	if prefix != "" {
		e.set(":prefix", prefix)
		cond += " AND begins_with(#avail_name, :prefix)"
	}
	return &dynamodb.QueryInput{IndexName: aws.String(AvailableIndex), KeyConditionExpression: aws.String(e.use(cond))}, e
}

// statusQuery reads one StatusIndex shard of a status.
func statusQuery(status Status, shard int, dueBy int64) (*dynamodb.QueryInput, *expr) {
	e := &expr{}
	e.set(":status_key", StatusShardKey(status, shard))
	cond := "#status_key = :status_key"
	if dueBy > 0 {
		e.set(":due", dueBy)
		cond += " AND #status_at <= :due"
	}
	return &dynamodb.QueryInput{IndexName: aws.String(StatusIndex), KeyConditionExpression: aws.String(e.use(cond))}, e
}

func (p *Pool) count(ctx context.Context, in *dynamodb.QueryInput, e *expr) (int, error) {
	in.Select = types.SelectCount
	p.prepare(in, e)
	total := 0
	pages := dynamodb.NewQueryPaginator(p.db, in)
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return 0, wrapAPIError("count", err)
		}
		total += int(out.Count)
	}
	return total, nil
}

// query yields the raw items of every page of a query.
func (p *Pool) query(ctx context.Context, in *dynamodb.QueryInput, e *expr) iter.Seq2[map[string]types.AttributeValue, error] {
	p.prepare(in, e)
	return func(yield func(map[string]types.AttributeValue, error) bool) {
		pages := dynamodb.NewQueryPaginator(p.db, in)
		for pages.HasMorePages() {
			out, err := pages.NextPage(ctx)
			if err != nil {
				yield(nil, wrapAPIError("query", err))
				return
			}
			for _, item := range out.Items {
				if !yield(item, nil) {
					return
				}
			}
		}
	}
}

func (p *Pool) prepare(in *dynamodb.QueryInput, e *expr) {
	in.TableName = aws.String(p.table)
	in.ExpressionAttributeNames, in.ExpressionAttributeValues = e.names, e.values
	if p.pageSize > 0 {
		in.Limit = aws.Int32(p.pageSize)
	}
}

func decode[T any](items iter.Seq2[map[string]types.AttributeValue, error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		for item, err := range items {
			var v T
			if err == nil {
				err = attributevalue.UnmarshalMap(item, &v)
			}
			if !yield(v, err) || err != nil {
				return
			}
		}
	}
}

// itemsUnder reads the items of partition pk whose sort key starts with skPrefix (all of
// them for ""), with
// the read options of in (consistency, order, limit).
func (p *Pool) itemsUnder(ctx context.Context, pk, skPrefix string, in *dynamodb.QueryInput) iter.Seq2[map[string]types.AttributeValue, error] {
	var e expr
	e.set(":pk", pk)
	cond := "#PK = :pk"
	if skPrefix != "" { // DynamoDB refuses an empty key value, even in begins_with
		e.set(":sk", skPrefix)
		cond += " AND begins_with(#SK, :sk)"
	}
	in.KeyConditionExpression = aws.String(e.use(cond))
	return p.query(ctx, in, &e)
}

func collect[T any](items iter.Seq2[map[string]types.AttributeValue, error]) ([]T, error) {
	var out []T
	for v, err := range decode[T](items) {
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (p *Pool) getItem(ctx context.Context, pk, sk string, into any) (bool, error) {
	out, err := p.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(p.table), Key: key(pk, sk), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return false, wrapAPIError("get", err)
	}
	if len(out.Item) == 0 {
		return false, nil
	}
	if err := attributevalue.UnmarshalMap(out.Item, into); err != nil {
		return false, fmt.Errorf("pool: decode %s/%s: %w", pk, sk, err)
	}
	return true, nil
}
