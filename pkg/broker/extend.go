package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// ErrExtensionLimit: the allocation already runs to MAX_LAB_DURATION_HOURS after it
// was allocated.
var ErrExtensionLimit = errors.New("broker: the allocation is at its longest duration")

// Extend is the owner's lab extension: expires_at moves on by LAB_EXTENSION_HOURS, capped
// at MAX_LAB_DURATION_HOURS after allocated_at (an extension that would pass the cap
// moves expires_at to the cap; one already at the cap is ErrExtensionLimit). Only an
// allocated sandbox can be extended: once released or expired it is ErrWrongStatus.
// Each call extends once: a retried request extends again, up to the cap.
func (b *Broker) Extend(ctx context.Context, id string, h pool.Holder, requestID string) (pool.Sandbox, error) {
	s, err := b.live(ctx, id)
	// Two rounds: another extension or the expiry job may write between the read and the
	// write; the second read shows which.
	for range 2 {
		if err != nil {
			return pool.Sandbox{}, err
		}
		if !h.Holds(s) {
			return pool.Sandbox{}, ErrNotOwner
		}
		if s.Status != pool.Allocated {
			return pool.Sandbox{}, fmt.Errorf("%w: %s is %s, not allocated", ErrWrongStatus, id, s.Status)
		}
		limit := s.AllocatedAt + int64(b.maxLabDuration/time.Second)
		if s.ExpiresAt >= limit {
			return pool.Sandbox{}, ErrExtensionLimit
		}
		next := min(s.ExpiresAt+int64(b.labExtension/time.Second), limit)
		by := pool.Actor{Kind: "student", Name: h.Student, RequestID: requestID,
			Reason: "extended to " + time.Unix(next, 0).UTC().Format(time.RFC3339)}
		var extended pool.Sandbox
		if extended, err = b.pool.Extend(ctx, s, h, next, by); err == nil {
			return extended, nil
		}
		if !pool.LostRace(err) {
			return pool.Sandbox{}, err
		}
		s, err = b.live(ctx, id)
	}
	return pool.Sandbox{}, fmt.Errorf("broker: extend %s: %w", id, ErrBusy)
}
