package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/local"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestMain(m *testing.M) { pooltest.Main(m) }

// stack is a local stack for brokerctl: 6 sandboxes "lab-0001"… whose CSP deletes all
// fail, so one cleanup run (CLEANUP_MAX_ATTEMPTS=1) gives a released sandbox up as
// deletion_failed; the schedules do not fire during a test.
type stack struct {
	*local.Stack
	pool *pool.Pool
}

func startStack(t *testing.T) stack {
	t.Helper()
	var uuids []string
	for _, a := range cspfake.Generate(6, []string{"lab"}) {
		uuids = append(uuids, a.UUID())
	}
	table := pooltest.NewTableWithStream(t) // the stack's events read it
	s, err := local.Start(context.Background(), testkit.Env(map[string]string{
		"PORT": "0", "DYNAMODB_ENDPOINT": pooltest.Endpoint(), "TABLE_NAME": table, "SEED_SANDBOXES": "6",
		"JOB_INTERVAL_SCALE": "1", "CLEANUP_MAX_ATTEMPTS": "1", "LOG_LEVEL": "error", "EVENTS_FILE": t.TempDir() + "/events.jsonl",
		cspfake.EnvDeleteFailUUIDs: strings.Join(uuids, ","),
	}), io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return stack{Stack: s, pool: pool.New(pooltest.Client(), table, pool.Options{})}
}

type result struct {
	code           int
	stdout, stderr string
}

// ctl runs brokerctl with BROKER_URL and BROKER_ADMIN_TOKEN of s (unless env overrides).
func ctl(t *testing.T, s stack, env map[string]string, args ...string) result {
	t.Helper()
	vars := map[string]string{"BROKER_URL": s.URL, "BROKER_ADMIN_TOKEN": s.AdminToken}
	for k, v := range env {
		vars[k] = v
	}
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, getenv(vars), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func (r result) want(t *testing.T, code int, stdout ...string) result {
	t.Helper()
	if r.code != code {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stdout {
		if !strings.Contains(r.stdout, s) {
			t.Fatalf("stdout lacks %q:\n%s", s, r.stdout)
		}
	}
	return r
}

// failing checks a one-line error on stderr, nothing on stdout.
func (r result) failing(t *testing.T, code int, stderr ...string) {
	t.Helper()
	if r.code != code || r.stdout != "" || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.HasPrefix(r.stderr, "brokerctl: ") {
		t.Fatalf("exit %d, want %d with one line on stderr\nstdout:\n%s\nstderr:\n%s", r.code, code, r.stdout, r.stderr)
	}
	for _, s := range stderr {
		if !strings.Contains(r.stderr, s) {
			t.Fatalf("stderr lacks %q: %s", s, r.stderr)
		}
	}
}

// getenv reads variables from vars.
func getenv(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return v
}

// allocateAndRelease gives student a sandbox over the track API and releases it.
func allocateAndRelease(t *testing.T, s stack, student string) string {
	t.Helper()
	call := func(method, path string) map[string]any {
		req, _ := http.NewRequest(method, s.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+s.TrackToken)
		req.Header.Set("X-Instruqt-Sandbox-ID", student)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, err)
		}
		return body
	}
	id := call("POST", "/v1/allocate")["sandbox_id"].(string)
	call("POST", "/v1/sandboxes/"+id+"/mark-for-deletion")
	return id
}

// confirmedCommand is the brokerctl command a bulk command's preview prints, as arguments.
func confirmedCommand(t *testing.T, r result) []string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^  brokerctl (.+)$`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("no command in the preview:\n%s", r.stdout)
	}
	return strings.Fields(m[1])
}

var row = func(cells ...string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + strings.Join(cells, ` +`) + ` *$`)
}

func TestBrokerctlAgainstTheLocalStack(t *testing.T) {
	s := startStack(t)

	// stats: an aligned table, or the API's JSON.
	r := ctl(t, s, nil, "stats").want(t, 0, "STATUS")
	for _, want := range []*regexp.Regexp{row("STATUS", "COUNT"), row("available", "6"), row("deletion_failed", "0"), row("total", "6"), row("lab", "6")} {
		if !want.MatchString(r.stdout) {
			t.Fatalf("stats lacks %s:\n%s", want, r.stdout)
		}
	}
	if st := decodeJSON[map[string]any](t, ctl(t, s, nil, "stats", "--json").want(t, 0).stdout); st["total"] != 6.0 {
		t.Fatalf("stats --json %v", st)
	}

	// list follows the cursor to the end, or stops at --max.
	r = ctl(t, s, nil, "list", "--limit", "2").want(t, 0, "SANDBOX_ID", "6 sandboxes\n")
	if n := len(regexp.MustCompile(`(?m)^300000\d +lab-\d{4} +available `).FindAllString(r.stdout, -1)); n != 6 {
		t.Fatalf("list --limit 2 shows %d sandboxes:\n%s", n, r.stdout)
	}
	ctl(t, s, nil, "list", "--limit", "2", "--max", "3").want(t, 0, "3 sandboxes (stopped at --max 3; more match)")
	page := decodeJSON[struct {
		Sandboxes []map[string]any
		Count     int
		Cursor    *string
	}](t, ctl(t, s, nil, "--json", "list", "--limit", "4").want(t, 0).stdout)
	if page.Count != 6 || len(page.Sandboxes) != 6 || page.Cursor != nil {
		t.Fatalf("list --json: %+v", page)
	}
	ctl(t, s, nil, "list", "--status", "allocated").want(t, 0, "0 sandboxes")

	// A released sandbox whose CSP delete fails: cleanup --wait reports the outcome.
	id := allocateAndRelease(t, s, "student-1")
	r = ctl(t, s, nil, "cleanup", "--wait", "--interval", "20ms").want(t, 0, "cleanup started: run ", "deletion_failed 1", "alarm cleanup_deletion_failed")
	runID := regexp.MustCompile(`run (\S+): ok`).FindStringSubmatch(r.stdout)
	if runID == nil {
		t.Fatalf("cleanup --wait: %s", r.stdout)
	}

	r = ctl(t, s, nil, "show", id).want(t, 0, "HISTORY")
	for _, want := range []*regexp.Regexp{row("status", "deletion_failed"), row("owner", "student-1"), row("attempts", "1"),
		regexp.MustCompile(`(?m)^\S+Z +pending_deletion +deletion_failed +job cleanup +.* ` + runID[1] + ` *$`),
		regexp.MustCompile(`(?m)^\S+Z +available +allocated +student student-1 `)} {
		if !want.MatchString(r.stdout) {
			t.Fatalf("show lacks %s:\n%s", want, r.stdout)
		}
	}
	detail := decodeJSON[struct {
		Sandbox map[string]any
		History []map[string]any
	}](t, ctl(t, s, nil, "show", id, "--json").want(t, 0).stdout)
	if detail.Sandbox["status"] != "deletion_failed" || len(detail.History) != 4 {
		t.Fatalf("show --json %+v", detail)
	}

	ctl(t, s, nil, "jobs", "cleanup").want(t, 0, "RUN_ID", runID[1])
	if runs := decodeJSON[struct{ Runs []map[string]any }](t, ctl(t, s, nil, "jobs", "sync", "--limit", "1", "--json").want(t, 0).stdout); len(runs.Runs) != 1 {
		t.Fatalf("jobs sync --json: %+v", runs)
	}

	ctl(t, s, nil, "retry", id).want(t, 0, "is pending_deletion again")
	ctl(t, s, nil, "retry", id).failing(t, 1, "HTTP 409 WRONG_STATUS", "this one is pending_deletion", "(request_id ")
	// Its delete fails again; --json prints the run, then the retried sandbox.
	if run := decodeJSON[map[string]any](t, ctl(t, s, nil, "--json", "cleanup", "--wait", "--interval", "20ms").want(t, 0).stdout); run["alarm"] != "cleanup_deletion_failed" {
		t.Fatalf("cleanup --wait --json: %v", run)
	}
	if sb := decodeJSON[map[string]any](t, ctl(t, s, nil, "retry", id, "--json").want(t, 0).stdout); sb["status"] != "pending_deletion" || sb["attempts"] != 0.0 {
		t.Fatalf("retry --json: %v", sb)
	}

	if run := decodeJSON[map[string]any](t, ctl(t, s, nil, "sync", "--wait", "--interval", "20ms", "--json").want(t, 0).stdout); run["outcome"] != "ok" {
		t.Fatalf("sync --wait --json: %v", run)
	}

	// The bulk commands: a run without --expect counts and prints the command that deletes
	// exactly that; the broker refuses it once the pool has moved.
	ctl(t, s, nil, "delete-stale").want(t, 0, "0 sandboxes stale for 24 h or more (of 0 stale) as of ", "nothing is deleted yet",
		"\n  brokerctl delete-stale --grace-hours 24 --expect 0\n")
	if res := decodeJSON[map[string]any](t, ctl(t, s, nil, "delete-stale", "--grace-hours", "720", "--expect", "0", "--json").want(t, 0).stdout); res["grace_period_hours"] != 720.0 {
		t.Fatalf("delete-stale --json: %v", res)
	}
	ctl(t, s, nil, "cleanup", "--wait", "--interval", "20ms").want(t, 0, "deletion_failed 1")
	confirm := confirmedCommand(t, ctl(t, s, nil, "bulk-delete", "--status", "deletion_failed").want(t, 0, "1 deletion_failed sandboxes as of "))
	ctl(t, s, nil, "retry", id).want(t, 0, "is pending_deletion again")
	ctl(t, s, nil, confirm...).failing(t, 1, "HTTP 409 POOL_CHANGED", "You confirmed 1 deletion_failed record(s)", "0 match now")
	if got, err := s.pool.Get(context.Background(), id); err != nil || got.Status != pool.PendingDeletion {
		t.Fatalf("a refused bulk-delete changed the sandbox: %+v %v", got, err)
	}
	ctl(t, s, nil, "cleanup", "--wait", "--interval", "20ms").want(t, 0, "deletion_failed 1")
	preview := decodeJSON[map[string]any](t, ctl(t, s, nil, "bulk-delete", "--status", "deletion_failed", "--json").want(t, 0).stdout)
	if preview["expected_count"] != 1.0 || preview["status"] != "deletion_failed" || preview["status_before"].(float64) < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("bulk-delete --json preview: %v", preview)
	}
	ctl(t, s, nil, confirmedCommand(t, ctl(t, s, nil, "bulk-delete", "--status", "deletion_failed"))...).
		want(t, 0, "completed: deleted 1 deletion_failed records (no CSP call)")
	if got, err := s.pool.Get(context.Background(), id); err != nil || got.Status != pool.Retired {
		t.Fatalf("the confirmed sandbox: %+v %v", got, err)
	}
	now := strconv.FormatInt(time.Now().Unix(), 10)
	ctl(t, s, nil, "delete-stale", "--grace-hours", "0", "--expect", "0").failing(t, 1, "HTTP 400 VALIDATION_ERROR", "grace_period_hours")
	ctl(t, s, nil, "bulk-delete", "--status", "stale", "--expect", "0", "--before", now).want(t, 0, "completed: deleted 0 stale records (no CSP call)")
	ctl(t, s, nil, "bulk-delete", "--status", "allocated", "--expect", "0", "--before", now).failing(t, 1, "HTTP 400 VALIDATION_ERROR", "stale or deletion_failed only")
	ctl(t, s, nil, "bulk-delete").failing(t, 2, "needs --status")
	ctl(t, s, nil, "bulk-delete", "--status", "stale", "--expect", "1").failing(t, 2, "--expect and --before together")
	pooltest.Check(t, s.pool)

	// A run holding the lease: the trigger is refused, naming it.
	lease, err := s.pool.AcquireLease(context.Background(), "sync", "run-in-progress", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ctl(t, s, nil, "sync").failing(t, 1, "HTTP 409 JOB_RUNNING", "run-in-progress")
	if err := s.pool.ReleaseLease(context.Background(), lease); err != nil {
		t.Fatal(err)
	}
	ctl(t, s, nil, "sync").want(t, 0, "sync started: run ")
}

func TestBrokerctlErrors(t *testing.T) {
	s := startStack(t)
	ctl(t, s, nil, "show", "404404").failing(t, 1, "HTTP 404 SANDBOX_NOT_FOUND", "request_id")
	ctl(t, s, nil, "jobs", "nope").failing(t, 1, "HTTP 404 JOB_NOT_FOUND")
	ctl(t, s, map[string]string{"BROKER_ADMIN_TOKEN": s.TrackToken}, "stats").failing(t, 1, "HTTP 403 FORBIDDEN")
	ctl(t, s, map[string]string{"BROKER_ADMIN_TOKEN": "not-a-configured-token-0123456789"}, "stats").failing(t, 1, "HTTP 401 UNAUTHORIZED")
	ctl(t, s, map[string]string{"BROKER_ADMIN_TOKEN": ""}, "stats").failing(t, 2, "no admin token")
	ctl(t, s, map[string]string{"BROKER_URL": ""}, "stats").failing(t, 2, "no API URL")
	ctl(t, s, map[string]string{"BROKER_URL": "ftp://example.com"}, "stats").failing(t, 2, "is not an API URL")
	// A port nothing listens on (the stack's, once stopped).
	other := startStack(t)
	other.Stop()
	ctl(t, s, map[string]string{"BROKER_URL": other.URL}, "stats").failing(t, 1, "cannot reach "+other.URL)
	// Flags override the environment.
	ctl(t, s, map[string]string{"BROKER_ADMIN_TOKEN": "", "BROKER_URL": ""}, "--url", s.URL, "stats", "--token", s.AdminToken).want(t, 0, "total")

	if r := ctl(t, s, nil); r.code != 2 || r.stdout != "" || !strings.HasPrefix(r.stderr, "Usage: brokerctl") {
		t.Fatalf("no command: exit %d, stderr %s", r.code, r.stderr)
	}
	ctl(t, s, nil, "frobnicate").failing(t, 2, `unknown command "frobnicate"`)
	ctl(t, s, nil, "show").failing(t, 2, "show takes ID")
	ctl(t, s, nil, "stats", "extra").failing(t, 2, "stats takes no arguments")
	ctl(t, s, nil, "list", "--colour").failing(t, 2, "flag provided but not defined: -colour")
	ctl(t, s, nil, "list", "--limit", "500").failing(t, 2, "--limit is a page size")
	for _, args := range [][]string{{"-h"}, {"--help"}, {"list", "-h"}} {
		r := ctl(t, s, nil, args...).want(t, 0, "Usage: brokerctl", "bulk-delete --status S")
		if r.stderr != "" {
			t.Fatalf("%v: stderr %s", args, r.stderr)
		}
	}
}

// drain and undrain against the local stack: a drained allocate answers 503
// POOL_DRAINING, stats shows the drain, undrain ends it.
func TestBrokerctlDrainAndUndrain(t *testing.T) {
	s := startStack(t)
	ctl(t, s, nil, "drain", "lab", "--reason", "CSP maintenance").want(t, 0, `draining prefix "lab"`)
	ctl(t, s, nil, "stats").want(t, 0, "DRAINING", `"lab"`, "CSP maintenance")
	req, err := http.NewRequest("POST", s.URL+"/v1/allocate", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+s.TrackToken)
	req.Header.Set("X-Instruqt-Sandbox-ID", "student-drained")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "POOL_DRAINING") || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a drained allocate: %d %s", resp.StatusCode, body)
	}
	ctl(t, s, nil, "undrain").want(t, 0, `ended the drains of ["lab"]`)
	ctl(t, s, nil, "undrain", "--prefix", "lab").want(t, 0, "no drain ended")
}

// The admin token goes over plain http only to this machine: any other host needs https,
// and is refused before a request is sent.
func TestBrokerctlSendsTheTokenOverPlainHTTPToLoopbackOnly(t *testing.T) {
	// Reserved names and documentation addresses (RFC 2606, 5737, 3849): should a refusal
	// fail, nothing real is reached.
	for _, u := range []string{"http://example.com", "http://api.example.com:8080/prod", "http://192.0.2.8:8080", "http://198.51.100.20",
		"http://[2001:db8::1]:8080", "http://0.0.0.0:8080", "http://127.0.0.1.example.com", "http://localhost.example.com", "http://[::]:8080"} {
		var errOut bytes.Buffer
		if r := run(context.Background(), []string{"stats"}, getenv(map[string]string{"BROKER_URL": u, "BROKER_ADMIN_TOKEN": "a-token"}), io.Discard, &errOut); r != exitUsage ||
			!strings.Contains(errOut.String(), "refusing to send the admin token over plain http") {
			t.Errorf("%s: exit %d, %s", u, r, errOut.String())
		}
	}
	for _, u := range []string{"http://127.0.0.1:8080", "http://127.1.2.3", "http://[::1]:8080", "http://localhost:8080", "http://LOCALHOST/stage",
		"http://[::ffff:127.0.0.1]:8080", "https://api.example.com", "https://192.0.2.8:8443/prod"} {
		if _, err := newClient(u, "a-token", &http.Client{}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// A redirect is never followed: it could take the token to another host, or from https to
// plain http.
func TestBrokerctlFollowsNoRedirect(t *testing.T) {
	var leaked []string
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		leaked = append(leaked, r.Header.Get("Authorization"))
	}))
	defer plain.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusFound)
	}))
	defer tls.Close()
	c, err := newClient(tls.URL, "a-token", tls.Client())
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.call(context.Background(), "GET", "/v1/admin/stats", nil)
	var apiErr *apiError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusFound || len(leaked) != 0 {
		t.Fatalf("a redirect to plain http: %v, requests there %v", err, leaked)
	}
}

// The lab commands against the local stack, over HTTP: a profile set and listed; a
// capacity dry run and a reservation the pool cannot cover refused with the numbers; a
// coverable one created, listed and cancelled.
func TestBrokerctlProfilesAndReservations(t *testing.T) {
	s := startStack(t)
	ctl(t, s, nil, "set-profile", "--lab", "dns-lab", "--minutes", "120", "--message", "The DNS workshop is full").want(t, 0, `profile lab="dns-lab" prefix="" saved`)
	ctl(t, s, nil, "profiles").want(t, 0, `"dns-lab"`, "120", "The DNS workshop is full")
	ctl(t, s, nil, "set-profile", "--lab", "dns-lab", "--minutes", "5").failing(t, 1, "VALIDATION_ERROR", "lab_duration_minutes must be from 10")
	start := time.Now().Add(48 * time.Hour).UTC().Format(time.RFC3339)
	ctl(t, s, nil, "capacity", "--prefix", "lab", "--seats", "1000", "--start", start).want(t, 0, "NOT coverable", "promised to other reservations 0")
	ctl(t, s, nil, "reserve", "--lab", "dns-lab", "--prefix", "lab", "--seats", "1000", "--start", start).failing(t, 1, "RESERVATION_UNCOVERABLE", "1000 seats", "short")
	ctl(t, s, nil, "reserve", "--lab", "dns-lab", "--prefix", "lab", "--seats", "3", "--start", start).want(t, 0, "3 seats", "0 short")
	out := ctl(t, s, nil, "--json", "reservations")
	var list wire.Reservations
	if err := json.Unmarshal([]byte(out.stdout), &list); err != nil || len(list.Reservations) != 1 {
		t.Fatalf("reservations: %s (%v)", out.stdout, err)
	}
	ctl(t, s, nil, "reservations").want(t, 0, list.Reservations[0].ID, "scheduled")
	ctl(t, s, nil, "cancel-reservation", list.Reservations[0].ID).want(t, 0, "is cancelled")
}
