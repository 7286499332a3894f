package broker

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// The client cap (docs/architecture.md §5, "The client cap"). A capped client's claim
// takes room in one of its counter shards (pool.CapCounters); the counters count every
// live allocation of the client once it is enrolled: its allocations that no counter
// counts yet are counted (pool.CountAllocation), and its cap split over the shards
// (pool.SplitCap), by the first capped claim that finds the counters not split for its
// cap, and, for allocations made later by a process that did not know the cap yet, by
// the expiry job (countStragglers).

var (
	// errCapUnsplit: the client's counters are not split for the claim's cap: the client
	// was never enrolled, or its cap changed. The allocation enrols it and claims again.
	errCapUnsplit = errors.New("broker: the client's counters are not split for its cap")
	// errCapClosed: no counter shard has room, though the client holds fewer than its
	// cap: the cap was split while it held as many or more, or the room freed since lies
	// in shards no claim takes. The allocation splits the cap again and claims again.
	errCapClosed = errors.New("broker: the client's counters offer no room below its cap")
)

const (
	// maxCapSettles bounds the enrolments and splits one allocation makes (or waits for)
	// before it gives up with ErrBusy.
	maxCapSettles = 3
	// maxSplitTries bounds the reads and splits of one SplitCap a claim or release keeps
	// making a lost race.
	maxSplitTries = 3
	// enrolLeaseTTL is how long one enrolment may hold the client's enrolment lease: it
	// runs inside an allocation, whose function times out after 15 s.
	enrolLeaseTTL = 30 * time.Second
	// enrolPoll is how often an allocation waiting for another's enrolment reads its lease.
	enrolPoll = 100 * time.Millisecond
	// enrolWorkers counts the allocations of one enrolment at once.
	enrolWorkers = 8
)

// capShards are a capped client's counter shards that may have room, during one
// allocation.
type capShards struct{ open []int }

func newCapShards(cap int) *capShards {
	c := &capShards{}
	for k := range pool.OpenShards(cap) {
		c.open = append(c.open, k)
	}
	return c
}

// pick returns a random shard that may have room; false when none has.
func (c *capShards) pick() (int, bool) {
	if len(c.open) == 0 {
		return 0, false
	}
	return c.open[rand.IntN(len(c.open))], true
}

// only keeps the shards the counters as read show room in, and reports whether there is
// any.
func (c *capShards) only(counters pool.CapCounters, cap int) bool {
	c.open = c.open[:0]
	for k := range pool.OpenShards(cap) {
		if counters[k].Room() > 0 {
			c.open = append(c.open, k)
		}
	}
	return len(c.open) > 0
}

// fullShard decides a claim its counter shard refused: errCapUnsplit when the counters
// are not split for the request's cap; otherwise the shards with room are read, and the
// claim takes one of them (nil), or the client is at its cap (ErrClientLimit), or room
// must be split again (errCapClosed).
func (b *Broker) fullShard(ctx context.Context, req AllocateRequest, refused *pool.CapCounter, caps *capShards) error {
	if refused == nil || refused.Cap != req.ClientCap {
		return errCapUnsplit
	}
	counters, err := b.pool.CapCounters(ctx, req.Client)
	switch {
	case err != nil:
		return err
	case caps.only(counters, req.ClientCap):
		return nil
	case counters.Live() < req.ClientCap:
		return errCapClosed
	}
	return ErrClientLimit
}

// settleCap does what errCapUnsplit or errCapClosed asks for before the allocation claims
// again.
func (b *Broker) settleCap(ctx context.Context, req AllocateRequest, why error) error {
	if errors.Is(why, errCapClosed) {
		return splitCap(ctx, b.pool, req.Client, req.ClientCap)
	}
	return b.enrol(ctx, req.Client, req.ClientCap)
}

// enrol counts every live allocation of the client that no counter counts and splits cap
// over its counters. One process enrols a client at a time, under the client's
// enrolment lease; an allocation that finds it held waits for it to end and claims
// again. Counters from before each shard had its own partition are moved first.
func (b *Broker) enrol(ctx context.Context, client string, cap int) error {
	lease, err := b.pool.AcquireLease(ctx, enrolLease(client), NewID(), enrolLeaseTTL)
	if errors.Is(err, pool.ErrLeaseHeld) {
		return b.awaitEnrolment(ctx, client)
	}
	if err != nil {
		return err
	}
	defer func() { _ = b.pool.ReleaseLease(context.WithoutCancel(ctx), lease) }()
	if _, err := b.pool.MoveLegacyCounters(ctx, client); err != nil {
		return fmt.Errorf("broker: move the counters of client %s: %w", client, err)
	}
	capOf := func(string) (int, error) { return cap, nil }
	if _, err := countAllocations(ctx, b.pool, b.pool.UncountedAllocations(ctx, client), capOf); err != nil {
		return err
	}
	return splitCap(ctx, b.pool, client, cap)
}

// enrolLease names the lease of a client's enrolment (pool.AcquireLease).
func enrolLease(client string) string { return "enrol#" + client }

// awaitEnrolment waits while another process holds the client's enrolment lease, until
// it is released or lapses (a process that died holding it), or ctx is done. It gives no
// shorter bound: an enrolment on a slow table takes what it takes, and an allocation that
// gave up first would only fail a student who could have waited; the function's timeout
// bounds ctx. The wall clock bounds the wait too, should the pool's clock stand still.
func (b *Broker) awaitEnrolment(ctx context.Context, client string) error {
	deadline := time.Now().Add(enrolLeaseTTL)
	for time.Now().Before(deadline) {
		if _, held, err := b.pool.CurrentLease(ctx, enrolLease(client)); err != nil || !held {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(enrolPoll):
		}
	}
	return nil
}

// countAllocations counts each allocation no counter counts in its client's counters
// (pool.CountAllocation), enrolWorkers at a time, spreading each client's over the first
// OpenShards of its cap in turn. capOf gives a client's cap; 0 leaves its allocations
// uncounted. It returns how many allocations of each client it counted; one that ended
// or was counted meanwhile is skipped, and counts all the same.
func countAllocations(ctx context.Context, p *pool.Pool, allocations iter.Seq2[pool.Sandbox, error], capOf func(client string) (int, error)) (map[string]int, error) {
	counted := map[string]int{}
	next := map[string]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, enrolWorkers)
	var mu sync.Mutex
	var errs []error
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	for s, err := range allocations {
		if err != nil {
			fail(err)
			break
		}
		cap, err := capOf(s.Client)
		if err != nil {
			fail(err)
			break
		}
		if cap == 0 {
			continue
		}
		k := next[s.Client] % pool.OpenShards(cap)
		next[s.Client]++
		counted[s.Client]++
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := p.CountAllocation(ctx, s, k); err != nil && !pool.LostRace(err) {
				fail(err)
			}
		})
	}
	wg.Wait()
	return counted, errors.Join(errs...)
}

// splitCap reads a client's counters and splits cap over them (pool.SplitCap), again
// when a claim or release came in between.
func splitCap(ctx context.Context, p *pool.Pool, client string, cap int) error {
	for range maxSplitTries {
		counters, err := p.CapCounters(ctx, client)
		if err != nil {
			return err
		}
		if err := p.SplitCap(ctx, client, cap, counters); !pool.LostRace(err) {
			return err
		}
	}
	return fmt.Errorf("broker: split the cap of client %s: %w", client, ErrBusy)
}

// CountStragglers counts the live allocations of capped clients that no counter counts:
// made by a process that did not know the cap yet (an authorizer cache, the tokens
// secret's refresh) after the client was enrolled. Each such client's cap, as its
// counters were last split for, is split again, which takes the room away if the client
// is now at or past it. A client whose counters were never split is left to its first
// capped allocation. It returns how many allocations it counted (the expiry job runs it).
func CountStragglers(ctx context.Context, p *pool.Pool) (int, error) {
	caps := map[string]int{}
	capOf := func(client string) (int, error) {
		if cap, known := caps[client]; known {
			return cap, nil
		}
		counters, err := p.CapCounters(ctx, client)
		caps[client] = counters.Cap()
		return caps[client], err
	}
	counted, err := countAllocations(ctx, p, p.UncountedAllocations(ctx, ""), capOf)
	if err != nil {
		return 0, fmt.Errorf("count allocations of capped clients: %w", err)
	}
	total := 0
	for client, n := range counted {
		total += n
		if err := splitCap(ctx, p, client, caps[client]); err != nil {
			return total, fmt.Errorf("split the cap of a client: %w", err)
		}
	}
	return total, nil
}
