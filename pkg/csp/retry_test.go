package csp

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
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

// The retry loop hands back the CSP's own error, not a context error, when it stops
// because the next backoff would cross the deadline. The deadline never fires
// (testkit.DeadlineOnly): a loop that slept into it instead would make all its attempts.
func TestRetryStopsBeforeTheDeadlineWithTheLastError(t *testing.T) {
	c := &Client{maxAttempts: maxMaxAttempts, requestTimeout: time.Second, log: slog.New(slog.DiscardHandler)}
	var calls []error
	err := c.retry(testkit.DeadlineOnly(time.Now().Add(120*time.Millisecond)), "test", func(actx context.Context) error {
		e := &HTTPError{Status: 500, Body: "attempt"}
		calls = append(calls, e)
		return e
	})
	if len(calls) == 0 || err != calls[len(calls)-1] {
		t.Fatalf("retry returned %v, want the last attempt's error", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("retry returned a context error")
	}
	if len(calls) == maxMaxAttempts {
		t.Fatalf("retry made all %d attempts: it went on past the deadline", len(calls))
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
