package pool

import (
	"context"
	"time"
)

// Release is the owner's mark-for-deletion: allocated → pending_deletion, only for the
// holder h (client and student) the sandbox is allocated to. cur is the record as read:
// the write requires the allocation entry and the counter shard it names (endAllocation).
// The owner record goes in the same transaction, and the client counter shard is given
// back. Racing Expire, exactly one of the two wins.
func (p *Pool) Release(ctx context.Context, cur Sandbox, h Holder, by Actor) (Sandbox, error) {
	return p.endAllocation(ctx, "release", cur, expect{statuses: []Status{Allocated}, owner: &h}, by)
}

// Expire ends an allocation whose expires_at is at or before cutoff (now minus the grace):
// allocated → pending_deletion, and the owner record goes (and the client counter shard
// is given back). Racing the owner's Release,
// exactly one of the two wins.
func (p *Pool) Expire(ctx context.Context, cur Sandbox, cutoff int64, by Actor) (Sandbox, error) {
	return p.endAllocation(ctx, "expire", cur, expect{statuses: []Status{Allocated}, dueBy: cutoff}, by)
}

// endAllocation frees the owner slot and the client counter shard that counts the
// allocation, and moves the allocation's history entry off the record into the history,
// with its original time. The write requires the record to still carry the entry cur was
// read with (none, for an allocation from before entries rode on the record), so the
// entry is never dropped unwritten, and the counter shard cur was read with (none, for
// an allocation no counter counts), so an allocation counted since (CountAllocation) is
// never given back to no counter.
func (p *Pool) endAllocation(ctx context.Context, op string, cur Sandbox, want expect, by Actor) (Sandbox, error) {
	now := p.now().Unix()
	want.allocation = new(int64)
	if cur.Allocation != nil {
		*want.allocation = cur.Allocation.At
	}
	want.capShard = new(int)
	*want.capShard = capShardOf(&cur)
	t := p.newTx(op, cur.ID, want)
	var e expr
	e.set(":now", now)
	e.set(":zero", 0)
	e.set(":one", 1)
	t.updateSandbox(p.table, &e, "SET "+e.setStatus(cur.ID, PendingDeletion, now)+", #deletion_requested_at = :now, "+
		"#attempts = :zero, #updated_at = :now, #rev = #rev + :one REMOVE #next_attempt_at, #last_error, #allocation, #owner_slot, #cap_shard")
	t.dropOwner(p.table, cur)
	t.returnCounter(p.table, cur)
	if a := cur.Allocation; a != nil {
		t.put("", p.table, p.historyItem(cur.ID, *a, time.UnixMilli(a.At)), "")
	}
	if err := p.commit(ctx, t, Allocated, PendingDeletion, by); err != nil {
		return Sandbox{}, err
	}
	next := cur
	next.Status, next.StatusAt, next.DeletionRequestedAt = PendingDeletion, now, now
	next.Attempts, next.NextAttemptAt, next.LastError = 0, 0, ""
	next.UpdatedAt, next.Rev, next.Allocation = now, cur.Rev+1, nil
	next.OwnerSlot, next.CapShard = nil, nil
	return next, nil
}
