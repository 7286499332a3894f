package csp_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
)

// slack absorbs scheduling noise under -race on a loaded machine.
const slack = 250 * time.Millisecond

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
		if elapsed < 100*time.Millisecond || elapsed > 100*time.Millisecond+slack {
			t.Fatalf("%s took %s, want about the 100ms request timeout", name, elapsed)
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
	// Three 80ms attempts plus at most 200ms + 400ms of backoff.
	if max := 3*80*time.Millisecond + 600*time.Millisecond + slack; elapsed > max {
		t.Fatalf("took %s, want at most %s", elapsed, max)
	}
}

func TestContextDeadlineNeverExceededByRetries(t *testing.T) {
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}}})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.MaxAttempts = 10 })

	const budget = 300 * time.Millisecond
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		start := time.Now()
		err := c.DeleteAccount(ctx, accounts[0].ID)
		elapsed := time.Since(start)
		cancel()
		if err == nil || !csp.IsTransient(err) {
			t.Fatalf("err = %v, want the last transient failure", err)
		}
		if elapsed > budget+50*time.Millisecond {
			t.Fatalf("DeleteAccount took %s with a %s deadline", elapsed, budget)
		}
	}
	if n := len(s.Deletes()); n < 3 || n > 30 {
		t.Fatalf("server saw %d deletes over 3 calls, want between 3 and 30", n)
	}
}

func TestContextDeadlineCutsASlowAttempt(t *testing.T) {
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteLatency: 5 * time.Second})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.RequestTimeout = 10 * time.Second })

	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.DeleteAccount(ctx, accounts[0].ID)
	if elapsed := time.Since(start); elapsed > 150*time.Millisecond+slack {
		t.Fatalf("took %s with a 150ms deadline", elapsed)
	}
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

func TestCallerCancellationIsNotABreakerFailure(t *testing.T) {
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteLatency: 3 * time.Second})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.Breaker.Threshold = 1 })

	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		err := c.DeleteAccount(ctx, accounts[0].ID)
		cancel()
		if !errors.Is(err, context.Canceled) || csp.IsTransient(err) {
			t.Fatalf("err = %v, want a non-transient context.Canceled", err)
		}
	}
	if got := c.BreakerState(); got != csp.BreakerClosed {
		t.Fatalf("breaker = %s, want closed: the caller gave up, the CSP did not fail", got)
	}
	if n := len(s.Requests()); n != 3 {
		t.Fatalf("server saw %d requests, want 3: a cancelled call is not retried", n)
	}
}
