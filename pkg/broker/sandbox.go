package broker

import (
	"context"
	"errors"
	"fmt"

	"github.com/sandbox-broker/broker/pkg/pool"
)

var (
	// ErrNotFound: no such sandbox, or only its tombstone (docs/architecture.md §4).
	ErrNotFound = errors.New("broker: sandbox not found")
	// ErrNotOwner: the sandbox exists but is not the student's (at this client).
	ErrNotOwner = errors.New("broker: sandbox is not allocated to this student")
)

// Sandbox returns a sandbox to the holder (client and student) it was allocated to — also
// after release, until it is deleted.
func (b *Broker) Sandbox(ctx context.Context, id string, h pool.Holder) (pool.Sandbox, error) {
	s, err := b.live(ctx, id)
	if err != nil {
		return pool.Sandbox{}, err
	}
	if !h.Holds(s) {
		return pool.Sandbox{}, ErrNotOwner
	}
	return s, nil
}

// Release is the student's mark-for-deletion. It is idempotent for the owner: a sandbox
// already pending deletion (or whose deletion failed) is returned as it is. The owner may
// release at any time while allocated, also between expires_at and the end of the grace.
func (b *Broker) Release(ctx context.Context, id string, h pool.Holder, requestID string) (pool.Sandbox, error) {
	by := pool.Actor{Kind: "student", Name: h.Student, RequestID: requestID, Reason: "mark-for-deletion"}
	s, err := b.live(ctx, id)
	// Two rounds: the expiry job may end the allocation between the read and the write,
	// and the second read then shows the sandbox already pending deletion.
	for range 2 {
		if err != nil {
			return pool.Sandbox{}, err
		}
		if !h.Holds(s) {
			return pool.Sandbox{}, ErrNotOwner
		}
		if s.Status != pool.Allocated {
			return s, nil
		}
		var released pool.Sandbox
		if released, err = b.pool.Release(ctx, s, h, by); err == nil {
			return released, nil
		}
		if !pool.LostRace(err) {
			return pool.Sandbox{}, err
		}
		s, err = b.live(ctx, id)
	}
	return pool.Sandbox{}, fmt.Errorf("broker: release %s: %w", id, ErrBusy)
}

// live reads a sandbox for its student: a tombstone answers ErrNotFound, as a removed
// record did before tombstones existed, which the upstream clients rely on.
func (b *Broker) live(ctx context.Context, id string) (pool.Sandbox, error) {
	s, err := b.pool.Get(ctx, id)
	if err != nil {
		return pool.Sandbox{}, notFound(err)
	}
	if s.Status.Tombstone() {
		return pool.Sandbox{}, ErrNotFound
	}
	return s, nil
}

func notFound(err error) error {
	if errors.Is(err, pool.ErrNotFound) {
		return ErrNotFound
	}
	return err
}
