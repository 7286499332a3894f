package broker

import (
	"context"
	"math/rand/v2"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// sweep is one allocation's walk over AvailableIndex's shards: each pick reads the page of
// a random shard with free sandboxes and picks one of it at random. Each allocation runs
// its own, as Lambda runs each in its own instance: nothing is shared between allocations.
//
// A lost claim means another allocation took that candidate since the read, and in a
// burst most of the page's others too: the next pick reads afresh. A second pick from the
// same page lost more often than a fresh read costs (docs/benchmark.md, "Candidates"). A
// read that finds a shard empty marks it for the rest of the allocation (only sync adds
// sandboxes), so found is false only when reads made during this allocation found every
// shard empty.
type sweep struct {
	read   func(ctx context.Context, shard int, prefix string) ([]pool.Sandbox, error)
	prefix string
	// afterPick, when set, is called with each candidate picked, before its claim (tests).
	afterPick func(pool.Sandbox)
	// shards are the AvailableIndex partitions it reads: the general pool's, or one
	// reservation's set-aside (sourcesFor); empty marks those found empty.
	shards []int
	empty  map[int]bool
}

// generalShards are the general pool's AvailableIndex partitions.
var generalShards = pool.GeneralPartitions()

func (b *Broker) newSweep(prefix string, shards []int) *sweep {
	return &sweep{read: b.readCandidates, prefix: prefix, afterPick: b.afterPick, shards: shards, empty: map[int]bool{}}
}

func (b *Broker) readCandidates(ctx context.Context, shard int, prefix string) ([]pool.Sandbox, error) {
	listed, err := b.pool.Candidates(ctx, shard, prefix, candidatesPerQuery)
	if b.afterRead != nil {
		b.afterRead(shard, listed)
	}
	return listed, err
}

// next picks a candidate from a fresh read of a random shard not found empty.
func (s *sweep) next(ctx context.Context) (pool.Sandbox, bool, error) {
	for {
		var open []int
		for _, shard := range s.shards {
			if !s.empty[shard] {
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
		if len(page) == 0 {
			s.empty[shard] = true
			continue
		}
		c := page[rand.IntN(len(page))]
		if s.afterPick != nil {
			s.afterPick(c)
		}
		return c, true, nil
	}
}
