package niosxaas_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/niosxaas"
	"github.com/sandbox-broker/broker/pkg/niosxaas/niosxaasfake"
)

func fail(status int, body niosxaasfake.BodyKind) niosxaasfake.Endpoint {
	return niosxaasfake.Endpoint{Fail: niosxaasfake.Failure{Trigger: niosxaasfake.Trigger{Rate: 1}, Status: status, Body: body}}
}

func TestFailuresGiveAShortSanitisedReason(t *testing.T) {
	t.Parallel()
	drop := niosxaasfake.Endpoint{Drop: niosxaasfake.Trigger{Rate: 1}}
	secondDeleteFails := niosxaasfake.Endpoint{Fail: niosxaasfake.Failure{IDs: []string{"b2"}, Status: 502, Body: niosxaasfake.BodyHTML}}
	tests := []struct {
		name       string
		faults     niosxaasfake.Faults
		tweak      func(*niosxaas.Options)
		externalID string
		want       string
		deleted    int
	}{
		{name: "sign-in answers an HTML 500", faults: niosxaasfake.Faults{SignIn: fail(500, niosxaasfake.BodyHTML)}, want: "sign-in: HTTP 500 Internal Server Error"},
		{name: "wrong password", tweak: func(o *niosxaas.Options) {
			o.Credentials = niosxaas.Static(niosxaas.Credentials{Email: testEmail, Password: testPassword + "x"})
		}, want: "sign-in: HTTP 401 Unauthorized"},
		{name: "no credentials", tweak: func(o *niosxaas.Options) { o.Credentials = niosxaas.Static(niosxaas.Credentials{}) },
			want: "sign-in: credentials: email is empty"},
		{name: "switch refused", faults: niosxaasfake.Faults{Switch: fail(403, niosxaasfake.BodyJSON)}, want: "account switch: HTTP 403 Forbidden"},
		{name: "list dropped", faults: niosxaasfake.Faults{List: drop}, want: "list services: "},
		{name: "list times out", faults: niosxaasfake.Faults{List: niosxaasfake.Endpoint{Latency: 2 * time.Second}},
			tweak: func(o *niosxaas.Options) { o.Timeout = 100 * time.Millisecond }, want: "list services: no answer within 100ms"},
		{name: "second delete answers an HTML 502", faults: niosxaasfake.Faults{Delete: secondDeleteFails},
			want: "deleted 1 of 2 services; delete service b2: HTTP 502 Bad Gateway", deleted: 1},
		{name: "not an account id", externalID: "identity/users/42", want: "invalid external id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := startFake(t, niosxaasfake.Options{})
			id := tt.externalID
			if id == "" {
				id = sandboxID(1)
			}
			fake.Seed(id, svc("a1", serviceName), svc("b2", serviceName))
			if err := fake.SetFaults(tt.faults); err != nil {
				t.Fatal(err)
			}
			c, logs := newClient(t, fake.URL(), tt.tweak)
			got := c.Clean(context.Background(), id)
			if got.Result != niosxaas.Failed || !strings.Contains(got.Reason, tt.want) || got.Services != tt.deleted {
				t.Fatalf("outcome %+v, want failed with %d deleted and a reason containing %q", got, tt.deleted, tt.want)
			}
			if strings.ContainsAny(got.Reason, "<>\n") || utf8.RuneCountInString(got.Reason) > 201 {
				t.Fatalf("reason is not a short printable sentence: %q", got.Reason)
			}
			t.Logf("reason: %s", got.Reason)
			assertNoSecrets(t, "reason", got.Reason)
			assertNoSecrets(t, "logs", logs.String())
		})
	}
}

func TestBreakerOpensAfterTheThresholdAndFailsFast(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC))
	fake := startFake(t, niosxaasfake.Options{})
	c, logs := newClient(t, fake.URL(), func(o *niosxaas.Options) {
		o.Breaker = breaker.Options{Threshold: 3, OpenFor: time.Minute, Now: clock.Now}
	})
	if err := fake.SetFaults(niosxaasfake.Faults{Switch: fail(503, niosxaasfake.BodyHTML)}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if got := c.BreakerState(); got != breaker.Closed {
			t.Fatalf("breaker %s after %d failed switches, want closed", got, i)
		}
		if got := c.Clean(context.Background(), sandboxID(i)); got.Result != niosxaas.Failed || !strings.Contains(got.Reason, "HTTP 503") {
			t.Fatalf("sandbox %d: %+v, want the 503", i, got)
		}
	}
	if got := c.BreakerState(); got != breaker.Open {
		t.Fatalf("breaker %s after 3 failed switches, want open", got)
	}
	before := fake.Counters()
	got := c.Clean(context.Background(), sandboxID(9))
	if got.Result != niosxaas.Failed || got.Reason != "account switch: circuit breaker open" {
		t.Fatalf("outcome on an open breaker %+v", got)
	}
	if after := fake.Counters(); after.Switches[sandboxID(9)] != 0 || after.SignIns != before.SignIns {
		t.Fatalf("the open breaker let a call through: %+v", after)
	}
	if !strings.Contains(logs.String(), `"msg":"niosxaas circuit breaker changed state","from":"closed","to":"open"`) {
		t.Fatalf("no breaker transition logged:\n%s", logs)
	}

	// NIOSXaaS recovers; after OpenFor one probe closes the breaker.
	if err := fake.SetFaults(niosxaasfake.Faults{}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if got := c.Clean(context.Background(), sandboxID(9)); got.Result != niosxaas.NoneToClean {
		t.Fatalf("after recovery: %+v", got)
	}
	if got := c.BreakerState(); got != breaker.Closed {
		t.Fatalf("breaker %s after a good probe, want closed", got)
	}
}

// 4xx answers prove NIOSXaaS is up; they never open the breaker.
func TestRefusalsDoNotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	fake := startFake(t, niosxaasfake.Options{})
	c, _ := newClient(t, fake.URL(), func(o *niosxaas.Options) { o.Breaker = breaker.Options{Threshold: 1} })
	if err := fake.SetFaults(niosxaasfake.Faults{Switch: fail(403, "")}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c.Clean(context.Background(), sandboxID(i))
	}
	if got := c.BreakerState(); got != breaker.Closed {
		t.Fatalf("breaker %s after 403s, want closed", got)
	}
}

// The caller's context ending mid-call says nothing about NIOSXaaS: the caller giving up,
// or its deadline passing (a cleanup run reaching its end while a step's listing is slow).
// It fails the step, not the breaker, which a threshold of 1 would open on one counted
// failure.
func TestCallerContextEndingDoesNotCountAgainstTheBreaker(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		ctx  func() (context.Context, func())
		want string
	}{
		{"cancelled", func() (context.Context, func()) { return context.WithCancel(context.Background()) }, "context canceled"},
		{"deadline passed", func() (context.Context, func()) { d := newReachableDeadline(); return d, d.reach }, "deadline exceeded"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake := startFake(t, niosxaasfake.Options{})
			if err := fake.SetFaults(niosxaasfake.Faults{List: niosxaasfake.Endpoint{Latency: 10 * time.Second}}); err != nil {
				t.Fatal(err)
			}
			c, _ := newClient(t, fake.URL(), func(o *niosxaas.Options) { o.Breaker = breaker.Options{Threshold: 1} })
			ctx, end := tt.ctx()
			done := make(chan niosxaas.Outcome)
			go func() { done <- c.Clean(ctx, sandboxID(1)) }()
			testkit.Eventually(t, "the listing to reach the fake", func() bool { return fake.Counters().Lists[sandboxID(1)] == 1 })
			end()
			if got := <-done; got.Result != niosxaas.Failed || !strings.Contains(got.Reason, tt.want) {
				t.Fatalf("outcome %+v, want failed with %q", got, tt.want)
			}
			if got := c.BreakerState(); got != breaker.Closed {
				t.Fatalf("breaker %s, want closed", got)
			}
		})
	}
}

// reachableDeadline is a context whose deadline passes when the test says so, not at a
// time a busy machine could miss: until reach it is live; then Done is closed and Err is
// context.DeadlineExceeded, as for a run whose deadline passed.
type reachableDeadline struct {
	context.Context
	done chan struct{}
}

func newReachableDeadline() *reachableDeadline {
	return &reachableDeadline{Context: context.Background(), done: make(chan struct{})}
}

func (c *reachableDeadline) reach()                { close(c.done) }
func (c *reachableDeadline) Done() <-chan struct{} { return c.done }

func (c *reachableDeadline) Err() error {
	select {
	case <-c.done:
		return context.DeadlineExceeded
	default:
		return nil
	}
}
