// Package breaker is the in-process circuit breaker each upstream client (the CSP,
// NIOSXaaS) keeps over its calls: consecutive failures open it, an open breaker rejects
// calls without contacting the upstream, and after a pause a single probe decides
// whether it closes again (docs/upstream.md D19: upstream let any number of probes through).
package breaker

import (
	"errors"
	"sync"
	"time"
)

// ErrOpen is returned by Allow while the breaker is open, or half-open with its single
// probe already in flight.
var ErrOpen = errors.New("circuit breaker open")

// Options configures a Breaker. Zero values take the defaults.
type Options struct {
	// Threshold is the number of consecutive failed calls that opens the
	// breaker (default 5).
	Threshold int
	// OpenFor is how long the breaker rejects calls before admitting a
	// single probe (default 60s).
	OpenFor time.Duration
	// Now replaces the clock in tests (default time.Now). Only its wall clock reading
	// counts (see New).
	Now func() time.Time
}

const (
	defaultBreakerThreshold = 5
	defaultBreakerOpenFor   = 60 * time.Second
)

// State is the state of a Breaker.
type State int

const (
	Closed State = iota
	Open
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half_open"
	}
	return "unknown"
}

// Outcome is what a finished call tells the breaker.
type Outcome int

const (
	Success Outcome = iota
	Failure
	// Ignored is for calls that say nothing about the upstream's health,
	// such as a caller cancelling its context.
	Ignored
)

// Breaker is safe for concurrent use.
type Breaker struct {
	threshold int
	openFor   time.Duration
	now       func() time.Time
	// onChange is called outside the lock, so a slow log handler never
	// stalls other calls.
	onChange func(from, to State)

	mu       sync.Mutex
	state    State
	failures int
	openedAt time.Time
	probing  bool
	// gen changes on every transition, so that a call admitted in an
	// earlier state cannot decide the current one (a slow call that started
	// while closed must not close a breaker that has since opened).
	gen uint64
}

// New builds a closed breaker. onChange, if not nil, hears every transition.
//
// A breaker lives as long as its process, across Lambda invocations, and Lambda freezes
// an idle environment between them. Where the monotonic clock stands still during a
// freeze, a pause timed on it would not pass for as long as the freezes last, and cleanup
// would stall behind an open breaker for hours: the pause is timed on the wall clock.
func New(o Options, onChange func(from, to State)) *Breaker {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	b := &Breaker{
		threshold: o.Threshold,
		openFor:   o.OpenFor,
		now:       func() time.Time { return now().Round(0) },
		onChange:  onChange,
	}
	if b.threshold == 0 {
		b.threshold = defaultBreakerThreshold
	}
	if b.openFor == 0 {
		b.openFor = defaultBreakerOpenFor
	}
	return b
}

// allow admits a call or rejects it with ErrOpen. An admitted call
// must report its Outcome exactly once through the returned function.
func (b *Breaker) Allow() (func(Outcome), error) {
	b.mu.Lock()
	from := b.state
	b.expireOpen()
	to := b.state
	var err error
	switch {
	case b.state == Open:
		err = ErrOpen
	case b.state == HalfOpen && b.probing:
		err = ErrOpen
	case b.state == HalfOpen:
		b.probing = true
	}
	gen := b.gen
	b.mu.Unlock()
	b.notify(from, to)
	if err != nil {
		return nil, err
	}
	return func(o Outcome) { b.record(gen, o) }, nil
}

func (b *Breaker) record(gen uint64, o Outcome) {
	b.mu.Lock()
	from := b.state
	if gen == b.gen {
		switch b.state {
		case Closed:
			switch o {
			case Success:
				b.failures = 0
			case Failure:
				b.failures++
				if b.failures >= b.threshold {
					b.open()
				}
			}
		case HalfOpen:
			b.probing = false
			switch o {
			case Success:
				b.set(Closed)
			case Failure:
				b.open()
			}
		}
	}
	to := b.state
	b.mu.Unlock()
	b.notify(from, to)
}

// State reports the current state; an open breaker whose time is up reads
// as half-open, which is what the next call will find.
func (b *Breaker) State() State {
	b.mu.Lock()
	from := b.state
	b.expireOpen()
	to := b.state
	b.mu.Unlock()
	b.notify(from, to)
	return to
}

// expireOpen ends the pause of an open breaker once OpenFor has passed on the wall
// clock, or the wall clock went back past the opening (a clock step): a probe too early
// costs one call, a pause as long as the step could cost hours.
func (b *Breaker) expireOpen() {
	if open := b.now().Sub(b.openedAt); b.state == Open && (open >= b.openFor || open < 0) {
		b.set(HalfOpen)
	}
}

func (b *Breaker) open() {
	b.set(Open)
	b.openedAt = b.now()
}

func (b *Breaker) set(s State) {
	b.state = s
	b.failures = 0
	b.probing = false
	b.gen++
}

func (b *Breaker) notify(from, to State) {
	if from != to && b.onChange != nil {
		b.onChange(from, to)
	}
}
