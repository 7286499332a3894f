package cspfake

import (
	"context"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DeleteWatch sees every delete request from its arrival to its answer: how many are in
// flight at once, when each 429 was answered and with which Retry-After, and, while
// holding, it keeps arriving deletes waiting until the test lets them go. It lets a test
// count a caller's concurrency and put the server in a known state mid-run (so many calls
// in flight, then the answers that open a breaker) without relying on timing.
type DeleteWatch struct {
	now func() time.Time

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced on every change, for the Wait methods
	inFlight int
	peak     int
	arrived  []time.Time
	limited  []RateLimitedAnswer
	holding  bool
	held     []chan struct{} // one per waiting request, in arrival order
	// arrivalLimit is the limiter of LimitArrivals (rate 0: none).
	arrivalLimit bucket
}

// RateLimitedAnswer is one 429 the server sent.
type RateLimitedAnswer struct {
	At         time.Time
	RetryAfter time.Duration
}

// WatchDeletes puts a DeleteWatch in front of the delete route. Call it before Start.
func (s *Server) WatchDeletes() *DeleteWatch {
	w := &DeleteWatch{now: s.opts.Now, changed: make(chan struct{})}
	next := s.srv.Handler
	s.srv.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodDelete || !strings.HasPrefix(r.URL.Path, basePath+"/sandbox/accounts/") {
			next.ServeHTTP(rw, r)
			return
		}
		if !w.arrive(r.Context()) {
			return
		}
		defer w.leave()
		if ok, wait := w.admit(); !ok {
			w.rateLimited(wait)
			writeReply(rw, reply{status: http.StatusTooManyRequests, retryAfter: wait, body: jsonError("rate limit exceeded")})
			return
		}
		rec := &answerRecorder{ResponseWriter: rw}
		next.ServeHTTP(rec, r)
		if rec.status == http.StatusTooManyRequests {
			w.rateLimited(rec.retryAfter)
		}
	})
	return w
}

// LimitArrivals answers 429 with Retry-After, at arrival (after a hold, before auth and
// the injected latency), to the deletes beyond rate per second (a token bucket of burst 1): a CSP
// whose limiter sits in front of its slow delete, as an API gateway's does, so the
// jitter of the delete's own latency does not reach the limiter. 0 turns it off. The
// server's own Faults.DeleteRateLimit instead decides after the injected latency.
func (w *DeleteWatch) LimitArrivals(rate float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.arrivalLimit.reset(rate, 1, w.now())
}

// admit takes a token from the arrival limiter, or says how long until one is available.
func (w *DeleteWatch) admit() (bool, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.arrivalLimit.take(w.now())
}

// arrive counts a delete in flight and, while holding, waits to be released; false means
// the client went away first.
func (w *DeleteWatch) arrive(ctx context.Context) bool {
	w.mu.Lock()
	w.inFlight++
	w.peak = max(w.peak, w.inFlight)
	w.arrived = append(w.arrived, w.now())
	var gate chan struct{}
	if w.holding {
		gate = make(chan struct{})
		w.held = append(w.held, gate)
	}
	w.notify()
	w.mu.Unlock()
	if gate == nil {
		return true
	}
	select {
	case <-gate:
		return true
	case <-ctx.Done():
		w.leave()
		return false
	}
}

func (w *DeleteWatch) leave() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inFlight--
	w.notify()
}

// rateLimited records a 429 and the Retry-After it carried, whole seconds rounded up.
func (w *DeleteWatch) rateLimited(retryAfter time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	secs := time.Duration(max(1, math.Ceil(retryAfter.Seconds()))) * time.Second
	w.limited = append(w.limited, RateLimitedAnswer{At: w.now(), RetryAfter: secs})
}

// notify wakes the Wait methods; the caller holds w.mu.
func (w *DeleteWatch) notify() {
	close(w.changed)
	w.changed = make(chan struct{})
}

// Hold makes every delete arriving from now on wait until Release lets it go.
func (w *DeleteWatch) Hold() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holding = true
}

// Release lets the first n waiting deletes go on, in arrival order (all of them when fewer
// wait). Holding goes on for later arrivals.
func (w *DeleteWatch) Release(n int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n = min(n, len(w.held))
	for _, gate := range w.held[:n] {
		close(gate)
	}
	w.held = w.held[n:]
}

// ReleaseAll stops holding and lets every waiting delete go on.
func (w *DeleteWatch) ReleaseAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.holding = false
	for _, gate := range w.held {
		close(gate)
	}
	w.held = nil
}

// WaitHeld blocks until at least n deletes are waiting, or ctx ends.
func (w *DeleteWatch) WaitHeld(ctx context.Context, n int) error {
	return w.wait(ctx, func() bool { return len(w.held) >= n })
}

// WaitInFlight blocks until at most n deletes are in flight, or ctx ends.
func (w *DeleteWatch) WaitInFlight(ctx context.Context, n int) error {
	return w.wait(ctx, func() bool { return w.inFlight <= n })
}

func (w *DeleteWatch) wait(ctx context.Context, done func() bool) error {
	for {
		w.mu.Lock()
		ok, changed := done(), w.changed
		w.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		}
	}
}

// InFlight is the number of deletes between arrival and answer now.
func (w *DeleteWatch) InFlight() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inFlight
}

// Peak is the most deletes there were in flight at once.
func (w *DeleteWatch) Peak() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak
}

// Arrivals returns when each delete arrived, before any hold or injected latency.
func (w *DeleteWatch) Arrivals() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.arrived...)
}

// RateLimited returns every 429 answered, in order.
func (w *DeleteWatch) RateLimited() []RateLimitedAnswer {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]RateLimitedAnswer(nil), w.limited...)
}

// answerRecorder keeps the status and Retry-After of an answer.
type answerRecorder struct {
	http.ResponseWriter
	status     int
	retryAfter time.Duration
}

func (r *answerRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
		if secs, err := time.ParseDuration(r.Header().Get("Retry-After") + "s"); err == nil {
			r.retryAfter = secs
		}
	}
	r.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection to hijack it.
func (r *answerRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
