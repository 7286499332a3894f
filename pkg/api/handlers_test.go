package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/sandbox-broker/broker/pkg/api/apitest"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestAllocateCreatesThenReplays(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 3)
	first := f.call(t, event(t, "allocate", student("participant-1"), nil))
	if first.StatusCode != http.StatusCreated {
		t.Fatalf("first allocation: %d %s", first.StatusCode, first.Body)
	}
	a := decode[map[string]any](t, first.Body)
	id, _ := a["sandbox_id"].(string)
	if first.Headers["Location"] != "/v1/sandboxes/"+id || !strings.HasPrefix(a["name"].(string), "lab-") ||
		!strings.HasPrefix(a["external_id"].(string), "identity/accounts/") || a["track_name"] != "dns-basics" || a["sfdc_account_id"] != "001ABC" {
		t.Fatalf("allocation %s, Location %q", first.Body, first.Headers["Location"])
	}
	if exp, at := a["expires_at"].(float64), a["allocated_at"].(float64); exp-at != 48*3600 {
		t.Fatalf("expires_at - allocated_at = %v, want the lab duration", exp-at)
	}

	replay := f.call(t, event(t, "allocate", student("participant-1"), nil))
	if replay.StatusCode != http.StatusOK || replay.Body != first.Body || replay.Headers["Location"] != first.Headers["Location"] {
		t.Fatalf("replay: %d %s, want 200 with the same body", replay.StatusCode, replay.Body)
	}
	// The legacy header names the same student.
	legacy := f.call(t, event(t, "allocate", map[string]string{HeaderLegacyTrackID: "participant-1"}, nil))
	if legacy.StatusCode != http.StatusOK || decode[map[string]any](t, legacy.Body)["sandbox_id"] != id {
		t.Fatalf("legacy header replay: %d %s", legacy.StatusCode, legacy.Body)
	}
	// A second student gets another sandbox; absent optional fields are null.
	other := f.call(t, event(t, "allocate", map[string]string{HeaderSandboxID: "participant-2"}, nil))
	b := decode[map[string]any](t, other.Body)
	if other.StatusCode != http.StatusCreated || b["sandbox_id"] == id {
		t.Fatalf("second student: %d %s", other.StatusCode, other.Body)
	}
	if v, ok := b["track_name"]; !ok || v != nil {
		t.Fatalf("track_name must be null when absent: %s", other.Body)
	}

	// Metrics: one EMF point per allocation, with its outcome.
	var outcomes []string
	for _, m := range f.metrics.JSONLines(t) {
		if _, ok := m["_aws"]; ok {
			outcomes = append(outcomes, m["Outcome"].(string))
		}
	}
	if strings.Join(outcomes, ",") != "created,replay,replay,created" {
		t.Fatalf("metric outcomes %v", outcomes)
	}
	// One log line per request, with who, what and how.
	logs := f.logs.JSONLines(t)
	if len(logs) != 4 {
		t.Fatalf("%d log lines for 4 requests", len(logs))
	}
	l := logs[0]
	for k, v := range map[string]any{"msg": "request", "level": "INFO", "route": "allocate", "status": float64(201), "student": "participant-1",
		"sandbox_id": id, "client": "instruqt", "outcome": "created"} {
		if l[k] != v {
			t.Errorf("log %s = %v, want %v", k, l[k], v)
		}
	}
	if l["request_id"] == "" || l["latency_ms"] == nil {
		t.Errorf("log line lacks request_id or latency: %v", l)
	}
	pooltest.Check(t, f.pool)
}

func TestAllocateIdempotencyKeyAndPrefix(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 2)
	h := student("participant-1")
	h[HeaderIdempotencyKey] = "lab-run-1"
	first := decode[map[string]any](t, f.call(t, event(t, "allocate", h, nil)).Body)
	// A second key is over the default limit of one live allocation per student; the
	// envelope names no student and offers no Retry-After (only a release helps).
	h[HeaderIdempotencyKey] = "lab-run-2"
	over := f.call(t, event(t, "allocate", h, nil))
	if d := wantError(t, over, http.StatusConflict, CodeStudentLimit); d.RetryAfter != nil || over.Headers["Retry-After"] != "" || strings.Contains(over.Body, "participant-1") {
		t.Fatalf("the student limit's answer: %v %s", over.Headers, over.Body)
	}
	if m := f.metrics.JSONLines(t); m[len(m)-1]["Outcome"] != "limit" {
		t.Fatalf("metric of the refusal %v", m[len(m)-1])
	}
	cfg := poolCfg
	cfg.StudentMaxLiveAllocations = 3
	f.api.broker = broker.New(f.pool, cfg)
	second := f.call(t, event(t, "allocate", h, nil))
	if second.StatusCode != http.StatusCreated || decode[map[string]any](t, second.Body)["sandbox_id"] == first["sandbox_id"] {
		t.Fatalf("a new idempotency key below the limit must allocate a new sandbox: %d %s", second.StatusCode, second.Body)
	}
	h[HeaderNamePrefix] = "nomatch"
	h[HeaderIdempotencyKey] = "lab-run-3"
	resp := f.call(t, event(t, "allocate", h, nil))
	d := wantError(t, resp, http.StatusConflict, CodeNoSandboxes)
	if d.RetryAfter == nil || *d.RetryAfter != 30 || resp.Headers["Retry-After"] != "30" {
		t.Fatalf("409 must carry retry_after and Retry-After 30: %s %v", resp.Body, resp.Headers)
	}
}

func TestAllocateBackendFailureIs503WithoutInternals(t *testing.T) {
	// A pool on a table that does not exist: every DynamoDB call fails.
	f := newFixtureOn(t, pool.New(pooltest.Client(), "no-such-table-"+strings.ReplaceAll(t.Name(), "/", "-"), pool.Options{}), config.API{})
	resp := f.call(t, event(t, "allocate", student("participant-1"), nil))
	d := wantError(t, resp, http.StatusServiceUnavailable, CodeServiceUnavailable)
	if resp.Headers["Retry-After"] != "5" || d.RetryAfter == nil || *d.RetryAfter != 5 {
		t.Fatalf("503 without Retry-After: %v %s", resp.Headers, resp.Body)
	}
	if strings.Contains(resp.Body, "no-such-table") || strings.Contains(resp.Body, "ResourceNotFound") || strings.Contains(resp.Body, "pool:") {
		t.Fatalf("the answer leaks the internal error: %s", resp.Body)
	}
	logs := f.logs.JSONLines(t)
	if len(logs) != 1 || logs[0]["level"] != "ERROR" || !strings.Contains(logs[0]["error"].(string), "ResourceNotFoundException") {
		t.Fatalf("the cause must be logged at ERROR: %v", logs)
	}
	if m := f.metrics.JSONLines(t); len(m) != 1 || m[0]["Outcome"] != "error" {
		t.Fatalf("metric %v", m)
	}
}

// The cap the authorizer hands on holds the client: its second live allocation is refused
// with the envelope's CLIENT_LIMIT_REACHED and a Retry-After, whatever the student.
func TestAllocateHoldsTheClientCapFromTheAuthorizer(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 3)
	capped := func(who string) events.APIGatewayProxyRequest {
		ev := event(t, "allocate", student(who), nil)
		ev.RequestContext.Authorizer[ContextMaxLiveAllocations] = "1"
		return ev
	}
	first := f.call(t, capped("participant-1"))
	if first.StatusCode != http.StatusCreated {
		t.Fatalf("first allocation: %d %s", first.StatusCode, first.Body)
	}
	if replay := f.call(t, capped("participant-1")); replay.StatusCode != http.StatusOK {
		t.Fatalf("a replay at the cap: %d %s", replay.StatusCode, replay.Body)
	}
	over := f.call(t, capped("participant-2"))
	if d := wantError(t, over, http.StatusConflict, CodeClientLimit); d.RetryAfter == nil || *d.RetryAfter != retryClientLimit || strings.Contains(over.Body, "participant") {
		t.Fatalf("the cap's answer: %s", over.Body)
	}
	// Without the cap in its context, the same client allocates again.
	if resp := f.call(t, event(t, "allocate", student("participant-2"), nil)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("without a cap: %d %s", resp.StatusCode, resp.Body)
	}
	pooltest.Check(t, f.pool)
}

func TestErrorMapping(t *testing.T) {
	for _, c := range []struct {
		err    error
		status int
		code   string
	}{
		{broker.ErrNoSandbox, 409, CodeNoSandboxes},
		{broker.ErrStudentLimit, 409, CodeStudentLimit},
		{broker.ErrClientLimit, 409, CodeClientLimit},
		{broker.ErrLapsed, 409, CodeAllocationLapsed},
		{broker.ErrBusy, 503, CodeServiceUnavailable},
		{pool.ErrThrottled, 503, CodeServiceUnavailable},
		{broker.ErrNotFound, 404, CodeSandboxNotFound},
		{broker.ErrNotOwner, 403, CodeNotSandboxOwner},
		{context.DeadlineExceeded, 503, CodeServiceUnavailable},
		{errors.New("anything else"), 503, CodeServiceUnavailable},
	} {
		if e := toError(c.err); e.Status != c.status || e.Code != c.code {
			t.Errorf("%v → %d %s, want %d %s", c.err, e.Status, e.Code, c.status, c.code)
		}
	}
	if a, b := allocationOutcome(broker.Allocation{}, broker.ErrBusy), allocationOutcome(broker.Allocation{}, pool.ErrThrottled); a != "busy" || b != "busy" {
		t.Errorf("contention and throttling are the busy outcome: %s %s", a, b)
	}
}

func TestGetAndMarkForDeletion(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	f := newFixtureOn(t, pooltest.Clocked(pooltest.New(t), clock.Now), config.API{})
	fill(t, f.pool, "lab", 2)
	alloc := decode[map[string]any](t, f.call(t, event(t, "allocate", student("participant-1"), nil)).Body)
	id := alloc["sandbox_id"].(string)
	params := map[string]string{"id": id}

	got := f.call(t, event(t, "get-sandbox", student("participant-1"), params))
	s := decode[map[string]any](t, got.Body)
	if got.StatusCode != 200 || s["status"] != "allocated" || s["allocated_to_track"] != "participant-1" || s["expires_at"] != alloc["expires_at"] {
		t.Fatalf("owner read: %d %s", got.StatusCode, got.Body)
	}
	for _, route := range []string{"get-sandbox", "mark-for-deletion"} {
		resp := f.call(t, event(t, route, student("participant-2"), params))
		wantError(t, resp, http.StatusForbidden, CodeNotSandboxOwner)
		if strings.Contains(resp.Body, "participant-1") || strings.Contains(resp.Body, "participant-2") {
			t.Fatalf("%s: the answer names a student: %s", route, resp.Body)
		}
		wantError(t, f.call(t, event(t, route, student("participant-1"), map[string]string{"id": "999999"})), http.StatusNotFound, CodeSandboxNotFound)
	}

	marked := f.call(t, event(t, "mark-for-deletion", student("participant-1"), params))
	m := decode[map[string]any](t, marked.Body)
	if marked.StatusCode != 200 || m["status"] != "pending_deletion" || m["sandbox_id"] != id || m["deletion_requested_at"].(float64) < alloc["allocated_at"].(float64) {
		t.Fatalf("mark: %d %s", marked.StatusCode, marked.Body)
	}
	clock.Advance(time.Minute) // a repeat a minute later must still answer the stored time
	again := f.call(t, event(t, "mark-for-deletion", student("participant-1"), params))
	if again.StatusCode != 200 || again.Body != marked.Body {
		t.Fatalf("repeat: %d %s, want %s", again.StatusCode, again.Body, marked.Body)
	}
	after := decode[map[string]any](t, f.call(t, event(t, "get-sandbox", student("participant-1"), params)).Body)
	if after["status"] != "pending_deletion" {
		t.Fatalf("after release the owner still reads it: %v", after)
	}
	pooltest.Check(t, f.pool)
}

func TestTrackRequestValidation(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 1)
	long := strings.Repeat("a", 129)
	for _, c := range []struct {
		name    string
		headers map[string]string
		multi   map[string][]string
		code    string
	}{
		{"no student header", map[string]string{HeaderTrackName: "x"}, nil, CodeMissingSandboxID},
		{"blank student header", map[string]string{HeaderSandboxID: "  \t "}, nil, CodeMissingSandboxID},
		{"student ID too long", map[string]string{HeaderSandboxID: long}, nil, CodeValidation},
		{"control character", map[string]string{HeaderSandboxID: "abc\x01def"}, nil, CodeValidation},
		{"DEL", map[string]string{HeaderSandboxID: "abc\x7f"}, nil, CodeValidation},
		{"newline inside", map[string]string{HeaderSandboxID: "abc\ndef"}, nil, CodeValidation},
		{"invalid UTF-8", map[string]string{HeaderSandboxID: "abc\xff"}, nil, CodeValidation},
		{"zero-width space", map[string]string{HeaderSandboxID: "abc\u200bdef"}, nil, CodeValidation},
		{"no-break space", map[string]string{HeaderSandboxID: "abc\u00a0def"}, nil, CodeValidation},
		{"malformed legacy header", map[string]string{HeaderLegacyTrackID: "\x00"}, nil, CodeValidation},
		{"lab slug too long", map[string]string{HeaderSandboxID: "p", HeaderTrackName: long}, nil, CodeValidation},
		{"prefix with a tab inside", map[string]string{HeaderSandboxID: "p", HeaderNamePrefix: "la\tb"}, nil, CodeValidation},
		{"idempotency key too long", map[string]string{HeaderSandboxID: "p", HeaderIdempotencyKey: long}, nil, CodeValidation},
		{"two different student IDs", nil, map[string][]string{HeaderSandboxID: {"alice", "bob"}}, CodeValidation},
		{"two different IDs in differently cased names", nil, map[string][]string{"x-instruqt-sandbox-id": {"alice"}, "X-INSTRUQT-SANDBOX-ID": {"bob"}}, CodeValidation},
		{"two different prefixes", map[string]string{HeaderSandboxID: "p"}, map[string][]string{HeaderNamePrefix: {"lab", "other"}}, CodeValidation},
	} {
		ev := event(t, "allocate", c.headers, nil)
		for k, vs := range c.multi {
			ev.MultiValueHeaders[k] = vs
			ev.Headers[k] = vs[len(vs)-1]
		}
		resp := f.call(t, ev)
		d := wantError(t, resp, http.StatusBadRequest, c.code)
		for _, v := range c.headers {
			if len(v) > 3 && strings.Contains(d.Message, v) {
				t.Errorf("%s: the message echoes the value: %q", c.name, d.Message)
			}
		}
	}

	ok := func(name string, headers map[string]string, multi map[string][]string) {
		t.Helper()
		ev := event(t, "allocate", headers, nil)
		for k, vs := range multi {
			ev.MultiValueHeaders[k] = vs
		}
		if resp := f.call(t, ev); resp.StatusCode >= 300 {
			t.Errorf("%s: %d %s", name, resp.StatusCode, resp.Body)
		}
	}
	ok("the same value twice", nil, map[string][]string{HeaderSandboxID: {"carol", "carol"}})
	ok("lowercase header name, trimmed value", map[string]string{"x-instruqt-sandbox-id": "  carol\t"}, nil)
	ok("the preferred header wins over a malformed legacy one", map[string]string{HeaderSandboxID: "carol", HeaderLegacyTrackID: "\x00"}, nil)
	ok("an empty preferred header falls back to the legacy one", map[string]string{HeaderSandboxID: " ", HeaderLegacyTrackID: "carol"}, nil)
	ok("printable non-ASCII", map[string]string{HeaderSandboxID: "carol", HeaderTrackName: "DNS-Grundlagen-Übung"}, nil)

	for _, id := range []string{"a b", "../1", "1;2", strings.Repeat("1", 65), "%31"} {
		wantError(t, f.call(t, event(t, "get-sandbox", student("carol"), map[string]string{"id": id})), http.StatusBadRequest, CodeValidation)
	}
}

func TestFunctionRefusesWhatItDoesNotServe(t *testing.T) {
	f := newFixture(t, config.API{})
	fn, err := f.api.Function("allocate")
	if err != nil {
		t.Fatal(err)
	}
	serve := func(mutate func(ev *eventT)) (int, string) {
		ev := event(t, "allocate", student("p"), nil)
		mutate(&ev)
		resp, err := fn(ctx, ev)
		if err != nil {
			t.Fatal(err)
		}
		apitest.CheckError(t, resp.StatusCode, httpHeader(resp.Headers), []byte(resp.Body))
		return resp.StatusCode, apitest.DecodeError(t, []byte(resp.Body)).Code
	}
	for _, c := range []struct {
		name   string
		mutate func(ev *eventT)
		status int
		code   string
	}{
		{"another route's event", func(ev *eventT) { ev.Resource = "/v1/sandboxes/{id}" }, 404, CodeNotFound},
		{"another method", func(ev *eventT) { ev.HTTPMethod = "DELETE" }, 405, CodeMethodNotAllowed},
		{"a large body", func(ev *eventT) { ev.Body = strings.Repeat("x", maxBodyBytes+1) }, 413, CodePayloadTooLarge},
		{"no authorizer context", func(ev *eventT) { ev.RequestContext.Authorizer = nil }, 403, CodeForbidden},
		{"an admin token's context", func(ev *eventT) { ev.RequestContext.Authorizer[ContextScope] = "admin" }, 403, CodeForbidden},
		{"a forged public scope", func(ev *eventT) { ev.RequestContext.Authorizer[ContextScope] = "public" }, 403, CodeForbidden},
		{"a cap the authorizer cannot have written", func(ev *eventT) { ev.RequestContext.Authorizer[ContextMaxLiveAllocations] = "0" }, 403, CodeForbidden},
		{"a cap that is no number", func(ev *eventT) { ev.RequestContext.Authorizer[ContextMaxLiveAllocations] = "ten" }, 403, CodeForbidden},
	} {
		if status, code := serve(c.mutate); status != c.status || code != c.code {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, code, c.status, c.code)
		}
	}
	if status, _ := serve(func(ev *eventT) { ev.Body = `{"ignored":true}` }); status != http.StatusConflict {
		t.Errorf("a small body is ignored (the pool is empty: 409), got %d", status)
	}
	if _, err := f.api.Function("no-such-route"); err == nil {
		t.Error("Function accepted an unknown route")
	}
}

func TestPanicIsA500InTheEnvelope(t *testing.T) {
	f := newFixture(t, config.API{})
	route, _ := RouteByName("healthz")
	route.handle = func(*API, context.Context, *request) (reply, error) { panic("boom: secret internals") }
	resp := f.api.serve(ctx, route, event(t, "healthz", nil, nil))
	apitest.Check(t, route.Method, route.Path, resp.StatusCode, httpHeader(resp.Headers), []byte(resp.Body))
	wantError(t, resp, http.StatusInternalServerError, CodeInternal)
	if strings.Contains(resp.Body, "boom") || strings.Contains(resp.Body, "goroutine") {
		t.Fatalf("the panic leaks into the answer: %s", resp.Body)
	}
	logs := f.logs.JSONLines(t)
	if len(logs) != 1 || logs[0]["level"] != "ERROR" || !strings.Contains(logs[0]["error"].(string), "boom") {
		t.Fatalf("the panic must be logged at ERROR with its cause: %v", logs)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	f := newFixture(t, config.API{})
	if resp := f.call(t, event(t, "healthz", nil, nil)); resp.StatusCode != 200 {
		t.Fatalf("healthz %d", resp.StatusCode)
	}
	if resp := f.call(t, event(t, "readyz", nil, nil)); resp.StatusCode != 200 || !strings.Contains(resp.Body, `"dynamodb":"ok"`) {
		t.Fatalf("readyz %d %s", resp.StatusCode, resp.Body)
	}
	down := newFixtureOn(t, pool.New(pooltest.Client(), "missing-table-for-readyz", pool.Options{}), config.API{})
	resp := down.call(t, event(t, "readyz", nil, nil))
	wantError(t, resp, http.StatusServiceUnavailable, CodeServiceUnavailable)
	if strings.Contains(resp.Body, "missing-table") || strings.Contains(resp.Body, "exist") {
		t.Fatalf("readyz leaks internals: %s", resp.Body)
	}
	if resp := down.call(t, event(t, "healthz", nil, nil)); resp.StatusCode != 200 {
		t.Fatalf("healthz must not depend on the table: %d", resp.StatusCode)
	}
}

func TestCORSOnlyForConfiguredOrigins(t *testing.T) {
	withOrigin := func(f *fixture, origin string) map[string]string {
		ev := event(t, "healthz", map[string]string{"Origin": origin}, nil)
		return f.call(t, ev).Headers
	}
	none := newFixture(t, config.API{})
	if h := withOrigin(none, "https://evil.example"); h["Access-Control-Allow-Origin"] != "" {
		t.Fatalf("no origins configured, yet CORS headers: %v", h)
	}
	some := newFixture(t, config.API{CORSOrigins: []string{"https://labs.example.com"}})
	if h := withOrigin(some, "https://labs.example.com"); h["Access-Control-Allow-Origin"] != "https://labs.example.com" || h["Vary"] != "Origin" ||
		!strings.Contains(h["Access-Control-Expose-Headers"], HeaderRequestID) {
		t.Fatalf("allowed origin: %v", h)
	}
	if h := withOrigin(some, "https://evil.example"); h["Access-Control-Allow-Origin"] != "" {
		t.Fatalf("another origin got CORS headers: %v", h)
	}
}

func TestLogsNeverCarryTheToken(t *testing.T) {
	f := newFixture(t, config.API{})
	const token = "Bearer very-secret-token-value-0123456789"
	for _, h := range []map[string]string{
		{HeaderSandboxID: "p", HeaderAuthorization: token},
		{HeaderAuthorization: token},
		{HeaderSandboxID: "\x01", HeaderAuthorization: token},
	} {
		f.call(t, event(t, "allocate", h, nil))
	}
	if strings.Contains(f.logs.String(), "very-secret-token") {
		t.Fatalf("a log line carries the token:\n%s", f.logs.String())
	}
	levels := map[string]int{}
	for _, l := range f.logs.JSONLines(t) {
		levels[l["level"].(string)]++
	}
	if levels["INFO"] != 1 || levels["WARN"] != 2 { // 409 on the empty pool, then two 400s
		t.Fatalf("levels %v", levels)
	}
}

type eventT = events.APIGatewayProxyRequest
