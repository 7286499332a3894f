package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// ReservationMatches: the reservation's set-aside serves an allocation of its lab (and of
// its client, when it names one) whose requested prefix overlaps its own (one starts with
// the other: a request without a prefix, or a longer one, may be given a set-aside
// sandbox whose name matches it).
func ReservationMatches(r pool.Reservation, lab, client, prefix string) bool {
	return r.Lab == lab && (r.Client == "" || r.Client == client) && drainMatches(r.Prefix, prefix)
}

// sourcesFor lists the AvailableIndex partitions an allocation deals from, in order: the
// set-aside of each reservation holding for it at now, the one ending first first, then
// the general pool, unless one of those reservations forbids overflow
// (docs/architecture.md §5, "Reservations").
func sourcesFor(reservations []pool.Reservation, req AllocateRequest, now int64) [][]int {
	var holding []pool.Reservation
	for _, r := range reservations {
		if r.Holding(now) && ReservationMatches(r, req.TrackName, req.Client, req.NamePrefix) {
			holding = append(holding, r)
		}
	}
	slices.SortFunc(holding, func(x, y pool.Reservation) int { return cmp.Compare(x.EndsAt, y.EndsAt) })
	var sources [][]int
	overflow := true
	for _, r := range holding {
		sources = append(sources, r.Partitions())
		overflow = overflow && r.Overflow
	}
	if overflow {
		sources = append(sources, generalShards)
	}
	return sources
}

// Capacity is the answer of a capacity check: can Seats seats of Prefix be covered at At?
// Every count is of the prefix's sandboxes as they are now.
type Capacity struct {
	Prefix string
	Seats  int
	At     int64
	// Available counts the general pool's available sandboxes of the prefix.
	Available int
	// SetAside counts those the reservation itself holds already (0 for a new one), and
	// Used the seats its students took.
	SetAside int
	Used     int
	// PromisedToOthers counts the seats other reservations whose holding overlaps this
	// one's, of an overlapping prefix, have still to set aside from the same general
	// pool; HeldByOthers what they hold already (not in Available).
	PromisedToOthers int
	HeldByOthers     int
	// PendingDeletion counts the prefix's sandboxes on their way out: single use, they
	// never come back, so they cover nothing (shown because operators ask).
	PendingDeletion int
	// Shortfall is how many seats cannot be covered; 0 when Coverable.
	Shortfall int
	Coverable bool
}

// ErrUncoverable: the capacity check found a reservation cannot be covered.
var ErrUncoverable = errors.New("broker: the reservation cannot be covered")

// UncoverableError carries the check's numbers.
type UncoverableError struct{ Capacity Capacity }

func (e *UncoverableError) Error() string {
	c := e.Capacity
	return fmt.Sprintf("%v: %d seats of %q, %d available, %d promised to other reservations, %d short",
		ErrUncoverable, c.Seats, c.Prefix, c.Available, c.PromisedToOthers, c.Shortfall)
}
func (e *UncoverableError) Is(target error) bool { return target == ErrUncoverable }

// holdingOverlaps: the two reservations may hold set-asides at the same time from
// overlapping prefixes, so they draw on the same general pool.
func holdingOverlaps(a, b pool.Reservation) bool {
	return a.SetAsideFrom() < b.EndsAt && b.SetAsideFrom() < a.EndsAt && drainMatches(a.Prefix, b.Prefix)
}

// CheckCapacity is the dry run: whether r (a new reservation, or one in the table) can be
// covered from the pool as it is now. Other scheduled reservations whose holding overlaps
// r's count in full, whichever starts first (docs/operations.md, "A workshop day").
func CheckCapacity(ctx context.Context, p *pool.Pool, r pool.Reservation) (Capacity, error) {
	c := Capacity{Prefix: r.Prefix, Seats: r.Seats, At: r.StartsAt}
	all, err := p.Reservations(ctx)
	if err != nil {
		return c, err
	}
	if c.Available, err = p.CountAvailable(ctx, r.Prefix); err != nil {
		return c, err
	}
	for _, o := range all {
		if o.ID == r.ID {
			r = o // the stored counts
			continue
		}
		if o.State != pool.ReservationScheduled || !holdingOverlaps(o, r) {
			continue
		}
		held, err := p.CountSetAside(ctx, o, "")
		if err != nil {
			return c, err
		}
		c.HeldByOthers += held
		c.PromisedToOthers += max(o.Seats-o.SetAside, 0)
	}
	if r.ID != "" {
		if c.SetAside, err = p.CountSetAside(ctx, r, ""); err != nil {
			return c, err
		}
		c.Used = max(r.SetAside-c.SetAside, 0)
	}
	if c.PendingDeletion, err = countPendingDeletion(ctx, p, r.Prefix); err != nil {
		return c, err
	}
	need := max(r.Seats-c.SetAside-c.Used, 0)
	c.Shortfall = max(need-(c.Available-c.PromisedToOthers), 0)
	c.Coverable = c.Shortfall == 0
	return c, nil
}

func countPendingDeletion(ctx context.Context, p *pool.Pool, prefix string) (int, error) {
	n := 0
	for s, err := range p.ByStatus(ctx, pool.PendingDeletion, 0) {
		if err != nil {
			return 0, err
		}
		if strings.HasPrefix(s.Name, prefix) {
			n++
		}
	}
	return n, nil
}

// CheckCapacity is the dry run over this broker's pool (the package function).
func (b *Broker) CheckCapacity(ctx context.Context, r pool.Reservation) (Capacity, error) {
	return CheckCapacity(ctx, b.pool, r)
}

// CreateReservation checks the reservation's capacity and creates it, or refuses it with
// an *UncoverableError unless force.
func (b *Broker) CreateReservation(ctx context.Context, r pool.Reservation, force bool, by pool.Actor) (pool.Reservation, Capacity, error) {
	if err := r.Validate(); err != nil {
		return pool.Reservation{}, Capacity{}, err
	}
	c, err := CheckCapacity(ctx, b.pool, r)
	if err != nil {
		return pool.Reservation{}, c, err
	}
	if !c.Coverable && !force {
		return pool.Reservation{}, c, &UncoverableError{Capacity: c}
	}
	created, err := b.pool.CreateReservation(ctx, r, by)
	return created, c, err
}

// Reservations lists the reservations.
func (b *Broker) Reservations(ctx context.Context) ([]pool.Reservation, error) {
	return b.pool.Reservations(ctx)
}

// CancelReservation cancels a reservation; the reservations job returns its set-aside.
func (b *Broker) CancelReservation(ctx context.Context, id string, by pool.Actor) (pool.Reservation, error) {
	return b.pool.CancelReservation(ctx, id, by)
}
