package breaker

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
)

func testBreaker(clock *testkit.Clock, threshold int, openFor time.Duration) (*Breaker, *[]string) {
	var transitions []string
	var mu sync.Mutex
	b := New(Options{Threshold: threshold, OpenFor: openFor, Now: clock.Now}, func(from, to State) {
		mu.Lock()
		defer mu.Unlock()
		transitions = append(transitions, from.String()+"->"+to.String())
	})
	return b, &transitions
}

func mustAllow(t *testing.T, b *Breaker) func(Outcome) {
	t.Helper()
	done, err := b.Allow()
	if err != nil {
		t.Fatalf("allow() = %v, want admitted (state %s)", err, b.State())
	}
	return done
}

func fail(t *testing.T, b *Breaker, n int) {
	t.Helper()
	for range n {
		mustAllow(t, b)(Failure)
	}
}

func TestBreakerDefaults(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	b := New(Options{Now: clock.Now}, nil)
	fail(t, b, 4)
	if got := b.State(); got != Closed {
		t.Fatalf("after 4 failures state = %s, want closed (default threshold 5)", got)
	}
	fail(t, b, 1)
	if got := b.State(); got != Open {
		t.Fatalf("after 5 failures state = %s, want open", got)
	}
	clock.Advance(59 * time.Second)
	if got := b.State(); got != Open {
		t.Fatalf("after 59s state = %s, want open (default open-for 60s)", got)
	}
	clock.Advance(time.Second)
	if got := b.State(); got != HalfOpen {
		t.Fatalf("after 60s state = %s, want half_open", got)
	}
}

func TestBreakerSuccessResetsConsecutiveFailures(t *testing.T) {
	b, _ := testBreaker(testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), 3, time.Minute)
	fail(t, b, 2)
	mustAllow(t, b)(Success)
	fail(t, b, 2)
	if got := b.State(); got != Closed {
		t.Fatalf("state = %s, want closed: the success should have reset the count", got)
	}
	fail(t, b, 1)
	if got := b.State(); got != Open {
		t.Fatalf("state = %s, want open after 3 consecutive failures", got)
	}
}

func TestBreakerIgnoredOutcomesDoNotCount(t *testing.T) {
	b, _ := testBreaker(testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)), 2, time.Minute)
	mustAllow(t, b)(Failure)
	for range 5 {
		mustAllow(t, b)(Ignored)
	}
	if got := b.State(); got != Closed {
		t.Fatalf("state = %s, want closed", got)
	}
	mustAllow(t, b)(Failure)
	if got := b.State(); got != Open {
		t.Fatalf("state = %s, want open: ignored outcomes must not reset the count either", got)
	}
}

func TestBreakerOpenRejectsUntilOpenForElapsed(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	b, transitions := testBreaker(clock, 1, 10*time.Second)
	fail(t, b, 1)
	for range 3 {
		if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
			t.Fatalf("allow() while open = %v, want ErrOpen", err)
		}
		clock.Advance(3 * time.Second)
	}
	clock.Advance(time.Second) // 10s since opening
	done := mustAllow(t, b)
	done(Success)
	if got := b.State(); got != Closed {
		t.Fatalf("state after a successful probe = %s, want closed", got)
	}
	want := []string{"closed->open", "open->half_open", "half_open->closed"}
	if !slices.Equal(*transitions, want) {
		t.Fatalf("transitions = %v, want %v", *transitions, want)
	}
}

func TestBreakerFailedProbeReopensAndRestartsTimer(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	b, _ := testBreaker(clock, 1, 10*time.Second)
	fail(t, b, 1)
	clock.Advance(10 * time.Second)
	mustAllow(t, b)(Failure)
	if got := b.State(); got != Open {
		t.Fatalf("state after a failed probe = %s, want open", got)
	}
	clock.Advance(9 * time.Second)
	if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
		t.Fatalf("allow() 9s after the failed probe = %v, want ErrOpen (timer must restart)", err)
	}
	clock.Advance(time.Second)
	if got := b.State(); got != HalfOpen {
		t.Fatalf("state 10s after the failed probe = %s, want half_open", got)
	}
}

func TestBreakerIgnoredProbeFreesTheSlot(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	b, _ := testBreaker(clock, 1, time.Second)
	fail(t, b, 1)
	clock.Advance(time.Second)
	mustAllow(t, b)(Ignored)
	if got := b.State(); got != HalfOpen {
		t.Fatalf("state after an ignored probe = %s, want half_open", got)
	}
	mustAllow(t, b)(Success)
	if got := b.State(); got != Closed {
		t.Fatalf("state = %s, want closed", got)
	}
}

func TestBreakerHalfOpenAdmitsExactlyOneConcurrentProbe(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	b, _ := testBreaker(clock, 1, time.Second)
	fail(t, b, 1)
	clock.Advance(time.Second)

	const callers = 200
	var (
		admitted, rejected atomic.Int32
		probe              func(Outcome)
		probeMu            sync.Mutex
		start              = make(chan struct{})
		wg                 sync.WaitGroup
	)
	for range callers {
		wg.Go(func() {
			<-start
			done, err := b.Allow()
			switch {
			case err == nil:
				admitted.Add(1)
				probeMu.Lock()
				probe = done
				probeMu.Unlock()
			case errors.Is(err, ErrOpen):
				rejected.Add(1)
			default:
				t.Errorf("allow() = %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if admitted.Load() != 1 || rejected.Load() != callers-1 {
		t.Fatalf("admitted %d, rejected %d; want exactly 1 probe and %d rejections", admitted.Load(), rejected.Load(), callers-1)
	}
	probe(Success)
	if got := b.State(); got != Closed {
		t.Fatalf("state = %s, want closed", got)
	}
	// Closed again: concurrent calls all go through.
	for range callers {
		wg.Go(func() {
			if done, err := b.Allow(); err != nil {
				t.Errorf("allow() after closing = %v", err)
			} else {
				done(Success)
			}
		})
	}
	wg.Wait()
}

func TestBreakerIgnoresOutcomesFromAnEarlierState(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	b, _ := testBreaker(clock, 2, time.Second)
	// Two slow calls admitted while closed, finishing after the state moved on.
	slowSuccess := mustAllow(t, b)
	slowFailure := mustAllow(t, b)
	fail(t, b, 2)
	slowSuccess(Success)
	if got := b.State(); got != Open {
		t.Fatalf("state = %s, want open: a call admitted before opening must not close the breaker", got)
	}
	clock.Advance(time.Second)
	probe := mustAllow(t, b)
	slowFailure(Failure)
	if got := b.State(); got != HalfOpen {
		t.Fatalf("state = %s, want half_open: only the probe decides", got)
	}
	if _, err := b.Allow(); !errors.Is(err, ErrOpen) {
		t.Fatalf("allow() with the probe in flight = %v, want ErrOpen", err)
	}
	probe(Success)
	if got := b.State(); got != Closed {
		t.Fatalf("state = %s, want closed", got)
	}
}

func TestBreakerStateString(t *testing.T) {
	for s, want := range map[State]string{
		Closed: "closed", Open: "open", HalfOpen: "half_open", State(42): "unknown",
	} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", int(s), got, want)
		}
	}
}

// TestBreakerPauseIsTimedOnTheWallClock opens the breaker and moves the clock as a
// Lambda freeze does (an hour on the wall clock, none on the monotonic one) or as a step
// back of the wall clock does: either way the breaker must admit its probe. Timed on the
// monotonic reading, it would stay open for as long as the freezes last.
func TestBreakerPauseIsTimedOnTheWallClock(t *testing.T) {
	for _, jump := range testkit.ClockJumps() {
		t.Run(jump.Name, func(t *testing.T) {
			clock := testkit.NewMonotonicClock()
			b, _ := testBreaker(clock, 1, time.Minute)
			fail(t, b, 1)
			jump.Move(clock)
			if got := b.State(); got != HalfOpen {
				t.Fatalf("state = %s, want half_open", got)
			}
			mustAllow(t, b)(Success)
			if got := b.State(); got != Closed {
				t.Fatalf("state after the probe = %s, want closed", got)
			}
		})
	}
}
