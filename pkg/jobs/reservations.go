package jobs

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/sandbox-broker/broker/pkg/broker"
)

// AlarmReservationUncoverable: a holding reservation, or one within a day of its lead
// time, cannot be covered by the pool (broker.KeepReservations); the run's errors name
// each with its shortfall.
const AlarmReservationUncoverable = "reservation_uncoverable"

// keepReservations runs broker.KeepReservations and books what it did.
func (r *Runner) keepReservations(ctx context.Context, run *runState) error {
	rep, err := broker.KeepReservations(ctx, r.pool, run.as("reservations"))
	run.count("set_aside", rep.SetAside)
	run.count("returned", rep.Returned)
	run.count("ended", rep.Ended)
	run.count("conflicts", rep.Conflicts)
	run.count("short", len(rep.Short))
	for _, id := range slices.Sorted(maps.Keys(rep.Short)) {
		run.addError(fmt.Errorf("reservation %s is %d seats short", id, rep.Short[id]))
	}
	if len(rep.Short) > 0 {
		run.alarm(AlarmReservationUncoverable)
	}
	return err
}
