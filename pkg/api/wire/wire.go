// Package wire holds the JSON shapes of the admin API (api/openapi.yaml) and the error
// envelope of every route: the handlers write them and brokerctl reads them, so the two
// cannot drift. It depends on nothing.
package wire

// Statuses are the sandbox statuses, in the order listings and statistics use.
var Statuses = []string{"available", "allocated", "pending_deletion", "stale", "deletion_failed", "deleted", "retired"}

// Sandbox is a sandbox as operators see it: the student route's fields plus the lifecycle,
// times in unix seconds, null when not set.
type Sandbox struct {
	SandboxID        string  `json:"sandbox_id"`
	Name             string  `json:"name"`
	ExternalID       string  `json:"external_id"`
	SFDCAccountID    *string `json:"sfdc_account_id"`
	Status           string  `json:"status"`
	AllocatedToTrack *string `json:"allocated_to_track"`
	IdempotencyKey   *string `json:"idempotency_key"`
	TrackName        *string `json:"track_name"`
	Client           *string `json:"client"`
	AllocatedAt      *int64  `json:"allocated_at"`
	ExpiresAt        *int64  `json:"expires_at"`
	// Profile names the lab profile the allocation was made under, MaxExpiresAt the
	// latest expires_at it may be extended to: both null when it follows the configuration.
	Profile             *string `json:"profile"`
	MaxExpiresAt        *int64  `json:"max_expires_at"`
	DeletionRequestedAt *int64  `json:"deletion_requested_at"`
	Attempts            int     `json:"attempts"`
	NextAttemptAt       *int64  `json:"next_attempt_at"`
	LastError           *string `json:"last_error"`
	// The outcome of cleanup's NIOSXaaS pre-delete step: cleaned, none_to_clean, shadow or
	// failed (null: never run), the services it deleted or would have, the failure's
	// reason, when it was recorded, and how many times it failed.
	NIOSXaaSOutcome  *string `json:"niosxaas_outcome"`
	NIOSXaaSServices int     `json:"niosxaas_services"`
	NIOSXaaSReason   *string `json:"niosxaas_reason"`
	NIOSXaaSAt       *int64  `json:"niosxaas_at"`
	NIOSXaaSFailures int     `json:"niosxaas_failures"`
	MissedSyncs      int     `json:"missed_syncs"`
	StaleSince       *int64  `json:"stale_since"`
	LastSynced       *int64  `json:"last_synced"`
	CreatedAt        *int64  `json:"created_at"`
	UpdatedAt        *int64  `json:"updated_at"`
}

// SandboxList is the answer of GET /v1/admin/sandboxes (upstream's shape); Cursor is null
// on the last page.
type SandboxList struct {
	Sandboxes []Sandbox `json:"sandboxes"`
	Count     int       `json:"count"`
	Cursor    *string   `json:"cursor"`
}

// HistoryEntry is one transition; From is null for a sandbox's creation, To is "deleted"
// for its removal. At is RFC 3339 in UTC with milliseconds (TimeLayout).
type HistoryEntry struct {
	At        string  `json:"at"`
	From      *string `json:"from"`
	To        *string `json:"to"`
	Reason    *string `json:"reason"`
	ActorKind *string `json:"actor_kind"`
	Actor     *string `json:"actor"`
	RequestID *string `json:"request_id"`
}

// TimeLayout is how instants that are not unix seconds (history entries, job runs) are
// written, so entries of the same second keep their order when read.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// SandboxDetail is the answer of GET /v1/admin/sandboxes/{id}: Sandbox is null once the
// sandbox is deleted and only its history is left.
type SandboxDetail struct {
	Sandbox *Sandbox       `json:"sandbox"`
	History []HistoryEntry `json:"history"`
}

// Stats keeps upstream's top-level keys and adds the tombstone counts and the available
// count per name prefix. Total counts live sandboxes, tombstones not.
type Stats struct {
	Total             int            `json:"total"`
	Available         int            `json:"available"`
	Allocated         int            `json:"allocated"`
	PendingDeletion   int            `json:"pending_deletion"`
	Stale             int            `json:"stale"`
	DeletionFailed    int            `json:"deletion_failed"`
	Deleted           int            `json:"deleted"`
	Retired           int            `json:"retired"`
	AvailableByPrefix map[string]int `json:"available_by_prefix"`
	// OldestPendingDeletionAt is the earliest deletion_requested_at of the pending
	// deletions (unix seconds), null when none is pending: how far behind cleanup is.
	OldestPendingDeletionAt *int64 `json:"oldest_pending_deletion_at"`
	// Drains are the drains in force; empty when allocations run everywhere.
	Drains []Drain `json:"drains"`
	// Prefixes are each name prefix's signals as the pool-metrics job last counted them.
	Prefixes []PrefixSignal `json:"prefixes"`
}

// PrefixSignal is one name prefix's level, rate and forecast (pool.PrefixSignal).
type PrefixSignal struct {
	Prefix    string  `json:"prefix"`
	Available int     `json:"available"`
	PerMinute float64 `json:"per_minute"`
	// MinutesToEmpty is null when nothing was allocated in the rate window.
	MinutesToEmpty *float64 `json:"minutes_to_empty"`
	LowWater       int      `json:"low_water"`
	LeadMinutes    float64  `json:"lead_minutes"`
	Reasons        []string `json:"reasons"`
	CountedAt      int64    `json:"counted_at"`
}

// Drain is one drain in force (PUT /v1/admin/drain).
type Drain struct {
	Prefix string  `json:"prefix"`
	Reason *string `json:"reason"`
	By     *string `json:"by"`
	Since  int64   `json:"since"`
}

// DrainState is GET /v1/admin/drain: the drains in force and their history, newest first.
type DrainState struct {
	Drains  []Drain        `json:"drains"`
	History []HistoryEntry `json:"history"`
}

// DrainsEnded is DELETE /v1/admin/drain: the prefixes whose drains ended.
type DrainsEnded struct {
	Ended []string `json:"ended"`
}

// CountOf is the count of one of Statuses, or of "total"; 0 for anything else.
func (s Stats) CountOf(status string) int {
	return map[string]int{
		"available": s.Available, "allocated": s.Allocated, "pending_deletion": s.PendingDeletion,
		"stale": s.Stale, "deletion_failed": s.DeletionFailed, "total": s.Total,
	}[status]
}

// EventReplay is the answer of POST /v1/admin/events/replay.
type EventReplay struct {
	// Messages taken from the dead-letter queue; Published events the bus accepted;
	// Deleted messages done with; Kept messages left for a later replay (their reasons are
	// in the function's log).
	Messages  int `json:"messages"`
	Published int `json:"published"`
	Deleted   int `json:"deleted"`
	Kept      int `json:"kept"`
}

// JobStarted is the 202 of a trigger.
type JobStarted struct {
	Job   string `json:"job"`
	RunID string `json:"run_id"`
}

// JobRun is one recorded run of a job.
type JobRun struct {
	RunID      string         `json:"run_id"`
	StartedAt  string         `json:"started_at"`
	DurationMS int64          `json:"duration_ms"`
	Outcome    string         `json:"outcome"`
	Reason     *string        `json:"reason"`
	Alarm      *string        `json:"alarm"`
	Counts     map[string]int `json:"counts"`
	Errors     []string       `json:"errors"`
}

// JobRuns is the answer of GET /v1/admin/jobs/{name}, newest run first.
type JobRuns struct {
	Job  string   `json:"job"`
	Runs []JobRun `json:"runs"`
}

// Bulk is what a bulk delete did; Status is "partial" when it stopped with records left
// and another call continues. GracePeriodHours is set by auto-delete-stale only.
type Bulk struct {
	Status           string `json:"status"`
	Deleted          int    `json:"deleted"`
	Skipped          int    `json:"skipped"`
	DurationMS       int64  `json:"duration_ms"`
	GracePeriodHours int    `json:"grace_period_hours,omitempty"`
}

// ErrorEnvelope is the body of every error answer of the API (pkg/api.Envelope writes it):
//
//	{"detail": {"code": "...", "message": "...", "request_id": "...", "retry_after": N}}
//
// request_id equals the X-Request-ID header of the same response; retry_after is present
// only when positive.
type ErrorEnvelope struct {
	Detail ErrorDetail `json:"detail"`
}

// ErrorDetail says what went wrong: Code is stable for programs, Message is for people.
type ErrorDetail struct {
	Code       string `json:"code"`
	Message    string `json:"message"`
	RequestID  string `json:"request_id"`
	RetryAfter int    `json:"retry_after,omitempty"`
}

// Profile is a lab profile (PUT /v1/admin/profiles takes it without updated_*): 0 or ""
// leaves a value to the next matching profile, and to the configuration.
type Profile struct {
	Lab                string  `json:"lab"`
	Prefix             string  `json:"prefix"`
	LabDurationMinutes int     `json:"lab_duration_minutes"`
	ExtensionMinutes   int     `json:"extension_minutes"`
	MaxDurationMinutes int     `json:"max_duration_minutes"`
	StudentLimit       int     `json:"student_limit"`
	LowWater           int     `json:"low_water"`
	NoSandboxMessage   string  `json:"no_sandbox_message"`
	UpdatedAt          *int64  `json:"updated_at,omitempty"`
	UpdatedBy          *string `json:"updated_by,omitempty"`
}

// Profiles is GET /v1/admin/profiles.
type Profiles struct {
	Profiles []Profile `json:"profiles"`
}

// ProfileKey is DELETE /v1/admin/profiles: the key of the profile removed.
type ProfileKey struct {
	Lab    string `json:"lab"`
	Prefix string `json:"prefix"`
}

// Reservation is a reservation of seats of a name prefix for a lab (POST
// /v1/admin/reservations takes lab, client, prefix, seats, starts_at, ends_at,
// lead_minutes and overflow).
type Reservation struct {
	ID          string `json:"id"`
	Lab         string `json:"lab"`
	Client      string `json:"client"`
	Prefix      string `json:"prefix"`
	Seats       int    `json:"seats"`
	StartsAt    int64  `json:"starts_at"`
	EndsAt      int64  `json:"ends_at"`
	LeadMinutes int    `json:"lead_minutes"`
	Overflow    bool   `json:"overflow"`
	// State is scheduled, cancelled or ended; SetAside counts the seats set aside so far
	// (claimed ones included); Coverage is the reservations job's last verdict (ok, short
	// or "" before its first), with the shortfall in seats.
	State     string `json:"state"`
	SetAside  int    `json:"set_aside"`
	Coverage  string `json:"coverage"`
	Shortfall int    `json:"shortfall"`
}

// Reservations is GET /v1/admin/reservations.
type Reservations struct {
	Reservations []Reservation `json:"reservations"`
}

// Capacity is a capacity check's numbers (GET /v1/admin/capacity, and with a created
// reservation).
type Capacity struct {
	Prefix           string `json:"prefix"`
	Seats            int    `json:"seats"`
	At               int64  `json:"at"`
	Available        int    `json:"available"`
	PromisedToOthers int    `json:"promised_to_others"`
	HeldByOthers     int    `json:"held_by_others"`
	PendingDeletion  int    `json:"pending_deletion"`
	Shortfall        int    `json:"shortfall"`
	Coverable        bool   `json:"coverable"`
}

// ReservationCreated is POST /v1/admin/reservations: the reservation and the check it
// passed (or was forced past).
type ReservationCreated struct {
	Reservation Reservation `json:"reservation"`
	Capacity    Capacity    `json:"capacity"`
}
