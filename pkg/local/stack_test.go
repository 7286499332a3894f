package local

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// The upstream Instruqt client flow, over HTTP through the gateway emulator: allocate with
// the participant ID, track slug and prefix "lab"; retry the allocate; read; release;
// release again. A second student never reaches the first one's sandbox.
func TestInstruqtClientFlowOverHTTP(t *testing.T) {
	s, banner, logs := startStack(t, nil)
	for _, want := range []string{"DynamoDB    [external] DYNAMODB_ENDPOINT", "(existing)", "CSP         [started] fake CSP",
		"First sync  sync ok (created 6, listed 6)", "track: " + s.TrackToken, "admin: " + s.AdminToken, "curl -sS -i -X POST " + s.URL + "/v1/allocate",
		"BROKER_URL=" + s.URL + " BROKER_ADMIN_TOKEN=" + s.AdminToken + " go run ./cmd/brokerctl stats", s.URL + "/console",
		"Ready at " + s.URL} {
		if !strings.Contains(banner, want) {
			t.Errorf("the banner lacks %q:\n%s", want, banner)
		}
	}
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Fatalf("the API is not on 127.0.0.1: %s", s.URL)
	}
	c := client{t, s.URL}
	h := track(s.TrackToken, "participant-0001")
	h.Set("X-Instruqt-Track-ID", "dns-basics-lab")
	h.Set("X-Sandbox-Name-Prefix", "lab")

	first := c.do("POST", "/v1/allocate", h, nil)
	wantStatus(t, "allocate", first, http.StatusCreated, "")
	var alloc map[string]any
	if err := json.Unmarshal(first.body, &alloc); err != nil {
		t.Fatal(err)
	}
	id := alloc["sandbox_id"].(string)
	if !strings.HasPrefix(alloc["name"].(string), "lab-") || first.header.Get("Location") != "/v1/sandboxes/"+id {
		t.Fatalf("allocation %s, Location %q", first.body, first.header.Get("Location"))
	}
	retry := c.do("POST", "/v1/allocate", h, nil)
	wantStatus(t, "retried allocate", retry, http.StatusOK, "")
	if !bytes.Equal(retry.body, first.body) {
		t.Fatalf("the retry named another sandbox: %s vs %s", retry.body, first.body)
	}
	wantStatus(t, "get", c.do("GET", "/v1/sandboxes/"+id, h, nil), http.StatusOK, "")

	other := track(s.TrackToken, "participant-0002")
	wantStatus(t, "another student's get", c.do("GET", "/v1/sandboxes/"+id, other, nil), http.StatusForbidden, "NOT_SANDBOX_OWNER")
	wantStatus(t, "another student's mark", c.do("POST", "/v1/sandboxes/"+id+"/mark-for-deletion", other, nil), http.StatusForbidden, "NOT_SANDBOX_OWNER")

	mark := c.do("POST", "/v1/sandboxes/"+id+"/mark-for-deletion", h, nil)
	wantStatus(t, "mark", mark, http.StatusOK, "")
	again := c.do("POST", "/v1/sandboxes/"+id+"/mark-for-deletion", h, nil)
	wantStatus(t, "repeated mark", again, http.StatusOK, "")
	if !bytes.Equal(mark.body, again.body) || !strings.Contains(string(mark.body), `"status":"pending_deletion"`) {
		t.Fatalf("mark %s, repeat %s", mark.body, again.body)
	}

	// The second student's own allocation is another sandbox.
	second := c.do("POST", "/v1/allocate", other, nil)
	wantStatus(t, "second student's allocate", second, http.StatusCreated, "")
	if strings.Contains(string(second.body), `"sandbox_id":"`+id+`"`) {
		t.Fatal("two students got the same sandbox")
	}
	// Every answer went through the authorizer and was logged by the function.
	if !strings.Contains(logs.String(), `"msg":"authorizer"`) || !strings.Contains(logs.String(), `"client":"local-track"`) {
		t.Fatalf("no authorizer or request log lines:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), s.TrackToken) {
		t.Fatal("a log line carries the token")
	}
}

// Hostile requests always get the envelope with a 4xx, never a 5xx.
func TestHostileRequestsGetA4xxEnvelope(t *testing.T) {
	s, _, _ := startStack(t, nil)
	c := client{t, s.URL}
	good := "Bearer " + s.TrackToken
	withAuth := func(values ...string) http.Header {
		h := http.Header{"X-Instruqt-Sandbox-Id": {"participant-9"}}
		for _, v := range values {
			h.Add("Authorization", v)
		}
		return h
	}
	withStudent := func(values ...string) http.Header {
		h := http.Header{"Authorization": {good}}
		for _, v := range values {
			h.Add("X-Instruqt-Sandbox-ID", v)
		}
		return h
	}
	huge := http.Header{"Authorization": {good}, "X-Instruqt-Sandbox-Id": {"p"}, "X-Padding": {strings.Repeat("a", 11000)}}
	for _, r := range []struct {
		name         string
		method, path string
		header       http.Header
		body         []byte
		status       int
		code         string
	}{
		{"no Authorization", "POST", "/v1/allocate", withAuth(), nil, 401, "UNAUTHORIZED"},
		{"empty Authorization", "POST", "/v1/allocate", withAuth(""), nil, 401, "UNAUTHORIZED"},
		{"scheme only", "POST", "/v1/allocate", withAuth("Bearer"), nil, 401, "UNAUTHORIZED"},
		{"Bearer twice", "POST", "/v1/allocate", withAuth("Bearer " + good), nil, 401, "UNAUTHORIZED"},
		{"lowercase scheme", "POST", "/v1/allocate", withAuth("bearer " + s.TrackToken), nil, 401, "UNAUTHORIZED"},
		{"extra space", "POST", "/v1/allocate", withAuth("Bearer  " + s.TrackToken), nil, 401, "UNAUTHORIZED"},
		{"unknown token", "POST", "/v1/allocate", withAuth("Bearer not-a-configured-token-123456"), nil, 401, "UNAUTHORIZED"},
		{"two different Authorization headers", "POST", "/v1/allocate", withAuth(good, "Bearer not-a-configured-token-123456"), nil, 401, "UNAUTHORIZED"},
		{"the admin token on a track route", "POST", "/v1/allocate", withAuth("Bearer " + s.AdminToken), nil, 403, "FORBIDDEN"},
		{"no student header", "POST", "/v1/allocate", http.Header{"Authorization": {good}}, nil, 400, "MISSING_SANDBOX_ID"},
		{"oversized student ID", "POST", "/v1/allocate", withStudent(strings.Repeat("s", 4000)), nil, 400, "VALIDATION_ERROR"},
		{"invisible character", "POST", "/v1/allocate", withStudent("student\u200b1"), nil, 400, "VALIDATION_ERROR"},
		{"non-UTF-8 bytes", "POST", "/v1/allocate", withStudent("student\xff\xfe"), nil, 400, "VALIDATION_ERROR"},
		{"two student IDs", "POST", "/v1/allocate", withStudent("alice", "bob"), nil, 400, "VALIDATION_ERROR"},
		{"headers beyond API Gateway's quota", "POST", "/v1/allocate", huge, nil, 413, "PAYLOAD_TOO_LARGE"},
		{"a body no route takes", "POST", "/v1/allocate", withStudent("p"), bytes.Repeat([]byte("x"), 100<<10), 413, "PAYLOAD_TOO_LARGE"},
		{"a huge body", "POST", "/v1/allocate", withStudent("p"), bytes.Repeat([]byte("x"), 7<<20), 413, "PAYLOAD_TOO_LARGE"},
		{"a malformed sandbox ID", "GET", "/v1/sandboxes/a;b", withStudent("p"), nil, 400, "VALIDATION_ERROR"},
		{"unknown route", "GET", "/v1/nope", nil, nil, 404, "NOT_FOUND"},
		{"a track token on an admin route", "GET", "/v1/admin/stats", withAuth(good), nil, 403, "FORBIDDEN"},
		{"path traversal", "GET", "/v1/sandboxes/../../etc/passwd", withStudent("p"), nil, 404, "NOT_FOUND"},
		{"root", "GET", "/", nil, nil, 404, "NOT_FOUND"},
		{"wrong method", "GET", "/v1/allocate", withAuth(good), nil, 405, "METHOD_NOT_ALLOWED"},
		{"DELETE a sandbox", "DELETE", "/v1/sandboxes/1", withAuth(good), nil, 405, "METHOD_NOT_ALLOWED"},
		{"PUT on health", "PUT", "/healthz", nil, nil, 405, "METHOD_NOT_ALLOWED"},
		{"preflight without CORS configured", "OPTIONS", "/v1/allocate", http.Header{"Origin": {"https://evil.example"}, "Access-Control-Request-Method": {"POST"}}, nil, 405, "METHOD_NOT_ALLOWED"},
	} {
		a := c.do(r.method, r.path, r.header, r.body)
		wantStatus(t, r.name, a, r.status, r.code)
		if a.header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: CORS headers without configured origins", r.name)
		}
	}
}

func TestCORSPreflightForConfiguredOrigin(t *testing.T) {
	s, _, _ := startStack(t, map[string]string{"CORS_ALLOWED_ORIGINS": "https://labs.example.com"})
	req, _ := http.NewRequest("OPTIONS", s.URL+"/v1/sandboxes/42", nil)
	req.Header.Set("Origin", "https://labs.example.com")
	req.Header.Set("Access-Control-Request-Method", "GET")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "https://labs.example.com" ||
		resp.Header.Get("Access-Control-Allow-Methods") != "GET" || !strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "X-Instruqt-Sandbox-ID") ||
		resp.Header.Get("X-Request-ID") == "" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
	c := client{t, s.URL}
	h := track(s.TrackToken, "")
	h.Set("Origin", "https://labs.example.com")
	a := c.do("POST", "/v1/allocate", h, nil)
	if a.status != 400 || a.header.Get("Access-Control-Allow-Origin") != "https://labs.example.com" {
		t.Fatalf("an error answer to an allowed origin lacks CORS: %d %v", a.status, a.header)
	}
}
