package pool

import (
	"context"
	"fmt"
)

// MarkDeleted books a delete the CSP confirmed: pending_deletion → deleted. The record stays
// as a tombstone with its history until the tombstone TTL, so no later sync, however late
// its listing, can adopt the account again (docs/architecture.md §4).
func (p *Pool) MarkDeleted(ctx context.Context, cur Sandbox, by Actor) (Sandbox, error) {
	return p.bury(ctx, "mark deleted", cur, expect{statuses: []Status{PendingDeletion}}, Deleted, by)
}

// Retire takes a stale or deletion_failed record out of the pool without a CSP call (admin
// bulk-delete, auto-delete-stale): it becomes a retired tombstone. A deletion_failed
// account still exists upstream with the last student's users in it, so it must never be
// adopted again; a stale one is retired too, since an operator chose so. before > 0 also
// requires the record to be in its status since before or earlier (status_at: stale_since,
// or when its deletion failed), as the operator confirmed it. No other status may be
// retired: that would orphan a live allocation or a pending delete.
func (p *Pool) Retire(ctx context.Context, cur Sandbox, before int64, by Actor) (Sandbox, error) {
	if cur.Status != Stale && cur.Status != DeletionFailed {
		return Sandbox{}, fmt.Errorf("pool: retire %s: status %s may not be retired", cur.ID, cur.Status)
	}
	return p.bury(ctx, "retire", cur, expect{statuses: []Status{cur.Status}, dueBy: before}, Retired, by)
}

// bury turns the record into a tombstone: out of AvailableIndex, status_at the time of
// death (no job queries a tombstone status, so it is never due work), and the tombstone
// TTL on the record and, in the same transaction, on its UUID item.
func (p *Pool) bury(ctx context.Context, op string, cur Sandbox, want expect, to Status, by Actor) (Sandbox, error) {
	now := p.now().Unix()
	ttl := p.now().Add(p.tombstoneTTL).Unix()
	uuid := uuidOf(cur)
	t := p.newTx(op, cur.ID, want)
	var e expr
	e.set(":now", now)
	e.set(":ttl", ttl)
	e.set(":uuid", uuid)
	e.set(":one", 1)
	t.updateSandbox(p.table, &e, "SET "+e.setStatus(cur.ID, to, now)+", #updated_at = :now, #ttl = :ttl, "+
		"#account_uuid = :uuid, #rev = #rev + :one REMOVE #avail_shard, #avail_name, #next_attempt_at, #missed_syncs")
	t.keepUUID(p.table, uuid, ttl)
	if err := p.commit(ctx, t, cur.Status, to, by); err != nil {
		return Sandbox{}, err
	}
	next := cur
	next.Status, next.StatusAt, next.UpdatedAt, next.TTL, next.AccountUUID = to, now, now, ttl, uuid
	next.NextAttemptAt, next.MissedSyncs, next.Rev = 0, 0, cur.Rev+1
	return next, nil
}

// RemoveStale deletes a stale record, and its UUID item, once it has been stale since
// cutoff or earlier (the stale-cleanup job). A stale record was never allocated (only an
// available one goes stale), so the account may be adopted again should the CSP list it
// later. A sandbox that sync brought back meanwhile is left alone. Its history stays
// until the history TTL.
func (p *Pool) RemoveStale(ctx context.Context, cur Sandbox, cutoff int64, by Actor) error {
	t := p.newTx("remove stale", cur.ID, expect{statuses: []Status{Stale}, dueBy: cutoff})
	t.deleteSandbox(p.table)
	t.dropUUID(p.table, uuidOf(cur))
	return p.commit(ctx, t, Stale, Removed, by)
}
