package broker

import (
	"context"
	"fmt"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// removeStale deletes the records of sandboxes stale for StaleGrace or longer; no CSP call,
// the CSP no longer lists them. The read is a key condition on status_at (= stale_since
// while stale), and each delete is conditioned on the sandbox still being stale since the
// cutoff, so one that sync brought back meanwhile stays.
func (r *JobRunner) removeStale(ctx context.Context, run *jobRun) error {
	cutoff := r.now().Add(-r.cfg.StaleGrace).Unix()
	for s, err := range r.pool.ByStatus(ctx, pool.Stale, cutoff) {
		if err != nil {
			return fmt.Errorf("read stale sandboxes: %w", err)
		}
		if run.outOfTime(0) {
			return nil
		}
		err = r.pool.RemoveStale(ctx, s, cutoff, run.as(fmt.Sprintf("stale for %s", r.cfg.StaleGrace)))
		run.countWrite("removed", err)
		if err := unlessConflict(err); err != nil {
			return err
		}
	}
	return nil
}
