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

// BulkDelete takes every sandbox in status, which must be stale or deletion_failed, out of
// the pool as a retired tombstone: records only, no CSP call, so no other status may go
// this way (a live or pending account would be orphaned in the CSP). A deletion_failed
// account still exists upstream, so its tombstone is what keeps sync from adopting it
// again. Each write is conditioned on the status the record was listed with.
func (b *Broker) BulkDelete(ctx context.Context, status pool.Status, by pool.Actor) (BulkResult, error) {
	if status != pool.Stale && status != pool.DeletionFailed {
		return BulkResult{}, fmt.Errorf("%w: bulk delete takes stale or deletion_failed, not %q", ErrWrongStatus, status)
	}
	return bulk(b.pool.ByStatus(ctx, status, 0), func(s pool.Sandbox) error {
		_, err := b.pool.Retire(ctx, s, 0, by)
		return err
	}, bounded(ctx))
}

// DeleteStale retires the sandboxes stale for at least grace (auto-delete-stale). Unlike
// the stale-cleanup job, which removes them, an operator's call leaves tombstones.
func (b *Broker) DeleteStale(ctx context.Context, grace time.Duration, by pool.Actor) (BulkResult, error) {
	cutoff := b.now().Add(-grace).Unix()
	return bulk(b.pool.ByStatus(ctx, pool.Stale, cutoff), func(s pool.Sandbox) error {
		_, err := b.pool.Retire(ctx, s, cutoff, by)
		return err
	}, bounded(ctx))
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

// bounded stops an admin call after MaxBulk records or when its context ends.
func bounded(ctx context.Context) func(int) bool {
	return func(done int) bool { return done >= MaxBulk || ctx.Err() != nil }
}

// JobRuns lists a job's last runs, newest first.
func (b *Broker) JobRuns(ctx context.Context, job string, limit int) ([]pool.JobRun, error) {
	if _, ok := JobNamed(job); !ok {
		return nil, ErrNotFound
	}
	return b.pool.Runs(ctx, job, limit)
}

// CheckJobIdle returns ErrJobRunning (with the holder's run ID) while a run holds the job's
// lease, so an admin trigger can refuse instead of queueing a run that would be skipped.
func (b *Broker) CheckJobIdle(ctx context.Context, job string) error {
	if _, ok := JobNamed(job); !ok {
		return ErrNotFound
	}
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
