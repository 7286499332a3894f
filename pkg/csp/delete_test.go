package csp_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
)

func TestDeleteAccountSuccessStatuses(t *testing.T) {
	t.Parallel()
	for _, status := range []int{http.StatusOK, http.StatusNoContent} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			accounts := cspfake.Generate(3, nil)
			s := startFake(t, cspfake.Options{DeleteStatus: status}, accounts...)
			c := newClient(t, s.URL(), nil)

			if err := c.DeleteAccount(context.Background(), accounts[1].ID); err != nil {
				t.Fatalf("DeleteAccount: %v", err)
			}
			if !s.Deleted(accounts[1].UUID()) {
				t.Fatal("the fake did not delete the account")
			}
			l, err := c.ListAccounts(context.Background())
			if listed := l.Accounts; err != nil || len(listed) != 2 || listed[0].ExternalID != accounts[0].ID || listed[1].ExternalID != accounts[2].ID {
				t.Fatalf("after the delete ListAccounts = %+v, %v; want the other two", l, err)
			}
			// Deleting again finds nothing: a 404, reported as such.
			if err := c.DeleteAccount(context.Background(), accounts[1].ID); !errors.Is(err, csp.ErrAccountNotFound) {
				t.Fatalf("second DeleteAccount = %v, want ErrAccountNotFound", err)
			}
			if got := fmt.Sprint(deleteStatuses(s)); got != fmt.Sprintf("[%d 404]", status) {
				t.Fatalf("delete statuses = %s, want [%d 404]", got, status)
			}
		})
	}
}

func TestDeleteAccountUnknownIsAccountNotFound(t *testing.T) {
	t.Parallel()
	s := startFake(t, cspfake.Options{})
	c := newClient(t, s.URL(), nil)
	err := c.DeleteAccount(context.Background(), "identity/accounts/never-existed")
	if !errors.Is(err, csp.ErrAccountNotFound) || csp.IsTransient(err) {
		t.Fatalf("DeleteAccount of an unknown account = %v, want a non-transient ErrAccountNotFound (404)", err)
	}
	if got := c.BreakerState(); got != breaker.Closed {
		t.Fatalf("breaker = %s: a 404 is an answer, not a failure", got)
	}
	d := s.Deletes()
	if len(d) != 1 || d[0].UUID != "never-existed" || d[0].Status != http.StatusNotFound {
		t.Fatalf("deletes = %+v, want one 404 for never-existed", d)
	}
}

func TestDeleteAccountEscapesTheUUID(t *testing.T) {
	t.Parallel()
	s := startFake(t, cspfake.Options{})
	c := newClient(t, s.URL(), nil)
	if err := c.DeleteAccount(context.Background(), "identity/accounts/we?ird#id%2F"); !errors.Is(err, csp.ErrAccountNotFound) {
		t.Fatalf("DeleteAccount = %v, want ErrAccountNotFound from the fake", err)
	}
	d := s.Deletes()
	if len(d) != 1 || d[0].UUID != "we?ird#id%2F" {
		t.Fatalf("deletes = %+v, want the whole odd segment as one uuid", d)
	}
}

func TestDeleteAccountRejectsBadExternalIDs(t *testing.T) {
	t.Parallel()
	s := startFake(t, cspfake.Options{})
	c := newClient(t, s.URL(), nil)
	for _, id := range []string{"", "identity/accounts/", "identity/accounts/..", "identity/accounts/.", "identity/accounts/a b", "identity/accounts/a\nb"} {
		err := c.DeleteAccount(context.Background(), id)
		if !errors.Is(err, csp.ErrInvalidExternalID) || csp.IsTransient(err) {
			t.Errorf("DeleteAccount(%q) = %v, want a non-transient ErrInvalidExternalID", id, err)
		}
	}
	if n := len(s.Requests()); n != 0 {
		t.Fatalf("server saw %d requests, want none", n)
	}
}

func TestDeleteAccountRetriesTransientFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults cspfake.Faults
		want   string
	}{
		{"5xx", cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Next: 2}}}, "[500 500 200]"},
		{"html 503", cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Next: 1}, Status: 503, Body: cspfake.BodyHTML}}, "[503 200]"},
		{"dropped connections", cspfake.Faults{DeleteDrop: cspfake.Trigger{Next: 2}}, "[0 0 200]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accounts := cspfake.Generate(1, nil)
			s := startFake(t, cspfake.Options{}, accounts...)
			setFaults(t, s, tt.faults)
			c := newClient(t, s.URL(), nil) // default MaxAttempts: 3

			if err := c.DeleteAccount(context.Background(), accounts[0].ID); err != nil {
				t.Fatalf("DeleteAccount: %v", err)
			}
			if got := fmt.Sprint(deleteStatuses(s)); got != tt.want {
				t.Fatalf("delete statuses = %s, want %s", got, tt.want)
			}
			if !s.Deleted(accounts[0].UUID()) {
				t.Fatal("account not deleted")
			}
		})
	}
}

func TestDeleteAccountGivesUpAfterMaxAttempts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults cspfake.Faults
		check  func(error) bool
	}{
		{"5xx", cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}}}, func(err error) bool {
			he, ok := errors.AsType[*csp.HTTPError](err)
			return ok && he.Status == 500
		}},
		{"dropped", cspfake.Faults{DeleteDrop: cspfake.Trigger{Rate: 1}}, func(err error) bool {
			te, ok := errors.AsType[*csp.TransportError](err)
			return ok && !te.Timeout()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accounts := cspfake.Generate(1, nil)
			s := startFake(t, cspfake.Options{}, accounts...)
			setFaults(t, s, tt.faults)
			c := newClient(t, s.URL(), nil)

			err := c.DeleteAccount(context.Background(), accounts[0].ID)
			if !tt.check(err) || !csp.IsTransient(err) {
				t.Fatalf("DeleteAccount = %v (%T)", err, errors.Unwrap(err))
			}
			if !strings.Contains(err.Error(), accounts[0].UUID()) {
				t.Fatalf("error %q does not name the account", err)
			}
			if n := len(s.Deletes()); n != 3 {
				t.Fatalf("server saw %d deletes, want 3 (default MaxAttempts)", n)
			}
		})
	}
}

func TestDeleteAccountHTMLErrorBody(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}, Body: cspfake.BodyHTML}})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.MaxAttempts = 1 })

	err := c.DeleteAccount(context.Background(), accounts[0].ID)
	he, ok := errors.AsType[*csp.HTTPError](err)
	if !ok {
		t.Fatalf("err = %v, want HTTPError", err)
	}
	const want = "500 Internal Server Error Internal Server Error unable to get licenses: invalid character '<' looking for beginning of value"
	if he.Status != 500 || he.Body != want {
		t.Fatalf("HTTPError = %d %q, want 500 %q", he.Status, he.Body, want)
	}
	if !strings.Contains(err.Error(), "HTTP 500 Internal Server Error: "+want) {
		t.Fatalf("error message %q lacks the snippet", err)
	}
}

func TestDeleteAccountGarbageErrorBody(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}, Status: 502, Body: cspfake.BodyGarbage}})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.MaxAttempts = 1 })

	err := c.DeleteAccount(context.Background(), accounts[0].ID)
	he, ok := errors.AsType[*csp.HTTPError](err)
	if !ok || he.Status != 502 {
		t.Fatalf("err = %v, want HTTPError 502", err)
	}
	if !utf8.ValidString(he.Body) || utf8.RuneCountInString(he.Body) > 201 || !strings.Contains(he.Body, "garbage") {
		t.Fatalf("snippet %q is not a short valid string keeping the readable part", he.Body)
	}
	for _, r := range he.Body {
		if !unicode.IsPrint(r) {
			t.Fatalf("snippet %q holds unprintable %U", he.Body, r)
		}
	}
}

func TestDeleteAccountClientErrorsAreNotRetriedNorFailures(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(1, nil)
	s := startFake(t, cspfake.Options{}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteFail: cspfake.Failure{UUIDs: []string{accounts[0].UUID()}, Status: 403}})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.Breaker.Threshold = 2 })

	for range 5 {
		err := c.DeleteAccount(context.Background(), accounts[0].ID)
		if he, ok := errors.AsType[*csp.HTTPError](err); !ok || he.Status != 403 || csp.IsTransient(err) || !errors.Is(err, csp.ErrTokenRejected) {
			t.Fatalf("DeleteAccount = %v, want a non-transient ErrTokenRejected with HTTPError 403", err)
		}
	}
	if n := len(s.Deletes()); n != 5 {
		t.Fatalf("server saw %d deletes, want 5: a 4xx is not retried", n)
	}
	if got := c.BreakerState(); got != breaker.Closed {
		t.Fatalf("breaker = %s, want closed", got)
	}
}

func TestDeleteAccountRateLimited(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC))
	accounts := cspfake.Generate(3, nil)
	s := startFake(t, cspfake.Options{Now: clock.Now}, accounts...)
	setFaults(t, s, cspfake.Faults{DeleteRateLimit: 0.5, DeleteBurst: 1})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.Breaker.Threshold = 2 })

	if err := c.DeleteAccount(context.Background(), accounts[0].ID); err != nil {
		t.Fatalf("first delete: %v", err)
	}
	for range 6 {
		err := c.DeleteAccount(context.Background(), accounts[1].ID)
		rl, ok := errors.AsType[*csp.RateLimitedError](err)
		if !ok || rl.RetryAfter != 2*time.Second || !csp.IsTransient(err) {
			t.Fatalf("over the limit DeleteAccount = %v, want RateLimitedError retry after 2s", err)
		}
	}
	if got := fmt.Sprint(deleteStatuses(s)); got != "[200 429 429 429 429 429 429]" {
		t.Fatalf("delete statuses = %s: a 429 must reach the server once per call and never be retried", got)
	}
	if got := c.BreakerState(); got != breaker.Closed {
		t.Fatalf("breaker = %s after six 429s, want closed", got)
	}
	clock.Advance(2 * time.Second)
	if err := c.DeleteAccount(context.Background(), accounts[1].ID); err != nil {
		t.Fatalf("delete after waiting Retry-After: %v", err)
	}
}
