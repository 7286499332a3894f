package csp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
)

// answering serves every request with status, content type and body, and
// records what it was asked.
func answering(t *testing.T, status int, contentType, body string) (string, func() []string) {
	t.Helper()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		if status >= 300 && status <= 399 {
			http.Redirect(w, r, "/login?next=csp", status)
			return
		}
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), seen...)
	}
}

const (
	htmlType = "text/html; charset=utf-8"
	jsonType = "application/json"
	page404  = "<html><head><title>404 Not Found</title></head><body><center><h1>404 Not Found</h1></center><hr><center>nginx</center></body></html>"
)

func TestProbeClassifiesTheAnswer(t *testing.T) {
	t.Parallel()
	const (
		ok       = "ok"
		wrong    = "wrong endpoint"
		rejected = "token rejected"
		failing  = "CSP failing"
	)
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        string
	}{
		{"200 listing", 200, jsonType, `{"results":[]}`, ok},
		{"200 listing without a content type", 200, "", `{"results":[{"id":"x"}]}`, ok},
		{"404 JSON", 404, jsonType, `{"error":"no such route"}`, wrong},
		{"404 HTML", 404, htmlType, page404, wrong},
		{"405", 405, jsonType, `{}`, wrong},
		{"410", 410, "", ``, wrong},
		{"200 HTML page", 200, htmlType, "<!doctype html><html><body>Welcome to the portal</body></html>", wrong},
		{"200 HTML labelled JSON", 200, jsonType, "  <html><body>Sign in</body></html>", wrong},
		{"301 redirect", 301, "", "", wrong},
		{"302 redirect", 302, "", "", wrong},
		{"307 redirect", 307, "", "", wrong},
		{"308 redirect", 308, "", "", wrong},
		{"401", 401, jsonType, `{"error":"invalid token"}`, rejected},
		{"403", 403, jsonType, `{"error":"forbidden"}`, rejected},
		{"503 HTML", 503, htmlType, "<html><body>unable to get licenses</body></html>", failing},
		{"200 JSON without results", 200, jsonType, `{"error":"license service down"}`, failing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, seen := answering(t, tt.status, tt.contentType, tt.body)
			c := newClient(t, url+"/v2", func(o *csp.Options) { o.MaxAttempts = 1 })
			err := c.Probe(context.Background())

			got := ok
			switch {
			case errors.Is(err, csp.ErrWrongEndpoint):
				got = wrong
			case errors.Is(err, csp.ErrTokenRejected):
				got = rejected
			case csp.IsTransient(err):
				got = failing
			case err != nil:
				got = "unclassified: " + err.Error()
			}
			if got != tt.want {
				t.Fatalf("Probe = %v (%s), want %s", err, got, tt.want)
			}
			if errors.Is(err, csp.ErrWrongEndpoint) && errors.Is(err, csp.ErrTokenRejected) {
				t.Fatalf("Probe = %v: both wrong endpoint and rejected token", err)
			}
			if got != failing && csp.IsTransient(err) {
				t.Fatalf("Probe = %v: a configuration error must not be transient", err)
			}
			// One cheap authenticated call, and a redirect is not followed.
			want := "GET /v2/current_user/accounts?_limit=1&_offset=0 Token " + testToken
			if s := seen(); len(s) != 1 || s[0] != want {
				t.Fatalf("server saw %q, want only %q", s, want)
			}
			if c.BreakerState() != breaker.Closed {
				t.Fatal("breaker not closed")
			}
		})
	}
}

func TestProbeAgainstTheFake(t *testing.T) {
	t.Parallel()
	s := startFake(t, cspfake.Options{}, cspfake.Generate(3, nil)...)
	if err := newClient(t, s.URL(), nil).Probe(context.Background()); err != nil {
		t.Fatalf("Probe of the right endpoint = %v", err)
	}
	// The base URL without its /v2: every route answers 404.
	wrongBase := strings.TrimSuffix(s.URL(), "/v2")
	if err := newClient(t, wrongBase, nil).Probe(context.Background()); !errors.Is(err, csp.ErrWrongEndpoint) {
		t.Fatalf("Probe of a wrong base URL = %v, want ErrWrongEndpoint", err)
	}
	badToken := newClient(t, s.URL(), func(o *csp.Options) { o.Token = "revoked" })
	if err := badToken.Probe(context.Background()); !errors.Is(err, csp.ErrTokenRejected) {
		t.Fatalf("Probe with a wrong token = %v, want ErrTokenRejected", err)
	}
	if got := s.Requests(); len(got) != 3 || got[0].Query != "_limit=1&_offset=0" {
		t.Fatalf("requests = %+v, want three probes with _limit=1", got)
	}
}

func TestDeleteAccountTypedAnswers(t *testing.T) {
	t.Parallel()
	const (
		wrong    = "wrong endpoint"
		rejected = "token rejected"
		notFound = "not found"
	)
	tests := []struct {
		name        string
		status      int
		contentType string
		body        string
		want        string
	}{
		{"403", 403, jsonType, `{"error":"forbidden"}`, rejected},
		{"401", 401, jsonType, `{"error":"invalid token"}`, rejected},
		{"301", 301, "", "", wrong},
		{"302", 302, "", "", wrong},
		{"303", 303, "", "", wrong},
		{"307", 307, "", "", wrong},
		{"308", 308, "", "", wrong},
		{"404 HTML", 404, htmlType, page404, wrong},
		{"404 JSON", 404, jsonType, `{"error":[{"message":"account not found"}]}`, notFound},
		{"404 empty", 404, "", "", notFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, seen := answering(t, tt.status, tt.contentType, tt.body)
			c := newClient(t, url, nil)
			err := c.DeleteAccount(context.Background(), "identity/accounts/6f1c2a4e-9b1d-4c8e-a6f2-3d5e7b9c1a01")

			var got string
			switch {
			case errors.Is(err, csp.ErrWrongEndpoint):
				got = wrong
			case errors.Is(err, csp.ErrTokenRejected):
				got = rejected
			case errors.Is(err, csp.ErrAccountNotFound):
				got = notFound
			}
			if got != tt.want || csp.IsTransient(err) {
				t.Fatalf("DeleteAccount = %v (%q, transient %v), want a non-transient %s", err, got, csp.IsTransient(err), tt.want)
			}
			if he, ok := errors.AsType[*csp.HTTPError](err); tt.want != notFound && tt.status != 404 && (!ok || he.Status != tt.status) {
				t.Fatalf("DeleteAccount = %v, want it to carry HTTPError %d", err, tt.status)
			}
			if s := seen(); len(s) != 1 || !strings.HasPrefix(s[0], "DELETE /sandbox/accounts/") {
				t.Fatalf("server saw %q: want one DELETE, no retry, no redirect followed", s)
			}
		})
	}
}
