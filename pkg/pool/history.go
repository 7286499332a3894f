package pool

import (
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
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
