package broker

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// pageReadTimeout bounds one shared candidate read. The read serves every allocation
// waiting for it, so it runs without the cancellation of the one that started it.
const pageReadTimeout = claimCallTimeout

// dealer shares candidate pages among the allocations one process runs at the same time.
// Independent random picks from the same page collide: in a burst on an exact-fit pool about
// 37 % of claims lose (docs/benchmark.md). The dealer reads a shard's page once for every
// allocation that wants it at that moment (single flight) and deals its candidates in random
// order, each version at most once, so two allocations of one process never claim the same
// candidate at once. A page may be stale (another process claimed, or a write changed a
// candidate since the read): that costs a lost claim, never a wrong answer, since the claim
// is conditioned on the rev that was read; the loser drops the page so the next deal from
// that shard reads it again. Pages and dealt versions are kept only while the process has an
// allocation in flight: a process that serves one request at a time (a Lambda instance)
// reads afresh for each allocation and after each lost claim, exactly as without a dealer.
type dealer struct {
	read func(ctx context.Context, shard int, prefix string) ([]pool.Sandbox, error)
	// afterDeal, when set, is called with each dealt candidate before it is returned (tests).
	afterDeal func(pool.Sandbox)

	mu       sync.Mutex
	active   int // allocations in flight
	claiming int // candidates dealt and not settled yet
	pages    map[pageKey]*page
	// dealt holds each candidate version dealt since the process last had no allocation in
	// flight, minus those whose claim left them untouched; a page read later skips them.
	dealt map[candidateKey]bool
	// settled is closed, and replaced, whenever a claim settles.
	settled chan struct{}
}

type pageKey struct {
	prefix string
	shard  int
}

type candidateKey struct {
	id  string
	rev int64
}

func keyOf(s pool.Sandbox) candidateKey { return candidateKey{s.ID, s.Rev} }

// page is one read of a shard's available sandboxes.
type page struct {
	key    pageKey
	readAt time.Time // when its query was sent
	ready  chan struct{}
	// The fields below are set, under the dealer's lock, before ready is closed.
	done    bool
	err     error
	listed  []pool.Sandbox // everything the read returned
	undealt []pool.Sandbox // listed minus the dealt versions, shuffled; dealt from the end
}

// deal is a candidate dealt to one allocation and the page it came from.
type deal struct {
	pool.Sandbox
	from *page
}

// outcome is what a claim did to its candidate.
type outcome int

const (
	// won: the claim took the candidate.
	won outcome = iota
	// lost: someone else holds it, or its rev moved on; the page it came from is stale.
	lost
	// untouched: the claim ended without taking it (a replay, an error, a refused admission);
	// it may be dealt again from a later read.
	untouched
)

func newDealer(p *pool.Pool) *dealer {
	return &dealer{
		read: func(ctx context.Context, shard int, prefix string) ([]pool.Sandbox, error) {
			return p.Candidates(ctx, shard, prefix, candidatesPerQuery)
		},
		pages: map[pageKey]*page{}, dealt: map[candidateKey]bool{}, settled: make(chan struct{}),
	}
}

// session is one allocation's use of the dealer; close it when the allocation ends.
type session struct {
	d      *dealer
	prefix string
	// shards are the AvailableIndex partitions it deals from: the general pool's, or one
	// reservation's set-aside.
	shards []int
	// drained marks the shards a read made during this allocation found empty (only sync
	// and the reservations job add sandboxes), so the tail of a burst does not read them
	// again.
	drained map[int]bool
}

// generalShards are the general pool's AvailableIndex partitions.
var generalShards = func() []int {
	out := make([]int, pool.Shards)
	for i := range out {
		out[i] = i
	}
	return out
}()

// session deals from shards (generalShards, or a reservation's one).
func (d *dealer) session(prefix string, shards []int) *session {
	d.mu.Lock()
	d.active++
	d.mu.Unlock()
	return &session{d: d, prefix: prefix, shards: shards, drained: map[int]bool{}}
}

func (s *session) close() {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.active--; d.active == 0 {
		clear(d.pages)
		clear(d.dealt)
	}
}

// next deals a candidate matching the session's prefix from a random shard on. found is
// false only when reads started after this call found every shard empty. When every shard
// with free sandboxes has all of them dealt to claims still in flight, it waits for one of
// them to settle and looks again.
func (s *session) next(ctx context.Context) (c deal, found bool, err error) {
	d := s.d
	for {
		since := time.Now()
		busy := false
		start := rand.IntN(len(s.shards))
		for i := range s.shards {
			shard := s.shards[(start+i)%len(s.shards)]
			if s.drained[shard] {
				continue
			}
			c, p, err := d.take(ctx, pageKey{s.prefix, shard}, since)
			switch {
			case err != nil:
				return deal{}, false, err
			case p == nil:
				if d.afterDeal != nil {
					d.afterDeal(c.Sandbox)
				}
				return c, true, nil
			case len(p.listed) == 0:
				s.drained[shard] = true
			default:
				busy = true
			}
		}
		if !busy {
			return deal{}, false, nil
		}
		d.mu.Lock()
		if d.claiming == 0 {
			// Fresh reads list only versions this process dealt, yet none is in flight: they
			// were claimed a moment ago and the index still lists them. With nothing in
			// flight the exclusions protect nothing: forget them and read again, so a claim
			// decides.
			clear(d.dealt)
			clear(d.pages)
			d.mu.Unlock()
			continue
		}
		wait := d.settled
		d.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return deal{}, false, ctx.Err()
		}
	}
}

// take deals one candidate of the page of key, reading the page when there is none, or
// when it is dealt out and was read before since. Without a candidate it returns the page
// that has none left: read after since, empty (nothing listed) or busy (all dealt).
func (d *dealer) take(ctx context.Context, key pageKey, since time.Time) (deal, *page, error) {
	d.mu.Lock()
	for {
		p := d.pages[key]
		if p == nil || p.done && len(p.undealt) == 0 && p.readAt.Before(since) {
			p = d.startRead(ctx, key)
		}
		if !p.done {
			d.mu.Unlock()
			select {
			case <-p.ready:
			case <-ctx.Done():
				return deal{}, nil, ctx.Err()
			}
			d.mu.Lock()
			if p.err != nil {
				d.mu.Unlock()
				return deal{}, nil, p.err
			}
			continue // the page may have been dropped meanwhile
		}
		for n := len(p.undealt); n > 0; n-- {
			c := p.undealt[n-1]
			p.undealt = p.undealt[:n-1]
			if d.dealt[keyOf(c)] {
				continue // dealt from the page of an overlapping prefix since this read
			}
			d.dealt[keyOf(c)] = true
			d.claiming++
			d.mu.Unlock()
			return deal{c, p}, nil, nil
		}
		d.mu.Unlock()
		return deal{}, p, nil
	}
}

// startRead makes a new current page for key and reads it in the background. The caller
// holds d.mu.
func (d *dealer) startRead(ctx context.Context, key pageKey) *page {
	p := &page{key: key, readAt: time.Now(), ready: make(chan struct{})}
	d.pages[key] = p
	readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pageReadTimeout)
	go func() {
		defer cancel()
		listed, err := d.read(readCtx, key.shard, key.prefix)
		d.mu.Lock()
		p.err, p.listed = err, listed
		for _, c := range listed {
			if !d.dealt[keyOf(c)] {
				p.undealt = append(p.undealt, c)
			}
		}
		rand.Shuffle(len(p.undealt), func(i, j int) { p.undealt[i], p.undealt[j] = p.undealt[j], p.undealt[i] })
		p.done = true
		if err != nil && d.pages[key] == p {
			delete(d.pages, key)
		}
		d.mu.Unlock()
		close(p.ready)
	}()
	return p
}

// settle records what the claim of c did.
func (s *session) settle(c deal, o outcome) {
	d := s.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.claiming--
	switch o {
	case untouched:
		delete(d.dealt, keyOf(c.Sandbox))
	case lost:
		if d.pages[c.from.key] == c.from {
			delete(d.pages, c.from.key)
		}
	}
	close(d.settled)
	d.settled = make(chan struct{})
}

// claimOutcome reads what Broker.claim answered: a created allocation won; a claim that
// is not done lost the race; a replay or an error left the candidate as it was (an error
// may hide a committed claim, which a second deal only loses).
func claimOutcome(alloc Allocation, done bool, err error) outcome {
	switch {
	case err == nil && done && alloc.Created:
		return won
	case err == nil && !done:
		return lost
	}
	return untouched
}
