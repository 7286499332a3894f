package jobs

import (
	"context"
	"fmt"
)

// publishPoolMetrics counts the whole pool (pool.Stats: a COUNT query per status) and
// publishes the counts as gauges; the run's summary carries them too.
func (r *Runner) publishPoolMetrics(ctx context.Context, run *runState) error {
	stats, err := r.pool.Stats(ctx)
	if err != nil {
		return fmt.Errorf("count the pool: %w", err)
	}
	byStatus := make(map[string]int, len(stats.ByStatus))
	for status, n := range stats.ByStatus {
		byStatus[string(status)] = n
		run.count(string(status), n)
	}
	if r.metrics != nil {
		r.metrics.PoolGauges(byStatus, stats.Total)
	}
	return nil
}
