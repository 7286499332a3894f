package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// A UUID item (PK UUID#<uuid>, SK UUID) says which sandbox record holds a CSP account, so
// one account has one record, live or tombstoned (docs/architecture.md §5 (8)). It is put
// in the transaction that creates the record, conditioned on not existing; it is kept in
// the transaction that makes the tombstone, with a TTL later than the tombstone's when
// that may expire and none when it may not (uuidTTL), and goes in the transaction that
// removes a never-allocated stale record, which may then be adopted again.
type uuidItem struct {
	UUID      string `dynamodbav:"account_uuid"`
	SandboxID string `dynamodbav:"sandbox_id"`
	TTL       int64  `dynamodbav:"ttl,omitempty"`
}

func uuidKey(uuid string) map[string]types.AttributeValue { return key(prefixUUID+uuid, skUUID) }

// uuidOutlives is how much later than its tombstone a UUID item expires. DynamoDB deletes
// expired items in the background, typically within two days and in no set order: with
// the same TTL the UUID item could go first, and until the record went too a listing of
// the account under another sandbox ID could make a second record of it. Two weeks put
// the UUID item last.
const uuidOutlives = 14 * 24 * time.Hour

// uuidTTL is the TTL of the UUID item of a tombstone whose TTL is recordTTL (0: never).
func uuidTTL(recordTTL int64) int64 {
	if recordTTL == 0 {
		return 0
	}
	return recordTTL + int64(uuidOutlives/time.Second)
}

// claimUUID adds the put of the UUID item for a new record: it fails, as ItemUUID, when any
// record (live or tombstoned) already holds the account.
func (t *tx) claimUUID(table, uuid string) {
	item := uuidKey(uuid)
	item["account_uuid"] = av(uuid)
	item["sandbox_id"] = av(t.sandboxID)
	t.put(ItemUUID, table, item, "attribute_not_exists(#PK)")
}

// keepUUID adds the update that gives the UUID item of a tombstone its TTL, or removes
// any for ttl 0. It also writes the item when it is missing (a record from before UUID
// items), but never takes one held by another record.
func (t *tx) keepUUID(table, uuid string, ttl int64) {
	var e expr
	e.set(":sandbox", t.sandboxID)
	e.set(":uuid", uuid)
	update := "SET #account_uuid = :uuid, #sandbox_id = :sandbox REMOVE #ttl"
	if ttl != 0 {
		e.set(":ttl", ttl)
		update = "SET #account_uuid = :uuid, #sandbox_id = :sandbox, #ttl = :ttl"
	}
	t.add(ItemUUID, types.TransactWriteItem{Update: &types.Update{
		TableName:                           aws.String(table),
		Key:                                 uuidKey(uuid),
		UpdateExpression:                    aws.String(e.use(update)),
		ConditionExpression:                 aws.String(e.use("attribute_not_exists(#PK) OR #sandbox_id = :sandbox")),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
}

// dropUUID adds the delete of the record's UUID item; one held by another record stays.
func (t *tx) dropUUID(table, uuid string) {
	var e expr
	e.set(":sandbox", t.sandboxID)
	t.add(ItemUUID, types.TransactWriteItem{Delete: &types.Delete{
		TableName:                           aws.String(table),
		Key:                                 uuidKey(uuid),
		ConditionExpression:                 aws.String(e.use("attribute_not_exists(#PK) OR #sandbox_id = :sandbox")),
		ExpressionAttributeNames:            e.names,
		ExpressionAttributeValues:           e.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
}

// uuidOf is the account uuid of a stored record: the one it claimed, or for a record from
// before UUID items the one its external ID names.
func uuidOf(s Sandbox) string {
	if s.AccountUUID != "" {
		return s.AccountUUID
	}
	return AccountUUID(s.ExternalID)
}

// AdoptUUID is the migration of a record created before UUID items existed: it puts the
// record's UUID item and stamps account_uuid on the record, in one transaction conditioned
// on the record having no account_uuid yet and the uuid being free. Sync calls it for every
// such record it reads, so the table converges within one sync; it is not a transition and
// bumps no version, so it never makes a concurrent claim or refresh lose. A uuid already
// held by another record fails as ItemUUID: two records for one account, which sync reports.
func (p *Pool) AdoptUUID(ctx context.Context, cur Sandbox) (Sandbox, error) {
	uuid := AccountUUID(cur.ExternalID)
	if uuid == "" {
		return Sandbox{}, fmt.Errorf("pool: adopt uuid %s: external ID %q names no account uuid", cur.ID, cur.ExternalID)
	}
	t := p.newTx("adopt uuid", cur.ID, expect{withoutUUID: true})
	var e expr
	e.set(":uuid", uuid)
	t.updateSandbox(p.table, &e, "SET #account_uuid = :uuid")
	t.claimUUID(p.table, uuid)
	if err := p.run(ctx, t); err != nil {
		return Sandbox{}, err
	}
	next := cur
	next.AccountUUID = uuid
	return next, nil
}
