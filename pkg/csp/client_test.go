package csp_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
)

func TestNewRejectsInvalidOptions(t *testing.T) {
	t.Parallel()
	valid := csp.Options{BaseURL: "https://csp.example.com/v2", Token: "abc"}
	tests := []struct {
		name  string
		tweak func(*csp.Options)
		want  string
	}{
		{"empty token", func(o *csp.Options) { o.Token = "" }, "token is empty"},
		{"blank token", func(o *csp.Options) { o.Token = "   " }, "token is empty"},
		{"token with space", func(o *csp.Options) { o.Token = "sekrit value" }, "token contains whitespace"},
		{"token with newline", func(o *csp.Options) { o.Token = "sekrit\r\nX-Evil: 1" }, "token contains whitespace"},
		{"empty base URL", func(o *csp.Options) { o.BaseURL = "" }, "base URL is empty"},
		{"relative base URL", func(o *csp.Options) { o.BaseURL = "/v2" }, "must be absolute http(s)"},
		{"ftp base URL", func(o *csp.Options) { o.BaseURL = "ftp://csp.example.com" }, "must be absolute http(s)"},
		{"no host", func(o *csp.Options) { o.BaseURL = "https:///v2" }, "has no host"},
		{"query", func(o *csp.Options) { o.BaseURL = "https://csp.example.com/v2?x=1" }, "query or fragment"},
		{"credentials", func(o *csp.Options) { o.BaseURL = "https://u:p@csp.example.com" }, "must not carry credentials"},
		{"negative connect timeout", func(o *csp.Options) { o.ConnectTimeout = -time.Second }, "connect timeout must not be negative"},
		{"negative request timeout", func(o *csp.Options) { o.RequestTimeout = -1 }, "request timeout must not be negative"},
		{"negative attempts", func(o *csp.Options) { o.MaxAttempts = -1 }, "max attempts must be between 1 and 10"},
		{"too many attempts", func(o *csp.Options) { o.MaxAttempts = 11 }, "max attempts must be between 1 and 10"},
		{"page too big", func(o *csp.Options) { o.PageSize = 1001 }, "page size must be between 1 and 1000"},
		{"negative threshold", func(o *csp.Options) { o.Breaker.Threshold = -1 }, "breaker threshold"},
		{"negative open-for", func(o *csp.Options) { o.Breaker.OpenFor = -time.Second }, "breaker open-for"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := valid
			tt.tweak(&opts)
			c, err := csp.New(opts)
			if !errors.Is(err, csp.ErrInvalidConfig) || c != nil {
				t.Fatalf("New() = %v, %v; want nil and ErrInvalidConfig", c, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "sekrit") {
				t.Fatalf("error %q echoes the token", err)
			}
		})
	}
}

func TestNewReportsEveryProblemAtOnce(t *testing.T) {
	t.Parallel()
	_, err := csp.New(csp.Options{PageSize: -1})
	for _, want := range []string{"base URL is empty", "token is empty", "page size"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %q", err, want)
		}
	}
}

func TestNewAcceptsValidOptions(t *testing.T) {
	t.Parallel()
	c, err := csp.New(csp.Options{BaseURL: "https://csp.example.com/v2/", Token: "abc"})
	if err != nil || c == nil {
		t.Fatalf("New() = %v, %v", c, err)
	}
	if got := c.BreakerState(); got != breaker.Closed {
		t.Fatalf("new client breaker = %s, want closed", got)
	}
}

// The upstream sent "Bearer" for months; the CSP wants "Token".
func TestTokenSentWithTokenScheme(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+strings.Join(r.Header.Values("Authorization"), "|"))
		mu.Unlock()
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte(`{"results":[]}`))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	c := newClient(t, srv.URL+"/v2/", nil)
	if _, err := c.ListAccounts(context.Background()); err != nil {
		t.Fatalf("ListAccounts: %v", err)
	}
	if err := c.DeleteAccount(context.Background(), "identity/accounts/abc-123"); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	want := []string{
		"GET /v2/current_user/accounts Token " + testToken,
		"DELETE /v2/sandbox/accounts/abc-123 Token " + testToken,
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(seen, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\nwant:\n%s", strings.Join(seen, "\n"), strings.Join(want, "\n"))
	}
}

func TestWrongTokenIsA401NotABreakerFailure(t *testing.T) {
	t.Parallel()
	s := startFake(t, cspfake.Options{Token: "the-real-one"}, cspfake.Generate(3, nil)...)
	c := newClient(t, s.URL(), func(o *csp.Options) { o.Breaker.Threshold = 2 })
	for range 5 {
		_, err := c.ListAccounts(context.Background())
		he, ok := errors.AsType[*csp.HTTPError](err)
		if !ok || he.Status != http.StatusUnauthorized {
			t.Fatalf("ListAccounts with a wrong token = %v, want HTTPError 401", err)
		}
		if !errors.Is(err, csp.ErrTokenRejected) {
			t.Fatalf("ListAccounts with a wrong token = %v, want ErrTokenRejected", err)
		}
		if csp.IsTransient(err) {
			t.Fatalf("401 must not be transient")
		}
	}
	if got := len(s.Requests()); got != 5 {
		t.Fatalf("server saw %d requests, want 5 (4xx is not retried)", got)
	}
	if got := c.BreakerState(); got != breaker.Closed {
		t.Fatalf("breaker = %s, want closed: 4xx is not a failure", got)
	}
}

func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	var gets int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			mu.Lock()
			gets++
			mu.Unlock()
			return
		}
		http.Redirect(w, r, "/login", http.StatusFound)
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, nil)
	err := c.DeleteAccount(context.Background(), "identity/accounts/abc")
	if he, ok := errors.AsType[*csp.HTTPError](err); !ok || he.Status != http.StatusFound || !errors.Is(err, csp.ErrWrongEndpoint) {
		t.Fatalf("DeleteAccount answered by a redirect = %v, want ErrWrongEndpoint with HTTPError 302", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if gets != 0 {
		t.Fatalf("the redirect was followed with %d GETs", gets)
	}
}
