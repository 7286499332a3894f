package events

import (
	"time"

	eventschema "github.com/sandbox-broker/broker/api/events"
)

// Source is the source of every event the broker puts on its bus.
const Source = "sandbox-broker"

// Version is the version of the events' schemas (api/events/events.v1.json): a change a
// consumer could trip over is a new version, published beside the old one.
const Version = eventschema.Version

// Type is an event's type; on the bus it is the event's detail-type.
type Type string

// The event types: one per transition of docs/architecture.md §4, per drain started or
// ended, and per name prefix turning low or recovering (docs/operations.md).
const (
	Added               Type = "sandbox.added"
	Allocated           Type = "sandbox.allocated"
	Extended            Type = "sandbox.extended"
	Released            Type = "sandbox.released"
	Expired             Type = "sandbox.expired"
	DeletionRequested   Type = "sandbox.deletion_requested"
	PreDeleteStep       Type = "sandbox.pre_delete_step"
	DeletionAttemptFail Type = "sandbox.deletion_attempt_failed"
	DeletionFailed      Type = "sandbox.deletion_failed"
	DeletionRetried     Type = "sandbox.deletion_retried"
	Deleted             Type = "sandbox.deleted"
	Retired             Type = "sandbox.retired"
	Stale               Type = "sandbox.stale"
	BackFromStale       Type = "sandbox.back_from_stale"
	Removed             Type = "sandbox.removed"
	DrainStarted        Type = "drain.started"
	DrainEnded          Type = "drain.ended"
	PrefixLow           Type = "pool.prefix_low"
	PrefixRecovered     Type = "pool.prefix_recovered"
	// A reservation ahead of its window that the pool can no longer cover, and one that
	// can be again (the reservations job's verdict; docs/architecture.md §5, "Reservations").
	ReservationUncoverable Type = "reservation.uncoverable"
	ReservationCovered     Type = "reservation.covered"
)

// Types lists every type, in lifecycle order.
var Types = []Type{Added, Allocated, Extended, Released, Expired, DeletionRequested, PreDeleteStep,
	DeletionAttemptFail, DeletionFailed, DeletionRetried, Deleted, Retired, Stale, BackFromStale, Removed,
	DrainStarted, DrainEnded, PrefixLow, PrefixRecovered, ReservationUncoverable, ReservationCovered}

// Event is one domain event: the detail of what the bus carries. Times are UTC, to the
// millisecond where the transition recorded one.
type Event struct {
	Version string `json:"version"`
	// ID is the same for every delivery of the event: a consumer deduplicates by it.
	ID   string `json:"event_id"`
	Type Type   `json:"type"`
	// Sequence orders the events of one sandbox (its record's version, which every write
	// raises, so it has gaps) or of one drain prefix (the entry's time in milliseconds).
	Sequence int64     `json:"sequence"`
	Time     time.Time `json:"time"`

	Sandbox *Sandbox `json:"sandbox,omitempty"`
	Drain   *Drain   `json:"drain,omitempty"`
	Prefix  *Prefix  `json:"prefix,omitempty"`
	// Reservation is the reservation of a reservation event.
	Reservation *Reservation `json:"reservation,omitempty"`
	// Lab is the track the sandbox was allocated for; Client the token's name that
	// allocated it; Student the student ID that client sent. They are set from the
	// allocation on, until the record is gone.
	Lab     string  `json:"lab,omitempty"`
	Client  string  `json:"client,omitempty"`
	Student string  `json:"student,omitempty"`
	Actor   Actor   `json:"actor"`
	Status  *Status `json:"status,omitempty"`

	AllocatedAt         *time.Time `json:"allocated_at,omitempty"`
	ExpiresAt           *time.Time `json:"expires_at,omitempty"`
	PreviousExpiresAt   *time.Time `json:"previous_expires_at,omitempty"`
	DeletionRequestedAt *time.Time `json:"deletion_requested_at,omitempty"`
	// Attempts is the count of failed CSP deletes so far; NextAttemptAt the next one.
	Attempts      int        `json:"attempts,omitempty"`
	NextAttemptAt *time.Time `json:"next_attempt_at,omitempty"`
	// ErrorClass says what kind of failure the last CSP delete (or pre-delete step) had,
	// never its text (ErrorClassOf).
	ErrorClass string `json:"error_class,omitempty"`
	// PreDelete is the outcome of cleanup's NIOSXaaS pre-delete step.
	PreDelete *PreDelete `json:"pre_delete,omitempty"`
}

// Sandbox names the sandbox of an event.
type Sandbox struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Prefix is the lab part of the name (pool.NamePrefix: "lab-dns-0007" → "lab-dns"),
	// what students send as X-Sandbox-Name-Prefix and the stats count by.
	Prefix        string `json:"prefix"`
	ExternalID    string `json:"external_id,omitempty"`
	SFDCAccountID string `json:"sfdc_account_id,omitempty"`
}

// Drain is the drain of a drain event.
type Drain struct {
	// Prefix is the name prefix drained; "" drains every allocation.
	Prefix string `json:"prefix"`
	Reason string `json:"reason,omitempty"`
}

// Prefix is a name prefix's signals (pool.PrefixSignal) of a prefix event.
type Prefix struct {
	Prefix    string  `json:"prefix"`
	Available int     `json:"available"`
	PerMinute float64 `json:"per_minute"`
	// MinutesToEmpty is the forecast; nil when nothing was allocated in the rate window.
	MinutesToEmpty *float64 `json:"minutes_to_empty,omitempty"`
	LowWater       int      `json:"low_water"`
	LeadMinutes    float64  `json:"lead_minutes"`
	Reasons        []string `json:"reasons"`
}

// Reservation is a reservation's seats and coverage (pool.Reservation) in a reservation
// event; the lab and client are the event's.
type Reservation struct {
	ID       string    `json:"id"`
	Prefix   string    `json:"prefix"`
	Seats    int       `json:"seats"`
	StartsAt time.Time `json:"starts_at"`
	EndsAt   time.Time `json:"ends_at"`
	SetAside int       `json:"set_aside"`
	// Shortfall is how many seats the pool lacks; 0 when it covers them.
	Shortfall int `json:"shortfall"`
}

// Actor is who caused the event: kind student, admin or job, and the name of an admin
// client or a job (a student's ID is the event's Student). Never a token.
type Actor struct {
	Kind      string `json:"kind"`
	Name      string `json:"name,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

// Status is the transition's from and to status.
type Status struct {
	From string `json:"from,omitempty"`
	To   string `json:"to"`
}

// PreDelete is the outcome of a NIOSXaaS pre-delete step.
type PreDelete struct {
	Outcome  string `json:"outcome"`
	Services int    `json:"services"`
}

// Key is what the order of events is kept within: one sandbox, one drain prefix or one
// name prefix's signals.
func (e Event) Key() string {
	if e.Drain != nil {
		return "drain\x00" + e.Drain.Prefix
	}
	if e.Prefix != nil {
		return "prefix\x00" + e.Prefix.Prefix
	}
	if e.Sandbox != nil {
		return "sandbox\x00" + e.Sandbox.ID
	}
	return ""
}
