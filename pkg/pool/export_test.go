package pool

import (
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// StoredItem is s as the transitions store it, for tests that load thousands of sandboxes
// with BatchWriteItem instead of one transaction each. It covers the statuses that need no
// owner record.
func StoredItem(s Sandbox) map[string]types.AttributeValue {
	item, err := attributevalue.MarshalMap(s)
	if err != nil {
		panic(err)
	}
	for k, v := range key(sandboxPK(s.ID), skMeta) {
		item[k] = v
	}
	if s.Status == Available {
		item[AttrAvailShard] = av(shardOf(s.ID))
		item[AttrAvailName] = av(s.Name)
	}
	return item
}
