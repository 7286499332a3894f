package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

var (
	// ErrNoSandbox: a full sweep of the pool found no free sandbox matching the request.
	ErrNoSandbox = errors.New("broker: no matching sandbox is free")
	// ErrBusy: the allocation did not settle within its claim budget. It is the caller's
	// 503, never a 409: contention is not exhaustion.
	ErrBusy = errors.New("broker: allocation did not settle, retry shortly")
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
	Client         string
	RequestID      string
}

// Allocation is the sandbox a student holds. Created is false for a replay.
type Allocation struct {
	pool.Owner
	Created bool
}

// Allocate gives the student a free sandbox, or the one it already holds under the same
// idempotency key. It claims a free sandbox of a random shard, dealt by the process's
// dealer (dealer.go) so concurrent allocations of one process claim distinct candidates; a
// lost claim moves on at once, without sleeping. It returns ErrNoSandbox only after reads
// of every shard, made during this allocation, found nothing free that matches.
func (b *Broker) Allocate(ctx context.Context, req AllocateRequest) (Allocation, error) {
	if req.IdempotencyKey == "" {
		req.IdempotencyKey = req.Student
	}
	by := pool.Actor{Kind: "student", Name: req.Student, RequestID: req.RequestID, Reason: "allocate"}
	startBy, err := b.drains.admit(ctx, req.NamePrefix) // see drainCache
	if err != nil {
		return b.refused(ctx, req, err)
	}
	deals := b.dealer.session(req.NamePrefix)
	defer deals.close()
	for claims := 0; claims < maxClaims; {
		c, found, err := deals.next(ctx)
		if err != nil {
			return Allocation{}, err
		}
		if !found {
			return b.replayOrNone(ctx, req, by)
		}
		claims++
		if time.Now().After(startBy) {
			if startBy, err = b.drains.admit(ctx, req.NamePrefix); err != nil {
				deals.settle(c, untouched)
				return b.refused(ctx, req, err)
			}
		}
		claimCtx, cancel := context.WithTimeout(ctx, claimCallTimeout)
		alloc, done, err := b.claim(claimCtx, c.Sandbox, req, by)
		cancel()
		deals.settle(c, claimOutcome(alloc, done, err))
		if done || err != nil {
			return alloc, err
		}
	}
	return Allocation{}, ErrBusy
}

// claim tries one candidate. done is false when someone else got it first.
func (b *Broker) claim(ctx context.Context, candidate pool.Sandbox, req AllocateRequest, by pool.Actor) (Allocation, bool, error) {
	now := b.now()
	owner, err := b.pool.Claim(ctx, candidate, pool.Claim{
		Student: req.Student, IdempotencyKey: req.IdempotencyKey, TrackName: req.TrackName, Client: req.Client,
		AllocatedAt: now.Unix(), ExpiresAt: now.Add(b.labDuration).Unix(),
	}, by)
	var ce *pool.ConditionError
	switch {
	case err == nil:
		return Allocation{Owner: owner, Created: true}, true, nil
	case errors.As(err, &ce) && ce.Item == pool.ItemOwner && ce.Owner != nil:
		return b.replay(ctx, *ce.Owner, by)
	case pool.LostRace(err):
		return Allocation{}, false, nil
	}
	return Allocation{}, true, err
}

// replay returns the student's live allocation. One already past its expiry and grace is
// ended here, as the expiry job would, and done is false so a fresh sandbox is claimed:
// the student must not be handed a sandbox the job is about to take back.
func (b *Broker) replay(ctx context.Context, owner pool.Owner, by pool.Actor) (Allocation, bool, error) {
	cutoff := b.now().Add(-b.grace).Unix()
	if owner.ExpiresAt > cutoff {
		return Allocation{Owner: owner}, true, nil
	}
	s, err := b.pool.Get(ctx, owner.SandboxID)
	if err != nil {
		return Allocation{}, true, fmt.Errorf("broker: expire lapsed allocation: %w", err)
	}
	by.Reason = "expired at replay"
	if _, err := b.pool.Expire(ctx, s, cutoff, by); err != nil && !errors.Is(err, pool.ErrConflict) {
		return Allocation{}, true, err
	}
	return Allocation{}, false, nil
}

// replayOrNone decides an empty sweep: the student may still hold a sandbox under this key.
func (b *Broker) replayOrNone(ctx context.Context, req AllocateRequest, by pool.Actor) (Allocation, error) {
	owner, found, err := b.pool.OwnerRecord(ctx, req.Student, req.IdempotencyKey)
	if err != nil {
		return Allocation{}, err
	}
	if !found {
		return Allocation{}, ErrNoSandbox
	}
	alloc, done, err := b.replay(ctx, owner, by)
	if err != nil || done {
		return alloc, err
	}
	return Allocation{}, ErrNoSandbox
}
