package broker

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

var (
	// ErrInvalidCursor: a list cursor that this listing did not hand out.
	ErrInvalidCursor = errors.New("broker: invalid cursor")
	// ErrWrongStatus: the sandbox is not in the status the operation needs.
	ErrWrongStatus = errors.New("broker: sandbox is not in a status that allows this")
	// ErrJobRunning: a run of the job holds its lease.
	ErrJobRunning = errors.New("broker: the job is running")
)

// MaxBulk bounds the records one bulk call deletes, so a call stays well inside API
// Gateway's 29-second limit; Complete is false when more are left for another call.
const MaxBulk = 1000

// List pages through sandboxes for operators.
func (b *Broker) List(ctx context.Context, f pool.ListFilter, limit int, cursor string) (pool.Page, error) {
	page, err := b.pool.List(ctx, f, limit, cursor)
	if errors.Is(err, pool.ErrInvalidCursor) {
		return pool.Page{}, ErrInvalidCursor
	}
	return page, err
}

// Inspect returns a sandbox and its transition history, newest first: a tombstone too,
// with its whole history. A record removed outright (a never-allocated stale one) keeps
// its history until the TTL: it is returned with a nil sandbox.
func (b *Broker) Inspect(ctx context.Context, id string) (*pool.Sandbox, []pool.HistoryEntry, error) {
	history, err := b.pool.History(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	s, err := b.pool.Get(ctx, id)
	switch {
	case errors.Is(err, pool.ErrNotFound) && len(history) > 0:
		return nil, history, nil
	case err != nil:
		return nil, nil, notFound(err)
	}
	return &s, history, nil
}

// Stats counts the whole pool exactly (see pool.Stats for how and what it costs).
func (b *Broker) Stats(ctx context.Context) (pool.Stats, error) { return b.pool.Stats(ctx) }

// RetryDeletion gives a deletion_failed sandbox back to the cleanup job, attempts reset.
func (b *Broker) RetryDeletion(ctx context.Context, id string, by pool.Actor) (pool.Sandbox, error) {
	s, err := b.pool.Get(ctx, id)
	if err != nil {
		return pool.Sandbox{}, notFound(err)
	}
	if s.Status != pool.DeletionFailed {
		return s, fmt.Errorf("%w: %s is %s, not deletion_failed", ErrWrongStatus, id, s.Status)
	}
	retried, err := b.pool.RetryDeletion(ctx, s, by)
	if errors.Is(err, pool.ErrConflict) {
		return pool.Sandbox{}, fmt.Errorf("%w: %v", ErrWrongStatus, err)
	}
	return retried, err
}

// BulkResult is what a bulk delete did.
type BulkResult struct {
	Deleted int
	// Skipped counts records that changed status meanwhile and were left alone.
	Skipped int
	// Complete is false when MaxBulk or the deadline stopped the call with work left.
	Complete bool
}

// Confirmed is what an operator saw and confirmed before a bulk retirement: Count records
// of the status whose status_at was at or before Before (unix seconds). A bulk call
// retires those records and no others, or none when the pool no longer holds as many.
type Confirmed struct {
	Count  int
	Before int64
}

// PoolChangedError (ErrPoolChanged): a bulk call found another number of records than the
// operator confirmed, and retired none.
type PoolChangedError struct {
	Status    pool.Status
	Confirmed Confirmed
	// Matching is how many records of Status have a status_at at or before
	// Confirmed.Before now.
	Matching int
}

// ErrPoolChanged: the pool no longer holds what the operator confirmed.
var ErrPoolChanged = errors.New("broker: the pool changed since the operator confirmed")

func (e *PoolChangedError) Error() string {
	return fmt.Sprintf("%v: %d %s records at or before %d confirmed, %d match now", ErrPoolChanged, e.Confirmed.Count, e.Status,
		e.Confirmed.Before, e.Matching)
}

func (e *PoolChangedError) Is(target error) bool { return target == ErrPoolChanged }

// BulkDelete takes the confirmed sandboxes in status, which must be stale or
// deletion_failed, out of the pool as retired tombstones: records only, no CSP call, so no
// other status may go this way (a live or pending account would be orphaned in the CSP). A
// deletion_failed account still exists upstream, so its tombstone is what keeps sync from
// adopting it again. After a CSP outage a status can fill within seconds, so the call
// retires only what the operator confirmed (retireConfirmed).
func (b *Broker) BulkDelete(ctx context.Context, status pool.Status, confirmed Confirmed, by pool.Actor) (BulkResult, error) {
	if status != pool.Stale && status != pool.DeletionFailed {
		return BulkResult{}, fmt.Errorf("%w: bulk delete takes stale or deletion_failed, not %q", ErrWrongStatus, status)
	}
	return b.retireConfirmed(ctx, status, confirmed, by)
}

// DeleteStale retires the sandboxes stale for at least grace (auto-delete-stale), when
// there are count of them, as the operator confirmed. Unlike the stale-cleanup job, which
// removes them, an operator's call leaves tombstones.
func (b *Broker) DeleteStale(ctx context.Context, grace time.Duration, count int, by pool.Actor) (BulkResult, error) {
	return b.retireConfirmed(ctx, pool.Stale, Confirmed{Count: count, Before: b.now().Add(-grace).Unix()}, by)
}

// retireConfirmed retires the records of status whose status_at is at or before
// c.Before, when there are exactly c.Count of them; otherwise it retires none and returns
// a *PoolChangedError. Records that enter the status later have a later status_at, so
// the bound keeps them out, and the count catches records that left and others that the
// operator did not see. It reads every matching record (the count) before the first
// write, and retires the first MaxBulk of that read, each write conditioned on the status
// and the bound: a record that left the status meanwhile, or came back to it after the
// bound, is skipped.
func (b *Broker) retireConfirmed(ctx context.Context, status pool.Status, c Confirmed, by pool.Actor) (BulkResult, error) {
	var batch []pool.Sandbox
	matching := 0
	for s, err := range b.pool.ByStatus(ctx, status, c.Before) {
		if err != nil {
			return BulkResult{}, err
		}
		if matching < MaxBulk {
			batch = append(batch, s)
		}
		matching++
	}
	if matching != c.Count {
		return BulkResult{}, &PoolChangedError{Status: status, Confirmed: c, Matching: matching}
	}
	if b.afterMatching != nil {
		b.afterMatching()
	}
	res, err := bulk(sequence(batch), func(s pool.Sandbox) error {
		_, err := b.pool.Retire(ctx, s, c.Before, by)
		return err
	}, func(int) bool { return ctx.Err() != nil })
	res.Complete = res.Complete && len(batch) == matching
	return res, err
}

// sequence yields the sandboxes of a slice, as bulk reads them.
func sequence(sandboxes []pool.Sandbox) iter.Seq2[pool.Sandbox, error] {
	return func(yield func(pool.Sandbox, error) bool) {
		for _, s := range sandboxes {
			if !yield(s, nil) {
				return
			}
		}
	}
}

// bulk removes each listed sandbox until stop says to leave the rest; a record that
// changed meanwhile (a lost condition) is skipped, any other error ends the call.
func bulk(sandboxes iter.Seq2[pool.Sandbox, error], remove func(pool.Sandbox) error, stop func(done int) bool) (BulkResult, error) {
	var res BulkResult
	for s, err := range sandboxes {
		if err != nil {
			return res, err
		}
		if stop(res.Deleted + res.Skipped) {
			return res, nil
		}
		switch err := remove(s); {
		case err == nil:
			res.Deleted++
		case pool.LostRace(err):
			res.Skipped++
		default:
			return res, err
		}
	}
	res.Complete = true
	return res, nil
}

// JobRuns lists a job's last runs, newest first. job is a name of the job table
// (jobs.Named), which this package does not import: the caller checks it.
func (b *Broker) JobRuns(ctx context.Context, job string, limit int) ([]pool.RunRecord, error) {
	return b.pool.Runs(ctx, job, limit)
}

// CheckJobIdle returns ErrJobRunning (with the holder's run ID) while a run holds the job's
// lease, so an admin trigger can refuse instead of queueing a run that would be skipped.
// job is a name of the job table (jobs.Named).
func (b *Broker) CheckJobIdle(ctx context.Context, job string) error {
	l, held, err := b.pool.CurrentLease(ctx, job)
	if err != nil {
		return err
	}
	if held {
		return &JobRunningError{Job: job, RunID: l.Holder, Until: time.Unix(l.ExpiresAt, 0).UTC()}
	}
	return nil
}

// JobRunningError is ErrJobRunning with the run that holds the lease, so an operator told
// to wait can look that run up.
type JobRunningError struct {
	Job   string
	RunID string
	Until time.Time
}

func (e *JobRunningError) Error() string {
	return fmt.Sprintf("%v: run %s of %s holds the lease until %s", ErrJobRunning, e.RunID, e.Job, e.Until.Format(time.RFC3339))
}

func (e *JobRunningError) Is(target error) bool { return target == ErrJobRunning }

// RemoveStale deletes the records of sandboxes stale since cutoff or earlier (the
// stale-cleanup job), until stop says to leave the rest. The read is a key condition on status_at
// (= stale_since while stale), and each delete is conditioned on the sandbox still being stale since the
// cutoff, so one that sync brought back meanwhile stays.
func RemoveStale(ctx context.Context, p *pool.Pool, cutoff int64, by pool.Actor, stop func(int) bool) (BulkResult, error) {
	return bulk(p.ByStatus(ctx, pool.Stale, cutoff), func(s pool.Sandbox) error {
		return p.RemoveStale(ctx, s, cutoff, by)
	}, stop)
}
