package broker

import (
	"context"
	"fmt"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// removeStale deletes the records of sandboxes stale for StaleGrace or longer, with their
// UUID items; no CSP call, the CSP no longer lists them. They were never allocated, so no
// tombstone is kept: should the CSP list one again, it may be adopted again. Then it
// continues the tombstone TTL migration while it is not done (keepTombstones).
func (r *JobRunner) removeStale(ctx context.Context, run *jobRun) error {
	res, err := removeStaleSince(ctx, r.pool, r.pool.Now().Add(-r.cfg.StaleGrace).Unix(),
		run.as(fmt.Sprintf("stale for %s", r.cfg.StaleGrace)), func(int) bool { return run.outOfTime(0) })
	run.count("removed", res.Deleted)
	run.count("conflicts", res.Skipped)
	if err != nil {
		return fmt.Errorf("remove stale sandboxes: %w", err)
	}
	return keepTombstones(ctx, r.pool, run)
}

// keepTombstones makes one pass of the tombstone TTL migration (pool.FixTombstoneTTLs)
// while it is not done: tombstones buried before the TTL rule that must never expire lose
// their TTL. Once done, it costs one read a day.
func keepTombstones(ctx context.Context, p *pool.Pool, run *jobRun) error {
	if run.outOfTime(0) {
		return nil
	}
	fix, err := p.FixTombstoneTTLs(ctx, func() bool { return run.outOfTime(0) })
	if !fix.AlreadyDone {
		run.count("ttl_tombstones_read", fix.Read)
		run.count("ttl_tombstones_kept", fix.Kept)
		run.count("ttl_conflicts", fix.Conflicts)
	}
	if err != nil {
		return fmt.Errorf("tombstone TTL migration: %w", err)
	}
	return nil
}

// removeStaleSince deletes the records of sandboxes stale since cutoff or earlier. The read is a key condition on status_at (= stale_since while
// stale), and each delete is conditioned on the sandbox still being stale since the
// cutoff, so one that sync brought back meanwhile stays.
func removeStaleSince(ctx context.Context, p *pool.Pool, cutoff int64, by pool.Actor, stop func(int) bool) (BulkResult, error) {
	return bulk(p.ByStatus(ctx, pool.Stale, cutoff), func(s pool.Sandbox) error {
		return p.RemoveStale(ctx, s, cutoff, by)
	}, stop)
}
