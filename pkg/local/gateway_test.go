package local

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

const (
	trackPlain = "track-token-for-gateway-tests"
	adminPlain = "admin-token-for-gateway-tests"
)

// countingGateway is a gateway over a fresh table whose authorizer calls are counted.
func countingGateway(t *testing.T, ttl time.Duration) (*Gateway, *int, *sync.Mutex, *time.Time) {
	t.Helper()
	p := pooltest.New(t)
	log := obs.NewLogger(&testkit.Buffer{}, 0)
	a := api.New(api.Deps{Broker: broker.New(p, config.Pool{LabDuration: time.Hour}), Ready: p.Ping, Log: log, Metrics: obs.NewMetrics(&testkit.Buffer{}, "t")})
	var tokens auth.Static
	for _, tok := range []struct {
		name  string
		scope auth.Scope
		plain string
	}{{"instruqt", auth.Track, trackPlain}, {"ops", auth.Admin, adminPlain}} {
		tk, err := auth.NewToken(tok.name, tok.scope, tok.plain)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, tk)
	}
	calls, mu := new(int), &sync.Mutex{}
	now := time.Unix(1_800_000_000, 0)
	clock := &now
	routes := map[string]api.LambdaHandler{}
	for _, r := range api.Routes {
		fn, err := a.Function(r.Name)
		if err != nil {
			t.Fatal(err)
		}
		routes[r.Name] = fn
	}
	g, err := NewGateway(routes, api.NewAuthorizer(tokens, log).Authorize, GatewayOptions{
		CORS: api.NewCORS(nil), CacheTTL: ttl, Throttle: api.StageThrottle, Tokens: tokens, Log: log,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return *clock }})
	if err != nil {
		t.Fatal(err)
	}
	inner := g.authorize
	g.authorize = func(ctx context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
		mu.Lock()
		*calls++
		mu.Unlock()
		return inner(ctx, ev)
	}
	return g, calls, mu, clock
}

func serve(g *Gateway, method, path, authorization string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	req.Header.Set(api.HeaderSandboxID, "participant-1")
	rec := httptest.NewRecorder()
	g.ServeHTTP(rec, req)
	return rec
}

// API Gateway caches the authorizer's answer per token and applies the cached policy to
// every route; the policy must be right for all of them.
func TestGatewayCachesTheAuthorizerPerToken(t *testing.T) {
	g, calls, mu, clock := countingGateway(t, 5*time.Minute)
	count := func() int { mu.Lock(); defer mu.Unlock(); return *calls }

	if rec := serve(g, "POST", "/v1/allocate", "Bearer "+trackPlain); rec.Code != http.StatusConflict { // empty pool
		t.Fatalf("allocate: %d %s", rec.Code, rec.Body)
	}
	if rec := serve(g, "GET", "/v1/sandboxes/42", "Bearer "+trackPlain); rec.Code != http.StatusNotFound || count() != 1 {
		t.Fatalf("get with the cached policy: %d, %d authorizer calls", rec.Code, count())
	}
	if rec := serve(g, "POST", "/v1/allocate", "Bearer "+adminPlain); rec.Code != http.StatusForbidden || count() != 2 {
		t.Fatalf("admin token: %d, %d calls", rec.Code, count())
	}
	if rec := serve(g, "GET", "/v1/sandboxes/42", "Bearer "+adminPlain); rec.Code != http.StatusForbidden || count() != 2 {
		t.Fatalf("admin token, cached: %d, %d calls", rec.Code, count())
	}
	// A missing identity source is refused without calling the authorizer; a 401 is not cached.
	if rec := serve(g, "POST", "/v1/allocate", ""); rec.Code != http.StatusUnauthorized || count() != 2 {
		t.Fatalf("no token: %d, %d calls", rec.Code, count())
	}
	for range 2 {
		if rec := serve(g, "POST", "/v1/allocate", "Bearer unknown-token-0123456789"); rec.Code != http.StatusUnauthorized {
			t.Fatalf("unknown token: %d", rec.Code)
		}
	}
	if count() != 4 {
		t.Fatalf("%d calls: a refused token must be asked again", count())
	}
	mu.Lock()
	*clock = clock.Add(5*time.Minute + time.Second)
	mu.Unlock()
	serve(g, "POST", "/v1/allocate", "Bearer "+trackPlain)
	if count() != 5 {
		t.Fatalf("%d calls: an expired answer must be asked again", count())
	}
}

func TestGatewayWithoutCacheAsksEveryTime(t *testing.T) {
	g, calls, mu, _ := countingGateway(t, 0)
	for range 3 {
		serve(g, "GET", "/v1/sandboxes/42", "Bearer "+trackPlain)
	}
	// Without caching API Gateway calls the authorizer even without the header.
	if rec := serve(g, "GET", "/v1/sandboxes/42", ""); rec.Code != http.StatusUnauthorized {
		t.Fatalf("no token: %d", rec.Code)
	}
	mu.Lock()
	defer mu.Unlock()
	if *calls != 4 {
		t.Fatalf("%d authorizer calls, want 4", *calls)
	}
}

func TestGatewayAuthorizerFailureIsA500Envelope(t *testing.T) {
	g, _, _, _ := countingGateway(t, 0)
	g.authorize = func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
		return events.APIGatewayCustomAuthorizerResponse{}, errors.New("boom")
	}
	rec := serve(g, "POST", "/v1/allocate", "Bearer "+trackPlain)
	if rec.Code != http.StatusInternalServerError || rec.Header().Get("X-Request-ID") == "" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	if body := rec.Body.String(); !strings.Contains(body, `"code":"INTERNAL_ERROR"`) || strings.Contains(body, "boom") {
		t.Fatalf("body %s", body)
	}
}

func TestPolicyEvaluation(t *testing.T) {
	const base = "arn:aws:execute-api:us-east-1:123456789012:localapi/local"
	track, err := api.Policy(base+"/POST/v1/allocate", auth.Track)
	if err != nil {
		t.Fatal(err)
	}
	for arn, want := range map[string]bool{
		base + "/POST/v1/allocate":                       true,
		base + "/GET/v1/sandboxes/42":                    true,
		base + "/POST/v1/sandboxes/42/mark-for-deletion": true,
		base + "/GET/v1/allocate":                        false,
		base + "/POST/v1/sandboxes/42":                   false,
		base + "/GET/v1/admin/stats":                     false,
		base + "/POST/v1/admin/sync":                     false,
		base + "/GET/metrics":                            false,
		base + "/GET/healthz":                            false,
		"arn:aws:execute-api:us-east-1:123456789012:otherapi/local/POST/v1/allocate": false,
	} {
		if got := allows(track, arn); got != want {
			t.Errorf("track policy on %s: %v, want %v", arn, got, want)
		}
	}
	deny := events.APIGatewayCustomAuthorizerPolicy{Statement: []events.IAMPolicyStatement{
		{Effect: "Allow", Action: []string{"execute-api:Invoke"}, Resource: []string{base + "/*"}},
		{Effect: "Deny", Action: []string{"execute-api:Invoke"}, Resource: []string{base + "/*/v1/admin/*"}},
	}}
	if allows(deny, base+"/GET/v1/admin/stats") || !allows(deny, base+"/GET/v1/sandboxes/1") {
		t.Error("an explicit Deny must win over an Allow")
	}
	for _, c := range []struct {
		pattern, s string
		want       bool
	}{{"a*c", "abbbc", true}, {"a*c", "ab/bc", true}, {"a?c", "abc", true}, {"a?c", "ac", false}, {"*", "", true}, {"a", "ab", false}} {
		if globMatch(c.pattern, c.s) != c.want {
			t.Errorf("globMatch(%q, %q) != %v", c.pattern, c.s, c.want)
		}
	}
}
