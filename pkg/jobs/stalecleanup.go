package jobs

import (
	"context"
	"fmt"

	"github.com/sandbox-broker/broker/pkg/broker"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// removeStale deletes the records of sandboxes stale for StaleGrace or longer, with their
// UUID items; no CSP call, the CSP no longer lists them. They were never allocated, so no
// tombstone is kept: should the CSP list one again, it may be adopted again. Then it
// continues the tombstone TTL migration while it is not done (keepTombstones).
func (r *Runner) removeStale(ctx context.Context, run *runState) error {
	res, err := broker.RemoveStale(ctx, r.pool, r.pool.Now().Add(-r.cfg.StaleGrace).Unix(),
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
func keepTombstones(ctx context.Context, p *pool.Pool, run *runState) error {
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
