package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// The upstream strategy, kept here only as the benchmark's baseline (docs/upstream.md, upstream's allocate):
// an idempotency lookup, one read of the status index (Limit 15, or 1000 filtered
// client-side when a prefix is given), a shuffle, then a conditional update per candidate
// with jittered exponential backoff between tries, and 409 when all K are lost.
const (
	upstreamK           = 15
	upstreamPrefixLimit = 1000
	upstreamBackoffBase = 100 * time.Millisecond
	upstreamBackoffMax  = 5 * time.Second
)

var errUpstream409 = errors.New("upstream: 409 no sandboxes available")

func upstreamAllocate(ctx context.Context, e *env, student, prefix string) error {
	// Upstream queries its IdempotencyIndex first; a GetItem on the owner key is the same
	// one request here.
	if _, err := e.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(e.table), Key: pool.OwnerKey(pool.Holder{Student: student}, 0)}); err != nil {
		return err
	}
	limit := int32(upstreamK)
	if prefix != "" {
		limit = upstreamPrefixLimit
	}
	// Upstream's status index has one partition per status. Reading the shards in order
	// keeps its one hot head (every student reads shard 0's oldest first) and adds a request
	// only for a shard that does not fill the limit.
	var items []pool.Sandbox
	for shard := 0; shard < pool.Shards && len(items) < int(limit); shard++ {
		out, err := e.db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String(e.table),
			IndexName:                 aws.String(pool.StatusIndex),
			KeyConditionExpression:    aws.String("#sk = :a"),
			ExpressionAttributeNames:  map[string]string{"#sk": pool.AttrStatusKey},
			ExpressionAttributeValues: map[string]types.AttributeValue{":a": &types.AttributeValueMemberS{Value: pool.StatusShardKey(pool.Available, shard)}},
			Limit:                     aws.Int32(limit - int32(len(items))),
		})
		if err != nil {
			return err
		}
		var page []pool.Sandbox
		if err := attributevalue.UnmarshalListOfMaps(out.Items, &page); err != nil {
			return err
		}
		items = append(items, page...)
	}
	var candidates []pool.Sandbox
	for _, s := range items {
		if strings.HasPrefix(s.Name, prefix) {
			candidates = append(candidates, s)
		}
	}
	rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	candidates = candidates[:min(len(candidates), upstreamK)]
	now := time.Now().Unix()
	for attempt, c := range candidates {
		_, err := e.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                aws.String(e.table),
			Key:                      pool.SandboxKey(c.ID),
			UpdateExpression:         aws.String("SET #s = :alloc, #sk = :alloc_key, #o = :o, #at = :now, #sa = :now REMOVE #sh, #an"),
			ConditionExpression:      aws.String("attribute_exists(#pk) AND #s = :a"),
			ExpressionAttributeNames: map[string]string{"#pk": pool.AttrPK, "#s": pool.AttrStatus, "#sk": pool.AttrStatusKey, "#o": pool.AttrOwner, "#at": pool.AttrAllocatedAt, "#sa": pool.AttrStatusAt, "#sh": pool.AttrAvailShard, "#an": pool.AttrAvailName},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":a": &types.AttributeValueMemberS{Value: string(pool.Available)}, ":alloc": &types.AttributeValueMemberS{Value: string(pool.Allocated)},
				":o": &types.AttributeValueMemberS{Value: student}, ":now": &types.AttributeValueMemberN{Value: itoa(now)},
				":alloc_key": &types.AttributeValueMemberS{Value: pool.StatusKey(pool.Allocated, c.ID)},
			},
		})
		var failed *types.ConditionalCheckFailedException
		switch {
		case err == nil:
			return nil
		case !errors.As(err, &failed):
			return err
		}
		if attempt < len(candidates)-1 {
			ceiling := min(upstreamBackoffBase<<attempt, upstreamBackoffMax)
			time.Sleep(rand.N(ceiling))
		}
	}
	return errUpstream409
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
