package jobs

import (
	"context"
	"fmt"

	"github.com/sandbox-broker/broker/pkg/broker"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// expire ends the allocations whose expires_at + grace is now or earlier: allocated →
// pending_deletion, and the owner record goes, in one transaction. The read is a key
// condition on status_at (= expires_at while allocated), so only due sandboxes are read,
// page after page (docs/upstream.md D10). The write is conditioned on the same cutoff: a sandbox the owner
// released meanwhile is a lost race, counted and skipped. Then it counts the live
// allocations of capped clients that no counter counts yet (broker.CountStragglers).
func (r *Runner) expire(ctx context.Context, run *runState) error {
	cutoff := r.pool.Now().Add(-r.grace).Unix()
	for s, err := range r.pool.ByStatus(ctx, pool.Allocated, cutoff) {
		if err != nil {
			return fmt.Errorf("read expired allocations: %w", err)
		}
		if run.outOfTime(0) {
			return nil
		}
		_, err = r.pool.Expire(ctx, s, cutoff, run.as("expired"))
		run.countWrite("expired", err)
		if err := unlessLostRace(err); err != nil {
			return err
		}
	}
	if run.outOfTime(0) {
		return nil
	}
	counted, err := broker.CountStragglers(ctx, r.pool)
	run.count("cap_counted", counted)
	return err
}
