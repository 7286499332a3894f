package csp_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
)

func TestBreakerOpensAfterFiveFailedCallsAndRejectsWithoutServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults cspfake.Faults
		tweak  func(*csp.Options)
		call   func(*csp.Client, string) error
	}{
		{
			name:   "delete 500",
			faults: cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}}},
			call:   func(c *csp.Client, id string) error { return c.DeleteAccount(context.Background(), id) },
		},
		{
			name:   "delete timeout",
			faults: cspfake.Faults{DeleteLatency: 2 * time.Second},
			tweak:  func(o *csp.Options) { o.RequestTimeout = 30 * time.Millisecond },
			call:   func(c *csp.Client, id string) error { return c.DeleteAccount(context.Background(), id) },
		},
		{
			name:   "delete dropped",
			faults: cspfake.Faults{DeleteDrop: cspfake.Trigger{Rate: 1}},
			call:   func(c *csp.Client, id string) error { return c.DeleteAccount(context.Background(), id) },
		},
		{
			name:   "list 503",
			faults: cspfake.Faults{ListFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}, Status: 503}},
			call: func(c *csp.Client, _ string) error {
				_, err := c.ListAccounts(context.Background())
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accounts := cspfake.Generate(1, nil)
			s := startFake(t, cspfake.Options{}, accounts...)
			setFaults(t, s, tt.faults)
			c := newClient(t, s.URL(), func(o *csp.Options) {
				o.MaxAttempts = 1
				if tt.tweak != nil {
					tt.tweak(o)
				}
			})

			for i := range 5 {
				if got := c.BreakerState(); got != breaker.Closed {
					t.Fatalf("breaker %s after %d failed calls, want closed", got, i)
				}
				if err := tt.call(c, accounts[0].ID); err == nil || errors.Is(err, csp.ErrCircuitOpen) {
					t.Fatalf("call %d = %v, want a CSP failure", i+1, err)
				}
			}
			if got := c.BreakerState(); got != breaker.Open {
				t.Fatalf("breaker %s after 5 failed calls, want open", got)
			}

			seen := len(s.Requests())
			errDelete := c.DeleteAccount(context.Background(), accounts[0].ID)
			_, errList := c.ListAccounts(context.Background())
			for _, err := range []error{errDelete, errList} {
				if !errors.Is(err, csp.ErrCircuitOpen) || !csp.IsTransient(err) {
					t.Fatalf("call on an open breaker = %v, want a transient ErrCircuitOpen", err)
				}
			}
			// Rejected at once: without a request, so without waiting for the CSP.
			if n := len(s.Requests()); n != seen {
				t.Fatalf("server saw %d more requests with the breaker open", n-seen)
			}
		})
	}
}

// A call is one breaker event however many attempts it made.
func TestBreakerCountsCallsNotAttempts(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}}})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.Breaker.Threshold = 2 })

	_ = c.DeleteAccount(context.Background(), accounts[0].ID)
	if got, n := c.BreakerState(), len(s.Deletes()); got != breaker.Closed || n != 3 {
		t.Fatalf("after one call of 3 attempts: breaker %s, %d deletes; want closed, 3", got, n)
	}
	_ = c.DeleteAccount(context.Background(), accounts[0].ID)
	if got := c.BreakerState(); got != breaker.Open {
		t.Fatalf("breaker %s after 2 failed calls, want open", got)
	}
}

func TestBreakerSharedFailureRuleAcrossListAndDelete(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{
		ListFail:   cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}},
		DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}},
	})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.MaxAttempts = 1; o.Breaker.Threshold = 4 })

	_, _ = c.ListAccounts(context.Background())
	_ = c.DeleteAccount(context.Background(), accounts[0].ID)
	_, _ = c.ListAccounts(context.Background())
	if got := c.BreakerState(); got != breaker.Closed {
		t.Fatalf("breaker %s after 3 failures, want closed", got)
	}
	_ = c.DeleteAccount(context.Background(), accounts[0].ID)
	if got := c.BreakerState(); got != breaker.Open {
		t.Fatalf("breaker %s after 2 list + 2 delete failures, want open", got)
	}
}

func TestBreakerHalfOpenAdmitsASingleProbe(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC))
	accounts := cspfake.Generate(2, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Next: 2}}})
	c := newClient(t, s.URL(), func(o *csp.Options) {
		o.MaxAttempts = 1
		o.Breaker = breaker.Options{Threshold: 2, OpenFor: 30 * time.Second, Now: clock.Now}
	})
	for range 2 {
		_ = c.DeleteAccount(context.Background(), accounts[0].ID)
	}
	if got := c.BreakerState(); got != breaker.Open {
		t.Fatalf("breaker %s, want open", got)
	}
	clock.Advance(29 * time.Second)
	if err := c.DeleteAccount(context.Background(), accounts[0].ID); !errors.Is(err, csp.ErrCircuitOpen) {
		t.Fatalf("delete before OpenFor elapsed = %v, want ErrCircuitOpen", err)
	}
	clock.Advance(time.Second)
	if got := c.BreakerState(); got != breaker.HalfOpen {
		t.Fatalf("breaker %s after OpenFor, want half_open", got)
	}

	// A slow probe, and a crowd arriving while it is in flight.
	setFaults(t, s, cspfake.Faults{DeleteLatency: 300 * time.Millisecond})
	before := len(s.Requests())
	probeDone := make(chan error, 1)
	go func() { probeDone <- c.DeleteAccount(context.Background(), accounts[0].ID) }()
	testkit.Eventually(t, "the probe to reach the server", func() bool { return len(s.Requests()) == before+1 })

	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if err := c.DeleteAccount(context.Background(), accounts[1].ID); !errors.Is(err, csp.ErrCircuitOpen) {
				t.Errorf("delete during the probe = %v, want ErrCircuitOpen", err)
			}
			if _, err := c.ListAccounts(context.Background()); !errors.Is(err, csp.ErrCircuitOpen) {
				t.Errorf("list during the probe = %v, want ErrCircuitOpen", err)
			}
		})
	}
	wg.Wait()
	if n := len(s.Requests()); n != before+1 {
		t.Fatalf("server saw %d requests during the probe, want only the probe", n-before)
	}

	if err := <-probeDone; err != nil {
		t.Fatalf("probe: %v", err)
	}
	if got := c.BreakerState(); got != breaker.Closed {
		t.Fatalf("breaker %s after a successful probe, want closed", got)
	}
	if err := c.DeleteAccount(context.Background(), accounts[1].ID); err != nil {
		t.Fatalf("delete after closing: %v", err)
	}
}

func TestBreakerFailedProbeReopens(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC))
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}, Status: 502}})
	c := newClient(t, s.URL(), func(o *csp.Options) {
		o.MaxAttempts = 1
		o.Breaker = breaker.Options{Threshold: 1, OpenFor: 10 * time.Second, Now: clock.Now}
	})
	_ = c.DeleteAccount(context.Background(), accounts[0].ID)
	clock.Advance(10 * time.Second)
	if err := c.DeleteAccount(context.Background(), accounts[0].ID); errors.Is(err, csp.ErrCircuitOpen) || err == nil {
		t.Fatalf("probe = %v, want the 502 from the server", err)
	}
	if got := c.BreakerState(); got != breaker.Open {
		t.Fatalf("breaker %s after a failed probe, want open", got)
	}
	if n := len(s.Deletes()); n != 2 {
		t.Fatalf("server saw %d deletes, want 2 (first failure and the probe)", n)
	}
}
