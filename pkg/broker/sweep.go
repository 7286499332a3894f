package broker

import (
	"context"
	"math/rand/v2"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// sweep is one allocation's walk over AvailableIndex's shards: it reads the page of a
// random shard with free sandboxes and picks from it in random order. Each allocation runs
// its own, as Lambda runs each in its own instance: nothing is shared between allocations.
//
// A lost claim means another allocation took that candidate since the read, not that the
// page is all gone: the next pick comes from the same page, up to picksPerPage claims per
// read, before a fresh read (docs/benchmark.md measures the choice). A read that finds a
// shard empty marks it for the rest of the allocation (only sync adds sandboxes), so found
// is false only when reads made during this allocation found every shard empty.
type sweep struct {
	read   func(ctx context.Context, shard int, prefix string) ([]pool.Sandbox, error)
	prefix string
	// afterPick, when set, is called with each candidate picked, before its claim (tests).
	afterPick func(pool.Sandbox)

	page  []pool.Sandbox // the current page's candidates not picked yet, shuffled
	picks int            // claims left on the current page
	empty [pool.Shards]bool
}

// picksPerPage bounds the claims one page read serves. A pick after a lost claim on an
// exact-fit pool in a burst loses about as often as the first, yet costs one request
// where a fresh read and a pick cost two.
const picksPerPage = 4

func (b *Broker) newSweep(prefix string) *sweep {
	return &sweep{read: b.readCandidates, prefix: prefix, afterPick: b.afterPick}
}

func (b *Broker) readCandidates(ctx context.Context, shard int, prefix string) ([]pool.Sandbox, error) {
	listed, err := b.pool.Candidates(ctx, shard, prefix, candidatesPerQuery)
	if b.afterRead != nil {
		b.afterRead(shard, listed)
	}
	return listed, err
}

// next picks a candidate: from the current page while it has picks left, and otherwise
// from a fresh read of a random shard not found empty.
func (s *sweep) next(ctx context.Context) (pool.Sandbox, bool, error) {
	for s.picks == 0 || len(s.page) == 0 {
		var open []int
		for shard, empty := range s.empty {
			if !empty {
				open = append(open, shard)
			}
		}
		if len(open) == 0 {
			return pool.Sandbox{}, false, nil
		}
		shard := open[rand.IntN(len(open))]
		page, err := s.read(ctx, shard, s.prefix)
		if err != nil {
			return pool.Sandbox{}, false, err
		}
		s.empty[shard] = len(page) == 0
		rand.Shuffle(len(page), func(i, j int) { page[i], page[j] = page[j], page[i] })
		s.page, s.picks = page, picksPerPage
	}
	c := s.page[len(s.page)-1]
	s.page = s.page[:len(s.page)-1]
	s.picks--
	if s.afterPick != nil {
		s.afterPick(c)
	}
	return c, true, nil
}
