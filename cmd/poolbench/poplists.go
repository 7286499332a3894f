package main

// PROTOTYPE, measured once and removed (docs/benchmark.md, "Candidates"): per-shard pop
// lists. Each available sandbox's claim attributes sit as one element of a list item
// (POPLIST#<shard> / <j>); an allocation pops the first element of a random list (one
// conditional UpdateItem) and claims it, with no candidate read and no collision.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/pool"
)

const popListPK = "POPLIST#"

type popElem struct {
	ID         string `dynamodbav:"sandbox_id"`
	Rev        int64  `dynamodbav:"rev"`
	Name       string `dynamodbav:"name"`
	ExternalID string `dynamodbav:"external_id"`
}

// buildPopLists reads every available sandbox of every shard and writes lists of at most
// per elements (per 0: one list per shard); it returns the lists' keys.
func buildPopLists(ctx context.Context, db *dynamodb.Client, table string, per int) ([]map[string]types.AttributeValue, error) {
	var keys []map[string]types.AttributeValue
	for shard := range pool.Shards {
		var elems []popElem
		var start map[string]types.AttributeValue
		for {
			out, err := db.Query(ctx, &dynamodb.QueryInput{
				TableName: aws.String(table), IndexName: aws.String(pool.AvailableIndex),
				KeyConditionExpression:    aws.String("#s = :s"),
				ExpressionAttributeNames:  map[string]string{"#s": pool.AttrAvailShard},
				ExpressionAttributeValues: map[string]types.AttributeValue{":s": &types.AttributeValueMemberN{Value: strconv.Itoa(shard)}},
				ExclusiveStartKey:         start,
			})
			if err != nil {
				return nil, err
			}
			var page []popElem
			if err := attributevalue.UnmarshalListOfMaps(out.Items, &page); err != nil {
				return nil, err
			}
			elems = append(elems, page...)
			if start = out.LastEvaluatedKey; start == nil {
				break
			}
		}
		rand.Shuffle(len(elems), func(i, j int) { elems[i], elems[j] = elems[j], elems[i] })
		size := per
		if size == 0 {
			size = len(elems)
		}
		for j := 0; j*size < len(elems); j++ {
			list, err := attributevalue.Marshal(elems[j*size : min((j+1)*size, len(elems))])
			if err != nil {
				return nil, err
			}
			k := map[string]types.AttributeValue{
				pool.AttrPK: &types.AttributeValueMemberS{Value: popListPK + strconv.Itoa(shard)},
				pool.AttrSK: &types.AttributeValueMemberS{Value: strconv.Itoa(j)},
			}
			item := map[string]types.AttributeValue{"elems": list}
			for n, v := range k {
				item[n] = v
			}
			if _, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
	}
	return keys, nil
}

func popListsAllocate(ctx context.Context, e *env, student, _ string) error {
	if _, err := e.pool.LabSettings(ctx); err != nil {
		return err
	}
	open := append([]map[string]types.AttributeValue(nil), e.lists...)
	for len(open) > 0 {
		i := rand.IntN(len(open))
		out, err := e.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: aws.String(e.table), Key: open[i],
			UpdateExpression:                    aws.String("REMOVE elems[0]"),
			ConditionExpression:                 aws.String("size(elems) > :zero"),
			ExpressionAttributeValues:           map[string]types.AttributeValue{":zero": &types.AttributeValueMemberN{Value: "0"}},
			ReturnValues:                        types.ReturnValueAllOld,
			ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
		})
		var failed *types.ConditionalCheckFailedException
		switch {
		case errors.As(err, &failed):
			open = append(open[:i], open[i+1:]...)
			continue
		case err != nil:
			return err
		}
		var old struct {
			Elems []popElem `dynamodbav:"elems"`
		}
		if err := attributevalue.UnmarshalMap(out.Attributes, &old); err != nil || len(old.Elems) == 0 {
			return fmt.Errorf("pop: %v", err)
		}
		c := old.Elems[0]
		now := time.Now()
		_, err = e.pool.Claim(ctx, pool.Sandbox{ID: c.ID, Rev: c.Rev, Name: c.Name, ExternalID: c.ExternalID},
			pool.Claim{Student: student, IdempotencyKey: student, AllocatedAt: now.Unix(), ExpiresAt: now.Add(instanceCfg.LabDuration).Unix()},
			pool.Actor{Kind: "student", Name: student, Reason: "allocate"})
		if err == nil || !pool.LostRace(err) {
			return err
		}
	}
	return broker.ErrNoSandbox
}
