package broker

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// ErrDraining: a drain matches the request's prefix; no new allocation starts.
var ErrDraining = errors.New("broker: the pool is draining")

// Drain admission (docs/operations.md, "Drain mode"). A drain must stop allocations
// without a hot item in every claim transaction (a ConditionCheck on one shared drain item
// would make every concurrent claim conflict with every other) and without a read per
// allocation. So each process reads the drains at most every drainCacheTTL (one strongly
// consistent query) and admits allocations from that read. A claim may start only until
// claimStartWindow after that read expired (past it, the allocation asks again, which
// re-reads), and each claim call has a deadline of claimCallTimeout. A drain written at W
// is acknowledged at W + DrainAckDelay: a read that missed the drain started before W, so
// every claim it admitted started before W + drainCacheTTL + claimStartWindow and ended
// (committed or failed) claimCallTimeout later; ackMargin covers a request the SDK sent
// just before its deadline that DynamoDB commits a moment later.
const (
	drainCacheTTL    = 2 * time.Second
	claimStartWindow = time.Second
	claimCallTimeout = 8 * time.Second
	ackMargin        = time.Second
	// DrainAckDelay is how long StartDrain waits after its write before it returns.
	DrainAckDelay = drainCacheTTL + claimStartWindow + claimCallTimeout + ackMargin
)

// drainCache is one process's view of the drains. It reads real time, not the broker's
// clock: its bounds are deadlines of real calls. And the wall clock: the cache outlives a
// Lambda invocation, and where the monotonic clock stands still while Lambda freezes an
// idle environment, a read timed on it would stay fresh across the freeze, and an
// allocation after it would miss a drain started meanwhile.
type drainCache struct {
	pool *pool.Pool
	now  func() time.Time // nil: time.Now (tests thaw it)
	mu   sync.Mutex
	// drains were read by a query that started at readAt (on the wall clock).
	drains []pool.Drain
	readAt time.Time
}

// wallNow is the time on the wall clock.
func (c *drainCache) wallNow() time.Time {
	if c.now == nil {
		return time.Now().Round(0)
	}
	return c.now().Round(0)
}

// admit returns ErrDraining when a drain matches prefix, and otherwise the time until
// which the allocation may start claims.
func (c *drainCache) admit(ctx context.Context, prefix string) (time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// A wall clock that went back past the read (a clock step) makes it stale too.
	if age := c.wallNow().Sub(c.readAt); c.readAt.IsZero() || age >= drainCacheTTL || age < 0 {
		start := c.wallNow()
		drains, err := c.pool.Drains(ctx)
		if err != nil {
			return time.Time{}, err
		}
		c.drains, c.readAt = drains, start
	}
	for _, d := range c.drains {
		if drainMatches(d.Prefix, prefix) {
			return time.Time{}, ErrDraining
		}
	}
	return c.readAt.Add(drainCacheTTL + claimStartWindow), nil
}

// drainMatches: an empty drain prefix drains everything; otherwise a request matches when
// the sandboxes it could get overlap the drained ones: its prefix starts with the
// drained one, or the drained one starts with its prefix (a request without a prefix, or
// "lab" while "lab-a" drains, could get a drained sandbox).
func drainMatches(drained, requested string) bool {
	return strings.HasPrefix(requested, drained) || strings.HasPrefix(drained, requested)
}

// refused answers an allocation admit refused. A drained request still replays the
// student's live allocation under this key (one read, only while draining); anything
// else is ErrDraining.
func (b *Broker) refused(ctx context.Context, req AllocateRequest, err error) (Allocation, error) {
	if !errors.Is(err, ErrDraining) {
		return Allocation{}, err
	}
	owner, found, err := b.pool.OwnerRecord(ctx, req.holder(), req.IdempotencyKey)
	if err != nil {
		return Allocation{}, err
	}
	if found && owner.ExpiresAt > b.now().Add(-b.grace).Unix() {
		return Allocation{Owner: owner}, nil
	}
	return Allocation{}, ErrDraining
}

// StartDrain starts (or replaces) the drain of prefix and returns once it is in force:
// after DrainAckDelay, when no allocation admitted before the drain can still commit.
func (b *Broker) StartDrain(ctx context.Context, prefix, reason string, by pool.Actor) (pool.Drain, error) {
	d, err := b.pool.StartDrain(ctx, pool.Drain{Prefix: prefix, Reason: reason, By: by.Name}, by)
	if err != nil {
		return pool.Drain{}, err
	}
	select {
	case <-time.After(DrainAckDelay):
		return d, nil
	case <-ctx.Done():
		return pool.Drain{}, ctx.Err()
	}
}

// EndDrains ends the drain of prefix, or all of them; allocations resume within
// drainCacheTTL.
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
