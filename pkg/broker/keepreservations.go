package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// coverageHorizon is how far ahead of its lead time a reservation's coverage is checked on
// every run: a day gives an operator a working day to add accounts to the CSP.
const coverageHorizon = 24 * time.Hour

// KeepReport counts what one pass over the reservations did.
type KeepReport struct {
	SetAside, Returned, Ended, Conflicts int
	// Short lists the reservations that cannot be covered (holding or upcoming), with
	// their shortfall.
	Short map[string]int
}

// KeepReservations is the reservations job's work (docs/architecture.md §5,
// "Reservations"): for each reservation, in start order so the earlier workshop gets
// the sandboxes first,
//   - holding (scheduled, from its lead time to its end): set aside from the general pool
//     what its seats still need (seats − set_aside), and return what a lowering of its
//     seats left above them; what cannot be set aside is its shortfall;
//   - cancelled, or past its end: return what is still set aside, then end it;
//   - upcoming within coverageHorizon of its lead time: check its capacity.
//
// Each coverage verdict is written on the reservation when it changes (an event on the
// table's stream), and a shortfall is in the report (the job raises its alarm). A lost race (a
// claim of a candidate, a change of the reservation) is counted and left to the next run.
func KeepReservations(ctx context.Context, p *pool.Pool, by pool.Actor) (KeepReport, error) {
	rep := KeepReport{Short: map[string]int{}}
	all, err := p.Reservations(ctx)
	if err != nil {
		return rep, err
	}
	slices.SortFunc(all, func(x, y pool.Reservation) int { return cmp.Compare(x.StartsAt, y.StartsAt) })
	now := p.Now().Unix()
	for _, r := range all {
		var err error
		switch {
		case r.Holding(now):
			err = holdSeats(ctx, p, r, by, &rep)
		case r.State == pool.ReservationCancelled || r.State == pool.ReservationScheduled && now >= r.EndsAt:
			err = endReservation(ctx, p, r, by, &rep)
		case r.State == pool.ReservationScheduled && time.Duration(r.SetAsideFrom()-now)*time.Second <= coverageHorizon:
			var c Capacity
			if c, err = CheckCapacity(ctx, p, r); err == nil {
				err = recordCoverage(ctx, p, r, c.Shortfall, &rep)
			}
		}
		if pool.LostRace(err) {
			rep.Conflicts++
			err = nil
		}
		if err != nil {
			return rep, fmt.Errorf("reservation %s: %w", r.ID, err)
		}
	}
	return rep, nil
}

func holdSeats(ctx context.Context, p *pool.Pool, r pool.Reservation, by pool.Actor, rep *KeepReport) error {
	if excess := r.SetAside - r.Seats; excess > 0 {
		n, err := returnSetAside(ctx, p, r, excess, by)
		rep.Returned += n
		if err != nil {
			return err
		}
	}
	need := r.Seats - r.SetAside
	// The seats are taken evenly from the general shards. A sandbox sits in the partition
	// of its shard among the reservation's (pool.Reservation.Partitions), so the set-aside
	// spreads over them, and what stays spreads over the general pool's: neither's students
	// meet one crowded partition in a wave.
	open := pool.GeneralPartitions()
	for need > 0 && len(open) > 0 {
		quota := (need + len(open) - 1) / len(open)
		var more []int
		for _, shard := range open {
			if need == 0 {
				break
			}
			took, full, err := setAsideFrom(ctx, p, r, shard, min(quota, need), by, rep)
			if err != nil {
				return err
			}
			need -= took
			if full && took > 0 {
				more = append(more, shard) // the shard may hold more: read it again
			}
		}
		open = more
	}
	cur, err := p.Reservation(ctx, r.ID)
	if err != nil {
		return err
	}
	return recordCoverage(ctx, p, cur, max(need, 0), rep)
}

// setAsideFrom sets up to n sandboxes of one general shard aside for r, from one page of
// n candidates; full reports that the page was full.
func setAsideFrom(ctx context.Context, p *pool.Pool, r pool.Reservation, shard, n int, by pool.Actor, rep *KeepReport) (took int, full bool, err error) {
	limit := min(n, candidatesPerQuery)
	page, err := p.Candidates(ctx, shard, r.Prefix, limit)
	if err != nil {
		return 0, false, err
	}
	for _, c := range page {
		err := p.SetAside(ctx, c, r, by)
		var ce *pool.ConditionError
		switch {
		case err == nil:
			rep.SetAside++
			took++
		case errors.As(err, &ce) && ce.Item == pool.ItemReservation:
			return took, false, err // changed, cancelled or full meanwhile: the next run reads it again
		case pool.LostRace(err):
			rep.Conflicts++ // claimed meanwhile
		default:
			return took, false, err
		}
	}
	return took, len(page) == limit, nil
}

func recordCoverage(ctx context.Context, p *pool.Pool, r pool.Reservation, shortfall int, rep *KeepReport) error {
	coverage := pool.CoverageOK
	if shortfall > 0 {
		coverage = pool.CoverageShort
		rep.Short[r.ID] = shortfall
	}
	return p.RecordCoverage(ctx, r, coverage, shortfall)
}

// endReservation returns what r still holds and, when nothing is left, ends it.
func endReservation(ctx context.Context, p *pool.Pool, r pool.Reservation, by pool.Actor, rep *KeepReport) error {
	n, err := returnSetAside(ctx, p, r, -1, by)
	rep.Returned += n
	if err != nil {
		return err
	}
	left, err := p.CountSetAside(ctx, r, "")
	if err != nil || left > 0 {
		return err // the index lags the returns: the next run ends it
	}
	cur, err := p.Reservation(ctx, r.ID)
	if err != nil {
		return err
	}
	if err := p.EndReservation(ctx, cur); err != nil {
		return err
	}
	rep.Ended++
	return nil
}

// returnSetAside returns up to n (all for n < 0) of r's set-aside sandboxes.
func returnSetAside(ctx context.Context, p *pool.Pool, r pool.Reservation, n int, by pool.Actor) (int, error) {
	returned := 0
	for n < 0 || returned < n {
		page, err := p.SetAsideOf(ctx, r, "", candidatesPerQuery)
		if err != nil || len(page) == 0 {
			return returned, err
		}
		progress := false
		for _, s := range page {
			if n >= 0 && returned == n {
				break
			}
			s.Reservation = r.ID // the index does not project it; the page is r's partition
			err := p.ReturnSetAside(ctx, s, by)
			switch {
			case err == nil:
				returned++
				progress = true
			case !pool.LostRace(err):
				return returned, err
			}
		}
		if !progress {
			return returned, nil // what is left was claimed meanwhile, or the index lags
		}
	}
	return returned, nil
}
