package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/sandbox-broker/broker/pkg/pool"
)

var (
	// ErrNoSandbox: a full sweep of the pool found no free sandbox matching the request.
	ErrNoSandbox = errors.New("broker: no matching sandbox is free")
	// ErrBusy: the allocation did not settle within its claim budget. It is the caller's
	// 503, never a 409: contention is not exhaustion.
	ErrBusy = errors.New("broker: allocation did not settle, retry shortly")
	// ErrStudentLimit: the student already holds STUDENT_MAX_LIVE_ALLOCATIONS live
	// allocations at this client, under other idempotency keys.
	ErrStudentLimit = errors.New("broker: the student holds its maximum of live allocations")
	// ErrClientLimit: the client already holds its max_live_allocations.
	ErrClientLimit = errors.New("broker: the client holds its maximum of live allocations")
)

const (
	// candidatesPerQuery is one AvailableIndex page; with the pool spread over Shards it
	// covers a whole shard of a pool of several hundred, so a pick is uniform over the pool.
	candidatesPerQuery = 100
	// maxClaims bounds one allocation's claim transactions; reaching it means extreme
	// contention and ends in ErrBusy.
	maxClaims = 64
)

// AllocateRequest is one student's request for a sandbox.
type AllocateRequest struct {
	Student string
	// IdempotencyKey scopes replays; empty means the student ID. It is always scoped to the
	// student, so another student's key can never return this student's sandbox (docs/upstream.md D12).
	IdempotencyKey string
	NamePrefix     string
	TrackName      string
	// Client is the token's name. The student ID is the client's: two clients that send
	// the same one are two students.
	Client string
	// ClientCap is the client's max_live_allocations, 0 for no cap.
	ClientCap int
	RequestID string
	// terms are the lab's, resolved by Allocate from the profiles.
	terms labTerms
}

func (r AllocateRequest) holder() pool.Holder {
	return pool.Holder{Client: r.Client, Student: r.Student}
}

// Allocation is the sandbox a student holds. Created is false for a replay.
type Allocation struct {
	pool.Owner
	Created bool
}

// Allocate gives the student a free sandbox, or the one it already holds under the same
// idempotency key. It claims a free sandbox of a random shard (sweep.go); a lost claim
// moves on at once, without sleeping. A drain costs it nothing: the sandboxes a drain
// covers are out of the shards it reads (pool.StartDrain). It returns ErrNoSandbox, or
// ErrDraining when a drain covers the request, only after reads of every shard, made
// during this allocation, found nothing free that matches.
func (b *Broker) Allocate(ctx context.Context, req AllocateRequest) (Allocation, error) {
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = req.Student
	}
	by := pool.Actor{Kind: "student", Name: req.Student, RequestID: req.RequestID, Reason: "allocate"}
	labs, err := b.labs.get(ctx)
	if err != nil {
		return Allocation{}, err
	}
	req.terms = b.termsFor(labs.Profiles, req.TrackName, req.NamePrefix)
	limit := req.terms.studentLimit
	// With more than one slot a key may sit above a slot freed since: its replay must find
	// it, whatever its slot, and the claims start at the first slot not held live. With
	// one slot, the default, the claim's own condition on slot 0 finds the key, and no
	// read is made.
	firstSlot := 0
	if limit > 1 {
		replay, held, err := b.heldSlots(ctx, req, by)
		switch {
		case err != nil || replay != nil:
			return replayOf(replay), err
		case len(held) >= limit:
			// Slots above the limit count too: the limit may have been lowered since.
			return Allocation{}, ErrStudentLimit
		}
		for held[firstSlot] {
			firstSlot++
		}
	}
	// The lab's set-asides first, one reservation after the other, then the general pool
	// unless a reservation forbids it (reservations.go).
	sources := sourcesFor(labs.Reservations, req, b.now().Unix())
	picks := b.newSweep(req.NamePrefix, sources[0])
	caps := newCapShards(req.ClientCap)
	settles := 0
	for claims := 0; claims < maxClaims; {
		c, found, err := picks.next(ctx)
		if err != nil {
			return Allocation{}, err
		}
		if !found && len(sources) > 1 {
			sources = sources[1:]
			picks = b.newSweep(req.NamePrefix, sources[0])
			continue
		}
		if !found {
			return b.nothingFree(ctx, req, by)
		}
		claims++
		alloc, done, err := b.claim(ctx, c, req, firstSlot, caps, by)
		switch {
		case errors.Is(err, ErrStudentLimit):
			// Every slot up to the limit is held: the key may be held above it, by an
			// allocation made under a higher limit.
			return b.replayOr(ctx, req, by, ErrStudentLimit)
		case errors.Is(err, errCapUnsplit), errors.Is(err, errCapClosed):
			if settles++; settles > maxCapSettles {
				return Allocation{}, ErrBusy
			}
			if err := b.settleCap(ctx, req, err); err != nil {
				return Allocation{}, err
			}
			caps = newCapShards(req.ClientCap)
		case done || err != nil:
			return alloc, err
		}
	}
	return Allocation{}, ErrBusy
}

// heldSlots reads the holder's owner records (one query): the live allocation under the
// request's key, if any, whatever its slot (one under it that lapsed is ended), and the
// slots the holder's other live allocations hold.
func (b *Broker) heldSlots(ctx context.Context, req AllocateRequest, by pool.Actor) (*pool.Owner, map[int]bool, error) {
	owners, err := b.pool.OwnerRecords(ctx, req.holder())
	if err != nil {
		return nil, nil, err
	}
	held := map[int]bool{}
	for _, o := range owners {
		switch {
		case o.IdempotencyKey == req.IdempotencyKey && !b.lapsed(o):
			return &o, nil, nil
		case o.IdempotencyKey == req.IdempotencyKey:
			if err := b.expireLapsed(ctx, o, by); err != nil {
				return nil, nil, err
			}
		case !b.lapsed(o):
			held[o.Slot] = true
		}
	}
	return nil, held, nil
}

func replayOf(o *pool.Owner) Allocation {
	if o == nil {
		return Allocation{}
	}
	return Allocation{Owner: *o}
}

// claim tries one candidate, in the holder's first free owner slot from firstSlot on
// (docs/architecture.md §5): a slot held under the request's idempotency key is the
// replay; one held under another key is stepped over; a lapsed one is ended first. No
// free slot is ErrStudentLimit. A client with a cap takes a random counter shard that may
// have room with it; a shard that refuses makes the claim read which have room
// (fullShard), and none having any is ErrClientLimit, or errCapUnsplit or errCapClosed
// for the caller to settle. done is false when someone else got the candidate first, or
// a lapsed allocation was ended: the caller picks again.
func (b *Broker) claim(ctx context.Context, candidate pool.Sandbox, req AllocateRequest, firstSlot int, caps *capShards, by pool.Actor) (Allocation, bool, error) {
	now := b.now()
	c := pool.Claim{
		Student: req.Student, IdempotencyKey: req.IdempotencyKey, TrackName: req.TrackName, Client: req.Client,
		AllocatedAt: now.Unix(), ExpiresAt: now.Add(req.terms.duration).Unix(), Cap: req.ClientCap, Slot: firstSlot,
		Stamps: req.terms.stamps(now),
	}
	for c.Slot < req.terms.studentLimit {
		if c.Cap > 0 {
			var ok bool
			if c.CapShard, ok = caps.pick(); !ok {
				return Allocation{}, true, ErrClientLimit
			}
		}
		owner, err := b.pool.Claim(ctx, candidate, c, by)
		var ce *pool.ConditionError
		switch {
		case err == nil:
			return Allocation{Owner: owner, Created: true}, true, nil
		case errors.As(err, &ce) && ce.Item == pool.ItemOwner && ce.Owner != nil:
			if b.lapsed(*ce.Owner) {
				return Allocation{}, false, b.expireLapsed(ctx, *ce.Owner, by)
			}
			if ce.Owner.IdempotencyKey == req.IdempotencyKey {
				return Allocation{Owner: *ce.Owner}, true, nil
			}
			c.Slot++
		case errors.As(err, &ce) && ce.Item == pool.ItemCounter:
			// One read tells which shards have room: a client at its cap is refused
			// after one claim and one read, not one claim per shard.
			if err := b.fullShard(ctx, req, ce.Counter, caps); err != nil {
				return Allocation{}, true, err
			}
		case pool.LostRace(err):
			return Allocation{}, false, nil
		default:
			return Allocation{}, true, err
		}
	}
	return Allocation{}, true, ErrStudentLimit
}

// lapsed reports whether an allocation is past its expiry and grace: the student must
// not be handed a sandbox the expiry job is about to take back, nor be held to the limit
// by it.
func (b *Broker) lapsed(owner pool.Owner) bool {
	return owner.ExpiresAt <= b.lapseCutoff()
}

// lapseCutoff is the expires_at at or before which an allocation has lapsed: now minus
// the grace, the expiry job's cutoff.
func (b *Broker) lapseCutoff() int64 { return b.now().Add(-b.grace).Unix() }

// expireLapsed ends a lapsed allocation here, as the expiry job would. Losing to another
// ending is fine.
func (b *Broker) expireLapsed(ctx context.Context, owner pool.Owner, by pool.Actor) error {
	s, err := b.pool.Get(ctx, owner.SandboxID)
	if err != nil {
		return fmt.Errorf("broker: expire lapsed allocation: %w", err)
	}
	by.Reason = "expired at replay"
	if _, err := b.pool.Expire(ctx, s, b.lapseCutoff(), by); err != nil && !errors.Is(err, pool.ErrConflict) {
		return err
	}
	return nil
}

// replayOr decides an allocation that found no sandbox to claim (otherwise is
// ErrNoSandbox) or no free owner slot (ErrStudentLimit): the holder may still hold a
// sandbox under this key (a lapsed one is ended), or already hold its limit under others.
func (b *Broker) replayOr(ctx context.Context, req AllocateRequest, by pool.Actor, otherwise error) (Allocation, error) {
	replay, held, err := b.heldSlots(ctx, req, by)
	switch {
	case err != nil || replay != nil:
		return replayOf(replay), err
	case len(held) >= req.terms.studentLimit:
		return Allocation{}, ErrStudentLimit
	}
	return Allocation{}, otherwise
}
