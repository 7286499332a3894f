package csp

import (
	"sync"
	"time"
)

// BreakerOptions configures the circuit breaker shared by all calls of a
// Client. Zero values take the defaults.
type BreakerOptions struct {
	// Threshold is the number of consecutive failed calls that opens the
	// breaker (default 5).
	Threshold int
	// OpenFor is how long the breaker rejects calls before admitting a
	// single probe (default 60s).
	OpenFor time.Duration
	// Now replaces the clock in tests (default time.Now).
	Now func() time.Time
}

const (
	defaultBreakerThreshold = 5
	defaultBreakerOpenFor   = 60 * time.Second
)

// BreakerState is the state of a Client's circuit breaker.
type BreakerState int

const (
	BreakerClosed BreakerState = iota
	BreakerOpen
	BreakerHalfOpen
)

func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	}
	return "unknown"
}

// outcome is what a finished call tells the breaker.
type outcome int

const (
	outcomeSuccess outcome = iota
	outcomeFailure
	// outcomeIgnored is for calls that say nothing about the CSP's health,
	// such as a caller cancelling its context.
	outcomeIgnored
)

type breaker struct {
	threshold int
	openFor   time.Duration
	now       func() time.Time
	// onChange is called outside the lock, so a slow log handler never
	// stalls other calls.
	onChange func(from, to BreakerState)

	mu       sync.Mutex
	state    BreakerState
	failures int
	openedAt time.Time
	probing  bool
	// gen changes on every transition, so that a call admitted in an
	// earlier state cannot decide the current one (a slow call that started
	// while closed must not close a breaker that has since opened).
	gen uint64
}

func newBreaker(o BreakerOptions, onChange func(from, to BreakerState)) *breaker {
	b := &breaker{
		threshold: o.Threshold,
		openFor:   o.OpenFor,
		now:       o.Now,
		onChange:  onChange,
	}
	if b.threshold == 0 {
		b.threshold = defaultBreakerThreshold
	}
	if b.openFor == 0 {
		b.openFor = defaultBreakerOpenFor
	}
	if b.now == nil {
		b.now = time.Now
	}
	return b
}

// allow admits a call or rejects it with ErrCircuitOpen. An admitted call
// must report its outcome exactly once through the returned function.
func (b *breaker) allow() (func(outcome), error) {
	b.mu.Lock()
	from := b.state
	b.expireOpen()
	to := b.state
	var err error
	switch {
	case b.state == BreakerOpen:
		err = ErrCircuitOpen
	case b.state == BreakerHalfOpen && b.probing:
		err = ErrCircuitOpen
	case b.state == BreakerHalfOpen:
		b.probing = true
	}
	gen := b.gen
	b.mu.Unlock()
	b.notify(from, to)
	if err != nil {
		return nil, err
	}
	return func(o outcome) { b.record(gen, o) }, nil
}

func (b *breaker) record(gen uint64, o outcome) {
	b.mu.Lock()
	from := b.state
	if gen == b.gen {
		switch b.state {
		case BreakerClosed:
			switch o {
			case outcomeSuccess:
				b.failures = 0
			case outcomeFailure:
				b.failures++
				if b.failures >= b.threshold {
					b.open()
				}
			}
		case BreakerHalfOpen:
			b.probing = false
			switch o {
			case outcomeSuccess:
				b.set(BreakerClosed)
			case outcomeFailure:
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
func (b *breaker) State() BreakerState {
	b.mu.Lock()
	from := b.state
	b.expireOpen()
	to := b.state
	b.mu.Unlock()
	b.notify(from, to)
	return to
}

func (b *breaker) expireOpen() {
	if b.state == BreakerOpen && !b.now().Before(b.openedAt.Add(b.openFor)) {
		b.set(BreakerHalfOpen)
	}
}

func (b *breaker) open() {
	b.set(BreakerOpen)
	b.openedAt = b.now()
}

func (b *breaker) set(s BreakerState) {
	b.state = s
	b.failures = 0
	b.probing = false
	b.gen++
}

func (b *breaker) notify(from, to BreakerState) {
	if from != to && b.onChange != nil {
		b.onChange(from, to)
	}
}
