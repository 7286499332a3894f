package csp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
)

func TestRequestTimeoutHonoured(t *testing.T) {
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteLatency: 3 * time.Second, ListLatency: 3 * time.Second})
	c := newClient(t, s.URL(), func(o *csp.Options) {
		o.RequestTimeout = 100 * time.Millisecond
		o.MaxAttempts = 1
	})

	for name, call := range map[string]func() error{
		"delete": func() error { return c.DeleteAccount(context.Background(), accounts[0].ID) },
		"list":   func() error { _, err := c.ListAccounts(context.Background()); return err },
	} {
		start := time.Now()
		err := call()
		elapsed := time.Since(start)
		te, ok := errors.AsType[*csp.TransportError](err)
		if !ok || !te.Timeout() || !errors.Is(err, context.DeadlineExceeded) || !csp.IsTransient(err) {
			t.Fatalf("%s: err = %v, want a transient timeout TransportError", name, err)
		}
		// The caller set no deadline and the CSP answers after 3 s: the timeout error can
		// only come from RequestTimeout, which the call ran to the end of.
		if elapsed < 100*time.Millisecond {
			t.Fatalf("%s took %s, less than the 100ms request timeout", name, elapsed)
		}
	}
	if s.Deleted(accounts[0].UUID()) {
		t.Fatal("the slow delete should not have completed")
	}
}

func TestRequestTimeoutAppliesPerAttempt(t *testing.T) {
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteLatency: 3 * time.Second})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.RequestTimeout = 80 * time.Millisecond })

	start := time.Now()
	err := c.DeleteAccount(context.Background(), accounts[0].ID)
	elapsed := time.Since(start)
	if te, ok := errors.AsType[*csp.TransportError](err); !ok || !te.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
	if n := len(s.Requests()); n != 3 {
		t.Fatalf("server saw %d requests, want 3: timeouts are retried", n)
	}
	// Three timeouts, not one shared by the attempts: each ran its full 80ms.
	if elapsed < 3*80*time.Millisecond {
		t.Fatalf("took %s, less than three 80ms attempts", elapsed)
	}
}

// Retries never sleep past the caller's deadline: the client stops when the next backoff
// would cross it, rather than being cut off by it. Under a context whose deadline never
// fires, a client that did not read the deadline would make all 10 attempts (its backoffs
// alone would add up to seconds); this one stops after a few with the CSP's last answer.
func TestContextDeadlineNeverExceededByRetries(t *testing.T) {
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}}})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.MaxAttempts = 10 })

	for range 3 {
		before := len(s.Deletes())
		err := c.DeleteAccount(testkit.DeadlineOnly(time.Now().Add(300*time.Millisecond)), accounts[0].ID)
		if he, ok := errors.AsType[*csp.HTTPError](err); !ok || he.Status != 500 || !csp.IsTransient(err) {
			t.Fatalf("err = %v, want the CSP's last answer, a transient 500", err)
		}
		if n := len(s.Deletes()) - before; n >= 10 {
			t.Fatalf("%d attempts in one call: the retries went on past the deadline", n)
		}
	}
}

func TestContextDeadlineCutsASlowAttempt(t *testing.T) {
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteLatency: 5 * time.Second})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.RequestTimeout = 10 * time.Second })

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	// The CSP answers after 5 s and the request timeout is 10 s: a deadline error can only
	// be the caller's second, which also leaves a loaded machine the time to send one.
	err := c.DeleteAccount(ctx, accounts[0].ID)
	if !errors.Is(err, context.DeadlineExceeded) || !csp.IsTransient(err) {
		t.Fatalf("err = %v, want a transient deadline error", err)
	}
	if n := len(s.Requests()); n != 1 {
		t.Fatalf("server saw %d requests, want 1: no retry once the deadline passed", n)
	}
}

func TestExpiredContextSendsNothing(t *testing.T) {
	s := startFake(t, cspfake.Options{})
	c := newClient(t, s.URL(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := c.DeleteAccount(ctx, "identity/accounts/x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("DeleteAccount = %v, want context.Canceled", err)
	}
	if _, err := c.ListAccounts(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListAccounts = %v, want context.Canceled", err)
	}
	if n := len(s.Requests()); n != 0 {
		t.Fatalf("server saw %d requests, want none", n)
	}
}

// TestCallerCancellationIsNotABreakerFailure: a caller that gives up while its delete is
// at the CSP (held there, so the cancellation always lands mid-call) gets a non-transient
// context.Canceled, the call is not retried, and the breaker, at a threshold of one
// failure, stays closed.
func TestCallerCancellationIsNotABreakerFailure(t *testing.T) {
	accounts := cspfake.Generate(1, nil)
	s, w := cspfake.StartedWatchingDeletes(t, cspfake.Options{Token: testToken}, accounts...)
	w.Hold()
	c := newClient(t, s.URL(), func(o *csp.Options) { o.Breaker.Threshold = 1 })

	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			// The delete has arrived and waits at the CSP: the caller gives up now.
			if w.WaitHeld(testkit.Patience(t), i+1) == nil {
				cancel()
			}
		}()
		err := c.DeleteAccount(ctx, accounts[0].ID)
		cancel()
		if !errors.Is(err, context.Canceled) || csp.IsTransient(err) {
			t.Fatalf("err = %v, want a non-transient context.Canceled", err)
		}
	}
	if got := c.BreakerState(); got != breaker.Closed {
		t.Fatalf("breaker = %s, want closed: the caller gave up, the CSP did not fail", got)
	}
	if n := len(w.Arrivals()); n != 3 {
		t.Fatalf("the CSP saw %d deletes, want 3: a cancelled call is not retried", n)
	}
}
