package main

import (
	"context"
	"math"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// capacity prices every DynamoDB call of a run in capacity units, from the request kind
// and the item sizes, by DynamoDB's published rules (DynamoDB Local reports none):
//   - a read: ceil(bytes read / 4 KB) units, half for an eventually consistent read; a
//     query's bytes are those of every item it returned (no filters are used);
//   - a standard write (upstream's UpdateItem): 1 unit per 1 KB, charged when its condition
//     fails too; a transactional write: 2 units per 1 KB of each item (the larger of before and
//     after for an update), charged also when the transaction is cancelled;
//   - index writes: each index entry a write adds or removes costs 1 unit per 1 KB of the
//     projected entry, 2 when its key changes (delete + put). A successful claim removes
//     the AvailableIndex entry and moves the StatusIndex entry: indexWritesPerClaim.
//
// An update's item size is the size last seen of that item (its put in the seed) plus
// the values the update sets: an upper bound.
type capacity struct {
	mu    sync.Mutex
	sizes map[string]int // item key → bytes
	rcu   float64
	wcu   float64
	// pageReads counts the queries of AvailableIndex (candidate pages) and lostClaims the
	// claim transactions DynamoDB cancelled, for the per-row breakdown.
	pageReads, lostClaims int
}

// indexWritesPerClaim: the AvailableIndex entry deleted (1) and the StatusIndex entry
// re-keyed from available to allocated (2), each projected entry under 1 KB.
const indexWritesPerClaim = 3

func newCapacity() *capacity { return &capacity{sizes: map[string]int{}} }

func (c *capacity) totals() (rcu, wcu float64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rcu, c.wcu
}

func (c *capacity) breakdown() (pageReads, lostClaims int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pageReads, c.lostClaims
}

func (c *capacity) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("capacity", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		c.price(in.Parameters, out.Result, err)
		return out, md, err
	}), middleware.After)
}

func (c *capacity) price(params, result any, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch p := params.(type) {
	case *dynamodb.QueryInput:
		if aws.ToString(p.IndexName) == pool.AvailableIndex {
			c.pageReads++
		}
		if r, ok := result.(*dynamodb.QueryOutput); ok {
			bytes := 0
			for _, item := range r.Items {
				bytes += itemSize(item)
			}
			c.rcu += readUnits(bytes, aws.ToBool(p.ConsistentRead))
		}
	case *dynamodb.GetItemInput:
		if r, ok := result.(*dynamodb.GetItemOutput); ok {
			c.rcu += readUnits(itemSize(r.Item), aws.ToBool(p.ConsistentRead))
		}
	case *dynamodb.UpdateItemInput: // upstream's strategy: a standard write, charged when refused too
		size := c.sizes[keyOf(p.Key)] + valuesSize(p.ExpressionAttributeValues)
		c.wcu += math.Max(1, math.Ceil(float64(size)/1024))
		if err == nil {
			c.wcu += indexWritesPerClaim - 1 // upstream's items have no AvailableIndex entry to drop
		}
	case *dynamodb.TransactWriteItemsInput:
		for _, w := range p.TransactItems {
			size := 0
			switch {
			case w.Put != nil:
				size = itemSize(w.Put.Item)
				c.sizes[keyOf(w.Put.Item)] = size
			case w.Update != nil:
				size = c.sizes[keyOf(w.Update.Key)] + valuesSize(w.Update.ExpressionAttributeValues)
			case w.Delete != nil:
				size = c.sizes[keyOf(w.Delete.Key)]
			case w.ConditionCheck != nil:
				size = c.sizes[keyOf(w.ConditionCheck.Key)]
			}
			c.wcu += 2 * math.Max(1, math.Ceil(float64(size)/1024))
		}
		switch {
		case isClaim(p) && err == nil:
			c.wcu += indexWritesPerClaim
		case isClaim(p):
			c.lostClaims++
		}
	}
}

// isClaim: a transaction that sets a sandbox to allocated (":status" is the placeholder of
// every status write in pkg/pool).
func isClaim(p *dynamodb.TransactWriteItemsInput) bool {
	for _, w := range p.TransactItems {
		if w.Update != nil {
			if v, ok := w.Update.ExpressionAttributeValues[":status"].(*types.AttributeValueMemberS); ok && v.Value == string(pool.Allocated) {
				return true
			}
		}
	}
	return false
}

func readUnits(bytes int, consistent bool) float64 {
	units := math.Max(1, math.Ceil(float64(bytes)/4096))
	if !consistent {
		units /= 2
	}
	return units
}

func keyOf(item map[string]types.AttributeValue) string {
	pk, _ := item["PK"].(*types.AttributeValueMemberS)
	sk, _ := item["SK"].(*types.AttributeValueMemberS)
	if pk == nil || sk == nil {
		return ""
	}
	return pk.Value + "|" + sk.Value
}

func valuesSize(values map[string]types.AttributeValue) int {
	n := 0
	for name, v := range values {
		n += len(strings.TrimPrefix(name, ":")) + valueSize(v)
	}
	return n
}

// itemSize is DynamoDB's item size: attribute names plus values.
func itemSize(item map[string]types.AttributeValue) int {
	n := 0
	for name, v := range item {
		n += len(name) + valueSize(v)
	}
	return n
}

func valueSize(v types.AttributeValue) int {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return len(x.Value)
	case *types.AttributeValueMemberN:
		return (len(strings.TrimLeft(x.Value, "-0"))+1)/2 + 1
	case *types.AttributeValueMemberB:
		return len(x.Value)
	case *types.AttributeValueMemberBOOL, *types.AttributeValueMemberNULL:
		return 1
	case *types.AttributeValueMemberM:
		n := 3
		for name, e := range x.Value {
			n += len(name) + valueSize(e) + 1
		}
		return n
	case *types.AttributeValueMemberL:
		n := 3
		for _, e := range x.Value {
			n += valueSize(e) + 1
		}
		return n
	}
	return 0
}
