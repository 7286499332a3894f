package pool

import "context"

// RecordDeleteFailure books one failed upstream delete on a pending_deletion sandbox:
// attempts+1, the next attempt at nextAttemptAt (unix seconds, which becomes its
// status_at, so the cleanup job's due-work query finds it then) and lastErr, which
// operators read. It requires the attempts count that was
// read, so two runs can never book the same failure twice.
func (p *Pool) RecordDeleteFailure(ctx context.Context, cur Sandbox, nextAttemptAt int64, lastErr string, by Actor) (Sandbox, error) {
	now := p.now().Unix()
	t := p.newTx("record delete failure", cur.ID, expect{statuses: []Status{PendingDeletion}, attempts: &cur.Attempts})
	var e expr
	e.set(":attempts", cur.Attempts+1)
	e.set(":next", nextAttemptAt)
	e.set(":err", lastErr)
	e.set(":now", now)
	e.set(":one", 1)
	t.updateSandbox(p.table, &e, "SET #attempts = :attempts, #next_attempt_at = :next, #status_at = :next, "+
		"#last_error = :err, #updated_at = :now, #rev = #rev + :one")
	if err := p.commit(ctx, t, PendingDeletion, PendingDeletion, by); err != nil {
		return Sandbox{}, err
	}
	next := cur
	next.Attempts, next.NextAttemptAt, next.StatusAt, next.LastError = cur.Attempts+1, nextAttemptAt, nextAttemptAt, lastErr
	next.UpdatedAt, next.Rev = now, cur.Rev+1
	return next, nil
}

// FailDeletion gives up on a sandbox after its last failed attempt: pending_deletion →
// deletion_failed, which operators see (metric, alarm) and can retry.
func (p *Pool) FailDeletion(ctx context.Context, cur Sandbox, lastErr string, by Actor) (Sandbox, error) {
	now := p.now().Unix()
	t := p.newTx("fail deletion", cur.ID, expect{statuses: []Status{PendingDeletion}, attempts: &cur.Attempts})
	var e expr
	e.set(":attempts", cur.Attempts+1)
	e.set(":err", lastErr)
	e.set(":now", now)
	e.set(":one", 1)
	t.updateSandbox(p.table, &e, "SET "+e.setStatus(cur.ID, DeletionFailed, now)+", #attempts = :attempts, "+
		"#last_error = :err, #updated_at = :now, #rev = #rev + :one REMOVE #next_attempt_at")
	if err := p.commit(ctx, t, PendingDeletion, DeletionFailed, by); err != nil {
		return Sandbox{}, err
	}
	next := cur
	next.Status, next.StatusAt, next.Attempts, next.LastError, next.NextAttemptAt = DeletionFailed, now, cur.Attempts+1, lastErr, 0
	next.UpdatedAt, next.Rev = now, cur.Rev+1
	return next, nil
}

// RetryDeletion is the operator's way back: deletion_failed → pending_deletion, due now,
// attempts reset. The last error stays for reference.
func (p *Pool) RetryDeletion(ctx context.Context, cur Sandbox, by Actor) (Sandbox, error) {
	now := p.now().Unix()
	t := p.newTx("retry deletion", cur.ID, expect{statuses: []Status{DeletionFailed}})
	var e expr
	e.set(":zero", 0)
	e.set(":now", now)
	e.set(":one", 1)
	t.updateSandbox(p.table, &e, "SET "+e.setStatus(cur.ID, PendingDeletion, now)+", #attempts = :zero, "+
		"#updated_at = :now, #rev = #rev + :one REMOVE #next_attempt_at")
	if err := p.commit(ctx, t, DeletionFailed, PendingDeletion, by); err != nil {
		return Sandbox{}, err
	}
	next := cur
	next.Status, next.StatusAt, next.Attempts, next.NextAttemptAt = PendingDeletion, now, 0, 0
	next.UpdatedAt, next.Rev = now, cur.Rev+1
	return next, nil
}
