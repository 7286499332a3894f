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
	out, err := e.db.Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(e.table),
		IndexName:                 aws.String(pool.StatusIndex),
		KeyConditionExpression:    aws.String("#s = :a"),
		ExpressionAttributeNames:  map[string]string{"#s": pool.AttrStatus},
		ExpressionAttributeValues: map[string]types.AttributeValue{":a": &types.AttributeValueMemberS{Value: string(pool.Available)}},
		Limit:                     aws.Int32(limit),
	})
	if err != nil {
		return err
	}
	var items []pool.Sandbox
	if err := attributevalue.UnmarshalListOfMaps(out.Items, &items); err != nil {
		return err
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
			UpdateExpression:         aws.String("SET #s = :alloc, #o = :o, #at = :now, #sa = :now REMOVE #sh, #an"),
			ConditionExpression:      aws.String("attribute_exists(#pk) AND #s = :a"),
			ExpressionAttributeNames: map[string]string{"#pk": pool.AttrPK, "#s": pool.AttrStatus, "#o": pool.AttrOwner, "#at": pool.AttrAllocatedAt, "#sa": pool.AttrStatusAt, "#sh": pool.AttrAvailShard, "#an": pool.AttrAvailName},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":a": &types.AttributeValueMemberS{Value: string(pool.Available)}, ":alloc": &types.AttributeValueMemberS{Value: string(pool.Allocated)},
				":o": &types.AttributeValueMemberS{Value: student}, ":now": &types.AttributeValueMemberN{Value: itoa(now)},
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
