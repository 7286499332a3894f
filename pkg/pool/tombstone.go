package pool

import (
	"context"
	"fmt"
)

// MarkDeleted books a delete the CSP confirmed (200 or 204): pending_deletion → deleted.
// The record stays as a tombstone with its history, so no later sync, however late its
// listing, can adopt the account again, until the tombstone TTL: the account is gone
// upstream, and a listing that shows it months later would be a new account by the same
// uuid (docs/architecture.md §4).
func (p *Pool) MarkDeleted(ctx context.Context, cur Sandbox, by Actor) (Sandbox, error) {
	return p.bury(ctx, "mark deleted", cur, expect{statuses: []Status{PendingDeletion}}, Deleted, DeleteConfirmed, by)
}

// MarkNotFound books a delete the CSP answered 404, once the cleanup run's probe proved
// the endpoint right: pending_deletion → deleted, as MarkDeleted, but the tombstone never
// expires (DeleteNotFound): the account may still exist upstream.
func (p *Pool) MarkNotFound(ctx context.Context, cur Sandbox, by Actor) (Sandbox, error) {
	return p.bury(ctx, "mark not found", cur, expect{statuses: []Status{PendingDeletion}}, Deleted, DeleteNotFound, by)
}

// Retire takes a stale or deletion_failed record out of the pool without a CSP call (admin
// bulk-delete, auto-delete-stale): it becomes a retired tombstone. A deletion_failed
// account still exists upstream with the last student's users in it, so it must never be
// adopted again: its tombstone never expires. A stale one is retired too, since an
// operator chose so, until the tombstone TTL (it was never allocated). before > 0 also
// requires the record to be in its status since before or earlier (status_at: stale_since,
// or when its deletion failed), as the operator confirmed it. No other status may be
// retired: that would orphan a live allocation or a pending delete.
func (p *Pool) Retire(ctx context.Context, cur Sandbox, before int64, by Actor) (Sandbox, error) {
	if cur.Status != Stale && cur.Status != DeletionFailed {
		return Sandbox{}, fmt.Errorf("pool: retire %s: status %s may not be retired", cur.ID, cur.Status)
	}
	return p.bury(ctx, "retire", cur, expect{statuses: []Status{cur.Status}, dueBy: before}, Retired, "", by)
}

// bury turns the record into a tombstone: out of AvailableIndex, status_at the time of
// death (no job queries a tombstone status, so it is never due work), and, in the same
// transaction, its UUID item kept. A tombstone that may expire (MayExpire) gets the
// tombstone TTL and its UUID item a later one (uuidOutlives); any other gets none, and
// neither does its UUID item.
func (p *Pool) bury(ctx context.Context, op string, cur Sandbox, want expect, to Status, answer DeleteAnswer, by Actor) (Sandbox, error) {
	now := p.now().Unix()
	uuid := uuidOf(cur)
	next := cur
	next.Status, next.StatusAt, next.UpdatedAt, next.AccountUUID, next.DeleteAnswer = to, now, now, uuid, answer
	next.NextAttemptAt, next.MissedSyncs, next.Rev, next.TTL = 0, 0, cur.Rev+1, 0
	if next.MayExpire() {
		next.TTL = p.now().Add(p.tombstoneTTL).Unix()
	}
	t := p.newTx(op, cur.ID, want)
	var e expr
	e.set(":now", now)
	e.set(":uuid", uuid)
	e.set(":one", 1)
	set := "SET " + e.setStatus(cur.ID, to, now) + ", #updated_at = :now, #account_uuid = :uuid, #rev = #rev + :one"
	remove := " REMOVE #avail_shard, #avail_name, #next_attempt_at, #missed_syncs"
	if answer != "" {
		e.set(":answer", string(answer))
		set += ", #delete_answer = :answer"
	}
	if next.TTL != 0 {
		e.set(":ttl", next.TTL)
		set += ", #ttl = :ttl"
	} else {
		remove += ", #ttl"
	}
	t.updateSandbox(p.table, &e, set+remove)
	t.keepUUID(p.table, uuid, uuidTTL(next.TTL))
	if err := p.commit(ctx, t, cur.Status, to, by); err != nil {
		return Sandbox{}, err
	}
	return next, nil
}

// KeepTombstone is the migration of a tombstone buried before the TTL rule, when every
// tombstone and its UUID item got the tombstone TTL: for one that must not expire
// (MayExpire is false) it removes the TTL from the record and its UUID item, in one
// transaction conditioned on the status and version that were read, and gives a record
// from before the sharded StatusIndex its status_key, since it now stays for good. Like
// AdoptUUID it is not a transition: no history, no version bump. A TTL already past
// still counts: DynamoDB deletes expired items within days, not at once, and an item
// whose TTL is removed before then stays.
func (p *Pool) KeepTombstone(ctx context.Context, cur Sandbox) error {
	if !cur.Status.Tombstone() || cur.MayExpire() {
		return fmt.Errorf("pool: keep tombstone %s: a %s record that may expire is not kept", cur.ID, cur.Status)
	}
	t := p.newTx("keep tombstone", cur.ID, expect{statuses: []Status{cur.Status}, rev: cur.Rev})
	var e expr
	e.set(":status_key", StatusKey(cur.Status, cur.ID))
	t.updateSandbox(p.table, &e, "SET #status_key = :status_key REMOVE #ttl")
	t.keepUUID(p.table, uuidOf(cur), 0)
	return p.run(ctx, t)
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
