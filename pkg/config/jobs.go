package config

import "time"

// Jobs tunes the background jobs (docs/architecture.md §6).
type Jobs struct {
	// StaleStrikes is how many consecutive syncs must miss an available sandbox before it
	// is marked stale.
	StaleStrikes int
	// MaxShrinkFraction is the largest share of the pool's available and stale sandboxes
	// that one listing may drop before sync distrusts it and marks nothing stale.
	MaxShrinkFraction float64
	// CleanupMaxAttempts is how many failed CSP deletes send a sandbox to deletion_failed.
	CleanupMaxAttempts int
	// CleanupBackoffBase and CleanupBackoffCap bound the retry delay after a failed delete
	// (exponential, full jitter), before IntervalScale.
	CleanupBackoffBase time.Duration
	CleanupBackoffCap  time.Duration
	// DeletesPerSecond paces the starts of cleanup's CSP deletes.
	DeletesPerSecond float64
	// CleanupMaxInFlight is how many CSP deletes cleanup runs at once. A delete takes 5–10 s
	// (docs/architecture.md §6), so reaching DeletesPerSecond takes about rate × latency of them.
	CleanupMaxInFlight int
	// StaleGrace is how long a sandbox stays stale before its record is deleted.
	StaleGrace time.Duration
	// IntervalScale (0 < s <= 1) shortens the schedules and the cleanup backoff alike, for
	// demos and tests.
	IntervalScale float64
}

// LoadJobs reads SYNC_STALE_STRIKES (2), SYNC_MAX_SHRINK_FRACTION (0.5),
// CLEANUP_MAX_ATTEMPTS (6), CLEANUP_BACKOFF_BASE_SECONDS (60), CLEANUP_BACKOFF_CAP_SECONDS
// (3600), CLEANUP_DELETES_PER_SECOND (1), CLEANUP_MAX_IN_FLIGHT (16), STALE_GRACE_HOURS (24) and
// JOB_INTERVAL_SCALE (1). A job's lease lasts as long as its run may (jobs.Job.Timeout).
func LoadJobs(env Env) (Jobs, error) {
	r := &reader{env: env}
	j := Jobs{
		StaleStrikes:       r.int("SYNC_STALE_STRIKES", 2, 1, 10),
		MaxShrinkFraction:  r.float("SYNC_MAX_SHRINK_FRACTION", 0.5, 0, 1),
		CleanupMaxAttempts: r.int("CLEANUP_MAX_ATTEMPTS", 6, 1, 100),
		CleanupBackoffBase: r.duration("CLEANUP_BACKOFF_BASE_SECONDS", 60, time.Second, 1, 24*3600),
		CleanupBackoffCap:  r.duration("CLEANUP_BACKOFF_CAP_SECONDS", 3600, time.Second, 1, 7*24*3600),
		DeletesPerSecond:   r.float("CLEANUP_DELETES_PER_SECOND", 1, 0.01, 100),
		CleanupMaxInFlight: r.int("CLEANUP_MAX_IN_FLIGHT", 16, 1, 64),
		StaleGrace:         r.duration("STALE_GRACE_HOURS", 24, time.Hour, 1, 720),
		IntervalScale:      r.float("JOB_INTERVAL_SCALE", 1, 0, 1),
	}
	if j.IntervalScale == 0 {
		r.fail("JOB_INTERVAL_SCALE", "must be greater than 0")
	}
	if j.CleanupBackoffCap < j.CleanupBackoffBase {
		r.fail("CLEANUP_BACKOFF_CAP_SECONDS", "%s is below CLEANUP_BACKOFF_BASE_SECONDS (%s)", j.CleanupBackoffCap, j.CleanupBackoffBase)
	}
	return j, r.err()
}

// Scale applies IntervalScale to a schedule interval or a backoff bound.
func (j Jobs) Scale(d time.Duration) time.Duration {
	return time.Duration(float64(d) * j.IntervalScale)
}
