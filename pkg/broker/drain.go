package broker

import (
	"context"
	"errors"
	"strings"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// ErrDraining: a drain covers the request's prefix and nothing it may get is free; no new
// allocation starts.
var ErrDraining = errors.New("broker: the pool is draining")

// Drains cost allocation nothing (docs/operations.md, "Drain mode"): pool.StartDrain moves
// the sandboxes a drain covers out of the shards allocation reads, and returns once no
// claim of one can land. So an allocation never reads the drains on its way to a sandbox;
// only one that found nothing free does, to tell a drain (ErrDraining) from an exhausted
// pool (ErrNoSandbox).

// nothingFree answers an allocation whose sweep found nothing free: the holder's live
// allocation under this key if it has one (a replay, answered while draining too), and
// otherwise ErrDraining when a drain covers the request, ErrStudentLimit, or ErrNoSandbox.
func (b *Broker) nothingFree(ctx context.Context, req AllocateRequest, by pool.Actor) (Allocation, error) {
	drains, err := b.pool.Drains(ctx)
	if err != nil {
		return Allocation{}, err
	}
	otherwise := req.terms.noSandbox()
	for _, d := range drains {
		if drainMatches(d.Prefix, req.NamePrefix) {
			otherwise = ErrDraining
		}
	}
	return b.replayOr(ctx, req, by, otherwise)
}

// drainMatches: an empty drain prefix drains everything; otherwise a request matches when
// the sandboxes it could get overlap the drained ones: its prefix starts with the drained
// one, or the drained one starts with its prefix (a request without a prefix, or "lab"
// while "lab-a" drains, could have got a drained sandbox).
func drainMatches(drained, requested string) bool {
	return strings.HasPrefix(requested, drained) || strings.HasPrefix(drained, requested)
}

// StartDrain starts (or replaces) the drain of prefix and returns once it is in force: no
// claim of a sandbox it covers can land any more (pool.StartDrain).
func (b *Broker) StartDrain(ctx context.Context, prefix, reason string, by pool.Actor) (pool.Drain, error) {
	return b.pool.StartDrain(ctx, pool.Drain{Prefix: prefix, Reason: reason, By: by.Name}, by)
}

// EndDrains ends the drain of prefix, or all of them; the sandboxes no drain covers any
// more are free to allocate when it returns.
func (b *Broker) EndDrains(ctx context.Context, prefix string, all bool, by pool.Actor) ([]string, error) {
	return b.pool.EndDrains(ctx, prefix, all, by)
}

// Drains lists the drains in force.
func (b *Broker) Drains(ctx context.Context) ([]pool.Drain, error) { return b.pool.Drains(ctx) }

// DrainState lists the drains in force and the history of drains, newest first.
func (b *Broker) DrainState(ctx context.Context) ([]pool.Drain, []pool.HistoryEntry, error) {
	drains, err := b.pool.Drains(ctx)
	if err != nil {
		return nil, nil, err
	}
	history, err := b.pool.DrainHistory(ctx)
	return drains, history, err
}
