package jobs

import "time"

// startBucket paces the starts of a run's CSP deletes: a token bucket refilled at
// DeletesPerSecond, shared by every call of the run, that holds a single token. A burst of
// one never sends two deletes closer than gap, so a CSP limiter that tolerates no burst at
// all (the safe assumption: its burst is not published, and the fake CSP's defaults to one)
// sees the configured rate and no more. A larger burst would send a clump at the start of
// every run and after every pause, which such a limiter answers with a 429 for all but
// the first, each 429 then pausing every start for a second or more. A token the run was
// too busy to take is not saved up either: starts that come late do not catch up.
type startBucket struct {
	gap  time.Duration
	next time.Time
	// pauses counts the pauses a 429 caused, so an answer can tell whether its call
	// started after the last one.
	pauses int
}

// wait is how long until the next start may go.
func (b *startBucket) wait() time.Duration { return max(0, time.Until(b.next)) }

// take spends the token for a start now.
func (b *startBucket) take() { b.next = time.Now().Add(b.gap) }

// pause holds every start for the CSP's Retry-After.
func (b *startBucket) pause(retryAfter time.Duration) {
	b.pauses++
	b.extend(retryAfter)
}

// extend holds every start at least retryAfter from now, without counting a new pause.
func (b *startBucket) extend(retryAfter time.Duration) {
	if until := time.Now().Add(retryAfter); until.After(b.next) {
		b.next = until
	}
}
