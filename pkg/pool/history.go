package pool

import (
	"fmt"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// HistoryEntry is one recorded transition of a sandbox. It lives beside the sandbox item
// (same partition key) and outlives it by the history TTL.
type HistoryEntry struct {
	At        int64  `dynamodbav:"at_ms"`
	From      Status `dynamodbav:"from_status,omitempty"`
	To        Status `dynamodbav:"to_status,omitempty"`
	Reason    string `dynamodbav:"reason,omitempty"`
	ActorKind string `dynamodbav:"actor_kind,omitempty"`
	Actor     string `dynamodbav:"actor,omitempty"`
	RequestID string `dynamodbav:"request_id,omitempty"`
}

// historyItem builds the entry for from → to ("" for a sandbox that did not exist or is gone).
func (p *Pool) historyItem(sandboxID string, from, to Status, by Actor) map[string]types.AttributeValue {
	now := p.now()
	item := key(sandboxPK(sandboxID), fmt.Sprintf("%s%020d#%s", prefixHistory, now.UnixNano(), requestToken()[:8]))
	item["at_ms"] = av(now.UnixMilli())
	item[AttrTTL] = av(now.Add(p.historyTTL).Unix())
	for name, v := range map[string]string{
		"from_status": string(from), "to_status": string(to), "reason": by.Reason,
		"actor_kind": by.Kind, "actor": by.Name, "request_id": by.RequestID,
	} {
		if v != "" {
			item[name] = av(v)
		}
	}
	return item
}
