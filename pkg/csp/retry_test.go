package csp

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestBackoffIsFullJitterWithinCap(t *testing.T) {
	for n := 1; n <= maxMaxAttempts; n++ {
		ceiling := min(backoffCap, backoffBase<<(n-1))
		for range 200 {
			if d := backoff(n); d < 0 || d >= ceiling {
				t.Fatalf("backoff(%d) = %s, want within [0, %s)", n, d, ceiling)
			}
		}
	}
}

// The retry loop hands back the CSP's own error, not a context error, when
// it stops because the next backoff would cross the deadline.
func TestRetryStopsBeforeTheDeadlineWithTheLastError(t *testing.T) {
	c := &Client{maxAttempts: maxMaxAttempts, requestTimeout: time.Second, log: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Millisecond)
	defer cancel()

	var calls []error
	start := time.Now()
	err := c.retry(ctx, "test", func(actx context.Context) error {
		e := &HTTPError{Status: 500, Body: "attempt"}
		calls = append(calls, e)
		return e
	})
	elapsed := time.Since(start)
	if len(calls) == 0 || err != calls[len(calls)-1] {
		t.Fatalf("retry returned %v, want the last attempt's error", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("retry returned a context error")
	}
	if elapsed >= 120*time.Millisecond {
		t.Fatalf("retry took %s, want it to stop before the 120ms deadline", elapsed)
	}
}

func TestRetryDoesNotRetryNonFailures(t *testing.T) {
	c := &Client{maxAttempts: 5, requestTimeout: time.Second, log: slog.New(slog.DiscardHandler)}
	for _, want := range []error{&HTTPError{Status: 404}, &RateLimitedError{RetryAfter: time.Second}, ErrInvalidExternalID} {
		n := 0
		err := c.retry(context.Background(), "test", func(context.Context) error { n++; return want })
		if err != want || n != 1 {
			t.Errorf("retry of %v: %d attempts, err %v; want 1 attempt", want, n, err)
		}
	}
}
