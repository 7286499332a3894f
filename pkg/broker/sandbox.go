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
	// A lost race means the expiry job ended the allocation between the read and the
	// write: the second read shows the sandbox already pending deletion.
	return b.ownerWrite(ctx, "release", id, h, func(s pool.Sandbox) (pool.Sandbox, error) {
		if s.Status != pool.Allocated {
			return s, nil
		}
		return b.pool.Release(ctx, s, h, by)
	})
}

// ownerWrite runs write on sandbox id once h is found to hold it. write answers the
// sandbox as it left it; when it loses a race (another write came between the read and
// its own), the sandbox is read again and write runs once more on what that read shows.
func (b *Broker) ownerWrite(ctx context.Context, op, id string, h pool.Holder, write func(pool.Sandbox) (pool.Sandbox, error)) (pool.Sandbox, error) {
	s, err := b.live(ctx, id)
	for range 2 {
		if err != nil {
			return pool.Sandbox{}, err
		}
		if !h.Holds(s) {
			return pool.Sandbox{}, ErrNotOwner
		}
		var written pool.Sandbox
		if written, err = write(s); err == nil {
			return written, nil
		}
		if !pool.LostRace(err) {
			return pool.Sandbox{}, err
		}
		s, err = b.live(ctx, id)
	}
	return pool.Sandbox{}, fmt.Errorf("broker: %s %s: %w", op, id, ErrBusy)
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
