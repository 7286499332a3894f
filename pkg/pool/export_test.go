package pool

import (
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// StoredItems are the items the transitions store for s (the record and, unless s has no
// AccountUUID, its UUID item), for tests that load thousands of sandboxes with
// BatchWriteItem instead of one transaction each, or that write a record as it was
// before UUID items existed. It covers the statuses that need no owner record.
func StoredItems(s Sandbox) []map[string]types.AttributeValue {
	item, err := recordItem(s)
	if err != nil {
		panic(err)
	}
	if s.AccountUUID == "" {
		return []map[string]types.AttributeValue{item}
	}
	u, err := attributevalue.MarshalMap(uuidItem{UUID: s.AccountUUID, SandboxID: s.ID, TTL: s.TTL})
	if err != nil {
		panic(err)
	}
	for k, v := range uuidKey(s.AccountUUID) {
		u[k] = v
	}
	return []map[string]types.AttributeValue{item, u}
}

// LimitsFor is the split of cap over the shards as they are (SplitCap).
func (cs CapCounters) LimitsFor(cap int) [CounterShards]int { return cs.limits(cap) }
