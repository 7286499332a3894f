package config

import (
	"net/url"
	"time"
)

// Events is what the functions of the domain events need (pkg/events): the bus they
// publish to and the dead-letter queue, and how long a record's event may keep failing
// before it is dead-lettered.
type Events struct {
	// BusName is the EventBridge bus (name or ARN) the events go to.
	BusName string
	// DeadLetterURL is the SQS queue that keeps what cannot be delivered.
	DeadLetterURL string
	// DeadLetterAfter is how old a stream record may grow while the bus keeps failing its
	// event before the event is dead-lettered (events.Deliverer.DeadLetterAfter).
	DeadLetterAfter time.Duration
	// ReplayLimit bounds the messages one replay takes.
	ReplayLimit int
}

// EventsMaxRecordAge is how old a stream record may grow before Lambda's event source
// mapping gives up on its batch (the stack sets it): DeadLetterAfter stays below it, so the
// function dead-letters an event in full before the mapping could give up on its record.
const EventsMaxRecordAge = time.Hour

// LoadEvents reads EVENT_BUS_NAME and EVENTS_DLQ_URL (both required),
// EVENTS_DEAD_LETTER_AFTER_SECONDS (900) and EVENTS_REPLAY_LIMIT (500).
func LoadEvents(env Env) (Events, error) {
	r := &reader{env: env}
	e := Events{
		BusName:         r.required("EVENT_BUS_NAME"),
		DeadLetterURL:   r.required("EVENTS_DLQ_URL"),
		DeadLetterAfter: r.duration("EVENTS_DEAD_LETTER_AFTER_SECONDS", 900, time.Second, 60, int((EventsMaxRecordAge-10*time.Minute)/time.Second)),
		ReplayLimit:     r.int("EVENTS_REPLAY_LIMIT", 500, 10, 5000),
	}
	if u, err := url.Parse(e.DeadLetterURL); e.DeadLetterURL != "" && (err != nil || u.Scheme == "" || u.Host == "") {
		r.fail("EVENTS_DLQ_URL", "%q is not a queue URL", e.DeadLetterURL)
	}
	return e, r.err()
}
