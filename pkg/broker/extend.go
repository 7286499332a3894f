package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

var (
	// ErrExtensionLimit: the allocation already runs to MAX_LAB_DURATION_HOURS after it
	// was allocated.
	ErrExtensionLimit = errors.New("broker: the allocation is at its longest duration")
	// ErrLapsed: the allocation is past its expires_at and the grace. It is the expiry
	// job's (or the student's next allocation's) to end, and no longer the student's to
	// extend.
	ErrLapsed = errors.New("broker: the allocation has lapsed")
)

// Extend is the owner's lab extension: expires_at moves on by LAB_EXTENSION_HOURS, capped
// at MAX_LAB_DURATION_HOURS after allocated_at (an extension that would pass the cap
// moves expires_at to the cap; one already at the cap is ErrExtensionLimit). Only an
// allocated sandbox can be extended: once released or expired it is ErrWrongStatus, and
// once past expires_at and the grace (lapsed, before the expiry job came round) it is
// ErrLapsed, the same boundary the expiry job and a replayed allocate use (lapsed).
// Each call extends once: a retried request extends again, up to the cap.
func (b *Broker) Extend(ctx context.Context, id string, h pool.Holder, requestID string) (pool.Sandbox, error) {
	// A lost race means another extension or the expiry job wrote between the read and the
	// write: the second read shows which.
	return b.ownerWrite(ctx, "extend", id, h, func(s pool.Sandbox) (pool.Sandbox, error) {
		if s.Status != pool.Allocated {
			return pool.Sandbox{}, fmt.Errorf("%w: %s is %s, not allocated", ErrWrongStatus, id, s.Status)
		}
		cutoff := b.lapseCutoff()
		if s.ExpiresAt <= cutoff {
			return pool.Sandbox{}, fmt.Errorf("%w: %s expired at %s", ErrLapsed, id, time.Unix(s.ExpiresAt, 0).UTC().Format(time.RFC3339))
		}
		// The terms the allocation stamped, else the configuration's: a profile changed
		// since never shortens it (docs/architecture.md §5, "Lab profiles").
		limit, step := s.MaxExpiresAt, s.ExtensionSeconds
		if limit == 0 {
			limit = s.AllocatedAt + int64(b.maxLabDuration/time.Second)
		}
		if step == 0 {
			step = int64(b.labExtension / time.Second)
		}
		if s.ExpiresAt >= limit {
			return pool.Sandbox{}, ErrExtensionLimit
		}
		next := min(s.ExpiresAt+step, limit)
		by := pool.Actor{Kind: "student", Name: h.Student, RequestID: requestID,
			Reason: "extended to " + time.Unix(next, 0).UTC().Format(time.RFC3339)}
		return b.pool.Extend(ctx, s, h, next, cutoff, by)
	})
}
