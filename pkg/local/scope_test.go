package local

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/auth"
)

// requestPath is a request path of route, each {param} one segment.
func requestPath(r api.Route) string {
	segs := strings.Split(r.Path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			segs[i] = "x-1"
		}
	}
	return strings.Join(segs, "/")
}

// API Gateway caches one policy per token and applies it to every later request of that
// token, on any route. So a scope's policy, built for any route's method ARN, must allow
// exactly the routes that scope permits: no method ARN of a route of another scope may
// match one of its resources (under IAM's wildcard match, the emulator's and AWS's).
func TestNoScopesPolicyMatchesAnotherScopesRoute(t *testing.T) {
	base := "arn:aws:execute-api:" + emulatedRegion + ":" + emulatedAccount + ":" + emulatedAPIID + "/" + emulatedStage + "/"
	for _, scope := range []auth.Scope{auth.Track, auth.Admin, auth.Metrics} {
		for _, first := range api.Routes { // the request the policy was built for, then cached
			policy, err := api.Policy(base+first.Method+requestPath(first), scope)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range api.Routes {
				if r.Scope == auth.Public {
					continue
				}
				arn := base + r.Method + requestPath(r)
				if got, want := allows(policy, arn), scope.Permits(r.Scope); got != want {
					t.Errorf("%s policy built on %s: allows %s = %v, want %v", scope, first.Name, arn, got, want)
				}
			}
		}
	}
}

// A metrics token over HTTP through the emulator, with the authorizer's answer cached
// from its first (allowed) request: 200 on /metrics and GET /v1/admin/stats, 403
// FORBIDDEN on every other non-public route.
func TestMetricsTokenReadsMetricsAndNothingElse(t *testing.T) {
	s, banner, _ := startStack(t, nil)
	if !strings.Contains(banner, "metrics: "+s.MetricsToken) {
		t.Fatalf("the banner lacks the metrics token:\n%s", banner)
	}
	c := client{t, s.URL}
	h := track(s.MetricsToken, "")
	wantStatus(t, "metrics", c.do("GET", "/metrics", h, nil), http.StatusOK, "")
	wantStatus(t, "stats", c.do("GET", "/v1/admin/stats", h, nil), http.StatusOK, "")
	refused := 0
	for _, r := range api.Routes {
		if r.Scope == auth.Public || r.Scope == auth.Metrics {
			continue
		}
		wantStatus(t, r.Name, c.do(r.Method, requestPath(r), h, nil), http.StatusForbidden, api.CodeForbidden)
		refused++
	}
	if refused < 10 {
		t.Fatalf("only %d routes tried", refused)
	}
	// The admin token still reads both.
	wantStatus(t, "admin metrics", c.do("GET", "/metrics", track(s.AdminToken, ""), nil), http.StatusOK, "")
}
