package jobs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// publishPoolMetrics counts the whole pool (pool.Stats: a COUNT query per status) and
// publishes the counts as gauges; the run's summary carries them too. Then the signals per
// name prefix (prefixSignals).
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
	return r.prefixSignals(ctx, run, stats.AvailableByPrefix)
}

// lowWaterMark is the available count below which prefix is low: the mark of the lab
// profile of the longest prefix of it that sets one (docs/architecture.md §5, "Lab
// profiles"), else the configured one (PREFIX_LOW_WATER_MARK).
func (r *Runner) lowWaterMark(profiles []pool.Profile, prefix string) int {
	if mark := broker.LowWater(profiles, prefix); mark != 0 {
		return mark
	}
	return r.cfg.PrefixLowWaterMark
}

// prefixSignals computes each name prefix's level (its available sandboxes), allocations
// per minute over the rate window and time to empty at that rate, stores them (a prefix
// turning low or fine again is an event, pkg/events), and publishes how many prefixes are
// low or emptying and, for the PREFIX_METRICS_MAX lowest forecasts, each one's metrics.
// A prefix with a stored signal stays counted when nothing of it is left or allocated.
func (r *Runner) prefixSignals(ctx context.Context, run *runState, available map[string]int) error {
	now := r.pool.Now()
	window := r.cfg.AllocationRateWindow
	allocated, err := r.pool.AllocationsSince(ctx, now.Add(-window).Unix())
	if err != nil {
		return fmt.Errorf("count the recent allocations: %w", err)
	}
	stored, err := r.pool.PrefixSignals(ctx)
	if err != nil {
		return fmt.Errorf("read the prefix signals: %w", err)
	}
	profiles, err := r.pool.Profiles(ctx)
	if err != nil {
		return fmt.Errorf("read the lab profiles: %w", err)
	}
	prefixes := map[string]bool{}
	for p := range available {
		prefixes[p] = true
	}
	for p := range allocated {
		prefixes[p] = true
	}
	for _, s := range stored {
		prefixes[s.Prefix] = true
	}
	var signals []pool.PrefixSignal
	low, emptying := 0, 0
	for _, p := range slices.Sorted(maps.Keys(prefixes)) {
		s := pool.NewPrefixSignal(p, available[p], float64(allocated[p])/window.Minutes(), r.lowWaterMark(profiles, p), r.cfg.PrefixLeadTime.Minutes(), now.UnixMilli())
		err := r.pool.PutPrefixSignal(ctx, s)
		switch {
		case errors.Is(err, pool.ErrConflict):
			continue // a later run stored its own
		case err != nil:
			return err
		}
		signals = append(signals, s)
		if slices.Contains(s.Reasons, pool.BelowLowWater) {
			low++
		}
		if slices.Contains(s.Reasons, pool.EmptiesTooSoon) {
			emptying++
		}
	}
	run.count("prefixes", len(signals))
	run.count("prefixes_low", low)
	run.count("prefixes_emptying", emptying)
	if r.metrics == nil {
		return nil
	}
	// The lowest forecasts first, then the lowest levels: those are the ones to watch.
	slices.SortFunc(signals, func(a, b pool.PrefixSignal) int {
		return cmp.Or(cmp.Compare(forecast(a), forecast(b)), cmp.Compare(a.Available, b.Available), cmp.Compare(a.Prefix, b.Prefix))
	})
	var each []obs.PrefixSignal
	for _, s := range signals[:min(len(signals), r.cfg.PrefixMetricsMax)] {
		each = append(each, obs.PrefixSignal{Prefix: s.Prefix, Available: s.Available, PerMinute: s.PerMinute, MinutesToEmpty: s.MinutesToEmpty})
	}
	r.metrics.PrefixGauges(low, emptying, each)
	return nil
}

// forecast orders signals by time to empty, one that never empties last.
func forecast(s pool.PrefixSignal) float64 {
	if !s.Empties() {
		return float64(1 << 62)
	}
	return s.MinutesToEmpty
}
