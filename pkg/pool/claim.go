package pool

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
)

// Claim is what an allocation asks of one candidate sandbox.
type Claim struct {
	Student        string
	IdempotencyKey string
	TrackName      string
	Client         string
	AllocatedAt    int64
	ExpiresAt      int64
}

// Claim allocates candidate to the student: available → allocated, conditioned on the
// version that was read, together with the owner record for (student, idempotency key),
// conditioned on not existing yet, in one transaction of these two items. The history
// entry of the allocation rides on the sandbox item until the allocation ends
// (HistoryEntry). A *ConditionError with Item
// ItemOwner carries the existing owner record: the caller replays it. One with Item
// ItemSandbox means someone else got this candidate.
func (p *Pool) Claim(ctx context.Context, candidate Sandbox, c Claim, by Actor) (Owner, error) {
	t := p.newTx("claim", candidate.ID, expect{statuses: []Status{Available}, rev: candidate.Rev})
	var e expr
	e.set(":owner", c.Student)
	e.set(":key", c.IdempotencyKey)
	e.set(":allocated_at", c.AllocatedAt)
	e.set(":expires_at", c.ExpiresAt)
	e.set(":now", p.now().Unix())
	e.set(":one", 1)
	event, err := attributevalue.Marshal(p.entry(Available, Allocated, by))
	if err != nil {
		return Owner{}, err
	}
	e.set(":allocation", event)
	update := "SET " + e.setStatus(candidate.ID, Allocated, c.ExpiresAt) + ", #allocated_to_track = :owner, " +
		"#idempotency_key = :key, #allocated_at = :allocated_at, #expires_at = :expires_at, " +
		"#allocation = :allocation, #updated_at = :now, #rev = #rev + :one"
	for attr, v := range map[string]string{"track_name": c.TrackName, "client": c.Client} {
		if v != "" {
			e.set(":"+attr, v)
			update += ", #" + attr + " = :" + attr
		}
	}
	t.updateSandbox(p.table, &e, update+" REMOVE #avail_shard, #avail_name, #missed_syncs")

	owner := Owner{
		Student: c.Student, IdempotencyKey: c.IdempotencyKey,
		SandboxID: candidate.ID, Name: candidate.Name, ExternalID: candidate.ExternalID,
		SFDCAccountID: candidate.SFDCAccountID, TrackName: c.TrackName, Client: c.Client,
		AllocatedAt: c.AllocatedAt, ExpiresAt: c.ExpiresAt,
	}
	item, err := attributevalue.MarshalMap(owner)
	if err != nil {
		return Owner{}, err
	}
	for k, v := range key(ownerPK(c.Student), ownerSK(c.IdempotencyKey)) {
		item[k] = v
	}
	t.put(ItemOwner, p.table, item, "attribute_not_exists(#PK)")
	if err := p.run(ctx, t); err != nil {
		return Owner{}, err
	}
	return owner, nil
}
