package pool

import "fmt"

// statusAtProblem says how s's status_at disagrees with its status, or "". These are the
// rules every transition keeps (StatusIndex orders each status by the moment it next
// needs attention):
//
//	available         the time it joined the pool: set, and not after updated_at
//	allocated         expires_at
//	pending_deletion  next_attempt_at once an attempt failed; before that the time the
//	                  delete was requested (or retried), not before deletion_requested_at
//	stale             stale_since
//	deletion_failed   the time it failed: updated_at
//	deleted, retired  the time it became a tombstone: updated_at, before its ttl if it has one
func statusAtProblem(s Sandbox) string {
	at := s.StatusAt
	switch {
	case at <= 0:
		return "has no status_at"
	case s.Status == Available && at > s.UpdatedAt:
		return fmt.Sprintf("status_at %d is after updated_at %d", at, s.UpdatedAt)
	case s.Status == Allocated && at != s.ExpiresAt:
		return fmt.Sprintf("status_at %d is not expires_at %d", at, s.ExpiresAt)
	case s.Status == PendingDeletion && s.Attempts > 0 && at != s.NextAttemptAt:
		return fmt.Sprintf("status_at %d is not next_attempt_at %d after %d attempts", at, s.NextAttemptAt, s.Attempts)
	case s.Status == PendingDeletion && s.Attempts == 0 && (s.NextAttemptAt != 0 || at < s.DeletionRequestedAt):
		return fmt.Sprintf("status_at %d before any attempt, with deletion_requested_at %d and next_attempt_at %d", at, s.DeletionRequestedAt, s.NextAttemptAt)
	case s.Status == Stale && at != s.StaleSince:
		return fmt.Sprintf("status_at %d is not stale_since %d", at, s.StaleSince)
	case (s.Status == DeletionFailed || s.Status.Tombstone()) && at != s.UpdatedAt:
		return fmt.Sprintf("status_at %d is not updated_at %d", at, s.UpdatedAt)
	case s.Status.Tombstone() && s.TTL != 0 && s.TTL <= at:
		return fmt.Sprintf("ttl %d is not after status_at %d", s.TTL, at)
	}
	return ""
}
