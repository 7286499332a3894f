package config

import "time"

// Pool is what every function touching the table needs.
type Pool struct {
	TableName string
	// Endpoint points the SDK at DynamoDB Local or another endpoint; empty means AWS.
	Endpoint string
	Region   string
	// LabDuration is stamped on each allocation as expires_at; Grace is added before expiry.
	LabDuration time.Duration
	Grace       time.Duration
	// LabExtension is what one POST /v1/sandboxes/{id}/extend adds to expires_at, never
	// past MaxLabDuration after allocated_at.
	LabExtension   time.Duration
	MaxLabDuration time.Duration
	HistoryTTL     time.Duration
	// TombstoneTTL is how long a deleted or retired record (and its account uuid) is kept,
	// so no late listing can hand the account out again.
	TombstoneTTL time.Duration
	// StudentMaxLiveAllocations is how many live allocations one student (at one client)
	// holds at most, across idempotency keys.
	StudentMaxLiveAllocations int
}

// The defaults of LAB_EXTENSION_HOURS and MAX_LAB_DURATION_HOURS, which the CDK stack's
// context values take too.
const (
	DefaultLabExtensionHours   = 24
	DefaultMaxLabDurationHours = 96
)

// LoadPool reads TABLE_NAME, DYNAMODB_ENDPOINT, AWS_REGION, LAB_DURATION_HOURS,
// GRACE_PERIOD_MINUTES, LAB_EXTENSION_HOURS, MAX_LAB_DURATION_HOURS, HISTORY_TTL_DAYS,
// TOMBSTONE_TTL_DAYS and STUDENT_MAX_LIVE_ALLOCATIONS. MAX_LAB_DURATION_HOURS must be at
// least LAB_DURATION_HOURS.
//
// STUDENT_MAX_LIVE_ALLOCATIONS is at most 20: an allocation by a student who holds n
// others steps over their n owner slots, one transaction each.
//
// A history entry expires HISTORY_TTL_DAYS after it was written, a tombstone
// TOMBSTONE_TTL_DAYS after the record became one. HISTORY_TTL_DAYS must therefore be at
// least TOMBSTONE_TTL_DAYS: then the tombstone's own entry, and every entry written up to
// (HISTORY_TTL_DAYS − TOMBSTONE_TTL_DAYS) before it, outlive the tombstone. The defaults
// (180 and 90) cover an allocation, release and delete within 90 days of each other
// many times over; older entries of a record that sat available for months may expire
// first.
func LoadPool(env Env) (Pool, error) {
	r := &reader{env: env}
	p := Pool{
		TableName:      r.required("TABLE_NAME"),
		Endpoint:       r.str("DYNAMODB_ENDPOINT", ""),
		Region:         r.str("AWS_REGION", "us-east-1"),
		LabDuration:    r.duration("LAB_DURATION_HOURS", 48, time.Hour, 1, 24*30),
		Grace:          r.duration("GRACE_PERIOD_MINUTES", 30, time.Minute, 0, 24*60),
		LabExtension:   r.duration("LAB_EXTENSION_HOURS", DefaultLabExtensionHours, time.Hour, 1, 24*30),
		MaxLabDuration: r.duration("MAX_LAB_DURATION_HOURS", DefaultMaxLabDurationHours, time.Hour, 1, 24*90),
		HistoryTTL:     r.duration("HISTORY_TTL_DAYS", 180, 24*time.Hour, 1, 3650),
		TombstoneTTL:   r.duration("TOMBSTONE_TTL_DAYS", 90, 24*time.Hour, 1, 3650),

		StudentMaxLiveAllocations: r.int("STUDENT_MAX_LIVE_ALLOCATIONS", 1, 1, 20),
	}
	if p.HistoryTTL > 0 && p.TombstoneTTL > 0 && p.HistoryTTL < p.TombstoneTTL {
		r.fail("HISTORY_TTL_DAYS", "must be at least TOMBSTONE_TTL_DAYS (%d), so a tombstone's history does not expire before it",
			int(p.TombstoneTTL/(24*time.Hour)))
	}
	if p.LabDuration > 0 && p.MaxLabDuration > 0 && p.MaxLabDuration < p.LabDuration {
		r.fail("MAX_LAB_DURATION_HOURS", "must be at least LAB_DURATION_HOURS (%d)", int(p.LabDuration/time.Hour))
	}
	return p, r.err()
}
