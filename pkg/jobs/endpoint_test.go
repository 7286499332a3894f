package jobs_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// untouched fails the test unless every account's sandbox is still pending_deletion with
// no attempt and no error booked.
func (e *jobEnv) untouched(t *testing.T, accounts []cspfake.Account) {
	t.Helper()
	for _, a := range accounts {
		if s := e.get(t, sandboxID(a)); s.Status != pool.PendingDeletion || s.Attempts != 0 || s.LastError != "" {
			t.Fatalf("cleanup booked something on %s: %+v", s.ID, s)
		}
	}
}

// A wrong CSP_BASE_URL answers every delete with 404, which must not read as "deleted":
// the run's probe finds that the endpoint is not the CSP API, so the run books nothing
// and raises the alarm. Both a path that is not the API (the fake's 404 on every path)
// and a web server (an HTML page on every path) are tried.
func TestCleanupWithAWrongBaseURLBooksNothing(t *testing.T) {
	html := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte("<!doctype html><html><body>Welcome</body></html>"))
	}))
	t.Cleanup(html.Close)
	for name, baseURL := range map[string]func(fake string) string{
		"404 on every path": func(fake string) string { return fake + "/wrong" },
		"an HTML page":      func(string) string { return html.URL },
	} {
		t.Run(name, func(t *testing.T) {
			accounts := cspfake.Generate(4, nil)
			var fakeURL string
			e := newJobEnv(t, envOptions{accounts: accounts, csp: func(o *csp.Options) { fakeURL = o.BaseURL; o.BaseURL = baseURL(fakeURL) }})
			e.released(t, accounts)
			for range 2 {
				sum, err := e.runner.Run(ctx, "cleanup")
				if err == nil || sum.Outcome != jobs.OutcomeFailed || sum.Alarm != jobs.AlarmCSPWrongEndpoint || !strings.Contains(sum.Reason, "CSP_BASE_URL") {
					t.Fatalf("summary %+v, %v", sum, err)
				}
				wantCounts(t, sum, map[string]int{"deleted": 0, "failed": 0, "deletion_failed": 0})
			}
			e.untouched(t, accounts)
			if n := len(e.fake.Deletes()); n != 0 {
				t.Fatalf("the real CSP got %d deletes", n)
			}
			for _, a := range accounts {
				if e.fake.Deleted(a.UUID()) {
					t.Fatalf("%s deleted", a.Name)
				}
			}
			pooltest.Check(t, e.pool)
		})
	}
}

// 403 and 3xx to a delete stop the run like a 401: an alarm, no new start, and no attempt
// booked against a sandbox. The four deletes in flight (the most allowed) are all
// answered so, and none of the other four is sent.
func TestCleanupStopsOnAForbiddenOrRedirectedDelete(t *testing.T) {
	for _, tc := range []struct {
		status int
		alarm  string
	}{
		{http.StatusForbidden, jobs.AlarmCSPTokenRejected},
		{http.StatusFound, jobs.AlarmCSPWrongEndpoint},
		{http.StatusPermanentRedirect, jobs.AlarmCSPWrongEndpoint},
	} {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			const maxInFlight = 4
			accounts := cspfake.Generate(8, nil)
			e := newJobEnv(t, envOptions{accounts: accounts, watchDeletes: true, jobs: func(c *config.Jobs) { c.CleanupMaxInFlight = maxInFlight }})
			done := startHeldCleanup(t, e, accounts, maxInFlight)
			e.setFaults(t, cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}, Status: tc.status}})
			e.deletes.ReleaseAll()
			res := <-done
			if res.err == nil || res.sum.Outcome != jobs.OutcomeFailed || res.sum.Alarm != tc.alarm {
				t.Fatalf("summary %+v, %v", res.sum, res.err)
			}
			if sent := len(e.deletes.Arrivals()); sent != maxInFlight {
				t.Fatalf("%d deletes sent, want only the %d in flight when the first answer came", sent, maxInFlight)
			}
			e.untouched(t, accounts)
			pooltest.Check(t, e.pool)
		})
	}
}

type runResult struct {
	sum jobs.Summary
	err error
}

// startHeldCleanup releases accounts and starts a cleanup run whose CSP deletes are held,
// returning once maxInFlight of them are in flight; the run's result comes on the channel.
func startHeldCleanup(t *testing.T, e *jobEnv, accounts []cspfake.Account, maxInFlight int) <-chan runResult {
	t.Helper()
	e.released(t, accounts)
	e.deletes.Hold()
	done := make(chan runResult, 1)
	go func() {
		sum, err := e.runner.Run(ctx, "cleanup")
		done <- runResult{sum, err}
	}()
	waitCtx := testkit.Patience(t)
	if err := e.deletes.WaitHeld(waitCtx, maxInFlight); err != nil {
		t.Fatal(err)
	}
	return done
}

// A 403 answered to one of the deletes in flight stops the starts, and the other calls in
// flight are still booked; the 403's sandbox gets no attempt.
func TestCleanupBooksTheCallsInFlightAfterA403(t *testing.T) {
	const maxInFlight = 4
	accounts := cspfake.Generate(8, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, watchDeletes: true, jobs: func(c *config.Jobs) { c.CleanupMaxInFlight = maxInFlight }})
	done := startHeldCleanup(t, e, accounts, maxInFlight)
	e.setFaults(t, cspfake.Faults{DeleteFail: cspfake.Failure{Trigger: cspfake.Trigger{Next: 1}, Status: http.StatusForbidden}})
	e.deletes.ReleaseAll()
	res := <-done
	if res.err == nil || res.sum.Alarm != jobs.AlarmCSPTokenRejected {
		t.Fatalf("summary %+v, %v", res.sum, res.err)
	}
	forbidden, ok := 0, 0
	for _, d := range e.fake.Deletes() {
		var a cspfake.Account
		for _, x := range accounts {
			if x.UUID() == d.UUID {
				a = x
			}
		}
		s := e.get(t, sandboxID(a))
		switch d.Status {
		case http.StatusForbidden:
			forbidden++
			if s.Status != pool.PendingDeletion || s.Attempts != 0 || s.LastError != "" {
				t.Fatalf("the 403 was booked on %s: %+v", s.ID, s)
			}
		case http.StatusOK:
			ok++
			if s.Status != pool.Deleted {
				t.Fatalf("a delete answered 200 in flight was not booked: %+v", s)
			}
		default:
			t.Fatalf("unexpected answer %+v", d)
		}
	}
	if forbidden != 1 || ok < maxInFlight-1 || res.sum.Counts["deleted"] != ok {
		t.Fatalf("%d answered 403, %d answered 200, %d booked deleted", forbidden, ok, res.sum.Counts["deleted"])
	}
	if ok+forbidden == len(accounts) {
		t.Fatal("the run went on to the end after the 403")
	}
	pooltest.Check(t, e.pool)
}

// Once the probe has proved the endpoint right, a delete's 404 is the account already
// gone: it is booked as deleted. The probe is one listing request for one entry.
func TestCleanupBooksA404AfterTheProbeAsDeleted(t *testing.T) {
	accounts := cspfake.Generate(3, nil)
	e := newJobEnv(t, envOptions{accounts: accounts[:2]})
	e.released(t, accounts) // accounts[2] is not in the CSP
	sum := e.run(t, "cleanup")
	wantCounts(t, sum, map[string]int{"deleted": 3, "failed": 0})
	if sum.Alarm != "" {
		t.Fatalf("alarm %q", sum.Alarm)
	}
	var probes, deletes int
	for _, r := range e.fake.Requests() {
		switch {
		case r.Method == http.MethodGet && strings.Contains(r.Query, "_limit=1"):
			probes++
		case r.Method == http.MethodDelete:
			deletes++
		}
	}
	if probes != 1 || deletes != 3 {
		t.Fatalf("%d probes and %d deletes, want 1 and 3", probes, deletes)
	}
	pooltest.Check(t, e.pool)
}
