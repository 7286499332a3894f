package pool

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// HistoryEntry is one recorded transition of a sandbox. It lives beside the sandbox item
// (same partition key) and outlives it by the history TTL. The allocation's entry is the
// exception while the sandbox is held: it rides on the sandbox item (Sandbox.Allocation),
// so the claim is a 2-item transaction, and the transaction that ends the allocation
// writes it here with its original time.
type HistoryEntry struct {
	At        int64  `dynamodbav:"at_ms"`
	From      Status `dynamodbav:"from_status,omitempty"`
	To        Status `dynamodbav:"to_status,omitempty"`
	Reason    string `dynamodbav:"reason,omitempty"`
	ActorKind string `dynamodbav:"actor_kind,omitempty"`
	Actor     string `dynamodbav:"actor,omitempty"`
	RequestID string `dynamodbav:"request_id,omitempty"`
}

// entry is the transition from → to happening now ("" for a sandbox that did not exist or
// is gone).
func (p *Pool) entry(from, to Status, by Actor) HistoryEntry {
	return HistoryEntry{At: p.now().UnixMilli(), From: from, To: to,
		Reason: by.Reason, ActorKind: by.Kind, Actor: by.Name, RequestID: by.RequestID}
}

// historyItem stores h under a sort key ordered by at, nanoseconds first: at is the time
// of the transition (now, or the claim's time for an allocation moved off the record),
// which keeps the history in order either way. The TTL counts from the write.
func (p *Pool) historyItem(sandboxID string, h HistoryEntry, at time.Time) map[string]types.AttributeValue {
	item, err := attributevalue.MarshalMap(h)
	if err != nil { // strings and numbers only
		panic(fmt.Sprintf("pool: marshal history entry: %v", err))
	}
	for k, v := range key(sandboxPK(sandboxID), fmt.Sprintf("%s%020d#%s", prefixHistory, at.UnixNano(), requestToken()[:8])) {
		item[k] = v
	}
	item[AttrTTL] = av(p.now().Add(p.historyTTL).Unix())
	return item
}

// History lists a sandbox's recorded transitions, newest first: the history items and,
// while the sandbox is allocated, the allocation's entry from the record (HistoryEntry).
// The sandbox item shares the history's partition, so one query reads both.
func (p *Pool) History(ctx context.Context, id string) ([]HistoryEntry, error) {
	var e expr
	e.set(":pk", sandboxPK(id))
	var out []HistoryEntry
	var held *HistoryEntry
	for item, err := range p.query(ctx, &dynamodb.QueryInput{
		KeyConditionExpression: aws.String(e.use("#PK = :pk")),
		ConsistentRead:         aws.Bool(true),
		ScanIndexForward:       aws.Bool(false),
	}, &e) {
		if err != nil {
			return nil, err
		}
		var k struct{ SK string }
		if err := attributevalue.UnmarshalMap(item, &k); err != nil {
			return nil, fmt.Errorf("pool: history: %w", err)
		}
		switch {
		case k.SK == skMeta:
			var s Sandbox
			if err := attributevalue.UnmarshalMap(item, &s); err != nil {
				return nil, fmt.Errorf("pool: history: %w", err)
			}
			held = s.Allocation
		case strings.HasPrefix(k.SK, prefixHistory):
			var h HistoryEntry
			if err := attributevalue.UnmarshalMap(item, &h); err != nil {
				return nil, fmt.Errorf("pool: history: %w", err)
			}
			out = append(out, h)
		}
	}
	if held != nil {
		at := sort.Search(len(out), func(i int) bool { return out[i].At <= held.At })
		out = slices.Insert(out, at, *held)
	}
	return out, nil
}
