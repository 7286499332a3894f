package pool

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Extend moves an allocation's expires_at to expiresAt, and status_at with it (status_at
// follows expires_at while allocated, which is what the expiry job queries). It is
// conditioned on the sandbox still being allocated to the holder at the version that
// was read, so two extensions cannot both add to the same expires_at, and on the
// allocation not having lapsed: its expires_at must lie after cutoff (now minus the
// grace), the cutoff at or before which the expiry job takes it back. So an extension
// racing the expiry job has exactly one outcome: the expiry's condition (status_at at or
// before its cutoff) fails once the extension committed, and the extension's (allocated,
// not lapsed) fails once the expiry did or the allocation lapsed. The owner record's
// expires_at moves in the same transaction, so a replayed allocate shows the new value;
// the history records the extension.
func (p *Pool) Extend(ctx context.Context, cur Sandbox, h Holder, expiresAt, cutoff int64, by Actor) (Sandbox, error) {
	now := p.now().Unix()
	t := p.newTx("extend", cur.ID, expect{statuses: []Status{Allocated}, owner: &h, rev: cur.Rev, notDueBy: cutoff})
	var e expr
	e.set(":expires_at", expiresAt)
	e.set(":now", now)
	e.set(":one", 1)
	t.updateSandbox(p.table, &e, "SET #expires_at = :expires_at, #status_at = :expires_at, #updated_at = :now, #rev = #rev + :one")

	var oe expr
	oe.set(":expires_at", expiresAt)
	oe.set(":sandbox", cur.ID)
	t.add(ItemOwner, types.TransactWriteItem{Update: &types.Update{
		TableName:                           aws.String(p.table),
		Key:                                 ownerKeyOf(cur),
		UpdateExpression:                    aws.String(oe.use("SET #expires_at = :expires_at")),
		ConditionExpression:                 aws.String(oe.use("#sandbox_id = :sandbox")),
		ExpressionAttributeNames:            oe.names,
		ExpressionAttributeValues:           oe.values,
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	}})
	if err := p.commit(ctx, t, Allocated, Allocated, by); err != nil {
		return Sandbox{}, err
	}
	next := cur
	next.ExpiresAt, next.StatusAt, next.UpdatedAt, next.Rev = expiresAt, expiresAt, now, cur.Rev+1
	return next, nil
}
