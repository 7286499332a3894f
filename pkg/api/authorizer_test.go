package api

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/obs"
)

const (
	sampleToken = "sample-token-for-tests-only" // the token in events/authorizer.json
	adminToken  = "admin-token-for-tests-0123456789"
	arnBase     = "arn:aws:execute-api:us-east-1:123456789012:abcdef1234/prod"
)

func newAuthorizer(t *testing.T, tokens ...auth.Token) (*Authorizer, *testkit.Buffer) {
	logs := &testkit.Buffer{}
	return NewAuthorizer(auth.Static(tokens), obs.NewLogger(logs, -8)), logs
}

func tokenOf(t *testing.T, name string, scope auth.Scope, plain string) auth.Token {
	tok, err := auth.NewToken(name, scope, plain)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func sampleAuthorizerEvent(t *testing.T) events.APIGatewayCustomAuthorizerRequestTypeRequest {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
	readJSON(t, filepath.Join(root, "events", "authorizer.json"), &ev)
	return ev
}

func withAuthorization(ev events.APIGatewayCustomAuthorizerRequestTypeRequest, values ...string) events.APIGatewayCustomAuthorizerRequestTypeRequest {
	ev.Headers, ev.MultiValueHeaders = map[string]string{}, map[string][]string{}
	if len(values) > 0 {
		ev.Headers["Authorization"] = values[len(values)-1]
		ev.MultiValueHeaders["Authorization"] = values
	}
	return ev
}

func TestAuthorizerAllowsTheTokensScope(t *testing.T) {
	a, logs := newAuthorizer(t, tokenOf(t, "instruqt", auth.Track, sampleToken), tokenOf(t, "ops", auth.Admin, adminToken))
	resp, err := a.Authorize(ctx, sampleAuthorizerEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	if resp.PrincipalID != "instruqt" || resp.Context[ContextScope] != "track" || resp.Context[ContextClient] != "instruqt" {
		t.Fatalf("answer %+v", resp)
	}
	if _, ok := resp.Context[ContextMaxLiveAllocations]; ok {
		t.Fatalf("a client without a cap got one: %+v", resp.Context)
	}
	want := []string{arnBase + "/POST/v1/allocate", arnBase + "/GET/v1/sandboxes/*", arnBase + "/POST/v1/sandboxes/*/mark-for-deletion", arnBase + "/POST/v1/sandboxes/*/extend"}
	st := resp.PolicyDocument.Statement
	if len(st) != 1 || st[0].Effect != "Allow" || !slices.Equal(st[0].Resource, want) || !slices.Equal(st[0].Action, []string{"execute-api:Invoke"}) {
		t.Fatalf("policy %+v, want Allow on %v", resp.PolicyDocument, want)
	}
	if strings.Contains(logs.String(), sampleToken) {
		t.Fatal("the log carries the token")
	}
	line := logs.JSONLines(t)[0]
	if line["outcome"] != "allowed" || line["client"] != "instruqt" || line["route"] != "allocate" || line["level"] != "INFO" {
		t.Fatalf("log %v", line)
	}
}

func TestAuthorizerPolicyDoesNotDependOnTheRequest(t *testing.T) {
	a, logs := newAuthorizer(t, tokenOf(t, "instruqt", auth.Track, sampleToken), tokenOf(t, "ops", auth.Admin, adminToken))
	base := withAuthorization(sampleAuthorizerEvent(t), "Bearer "+sampleToken)
	first, err := a.Authorize(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	// A track token asking for an admin resource: the same policy, which does not cover it,
	// so API Gateway answers 403 — and the cached policy keeps doing so.
	admin := base
	admin.Resource, admin.Path, admin.HTTPMethod = "/v1/admin/stats", "/v1/admin/stats", "GET"
	admin.MethodArn = arnBase + "/GET/v1/admin/stats"
	resp, err := a.Authorize(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resp.PolicyDocument.Statement[0].Resource, first.PolicyDocument.Statement[0].Resource) {
		t.Fatalf("the policy depends on the request: %v vs %v", resp.PolicyDocument, first.PolicyDocument)
	}
	for _, r := range resp.PolicyDocument.Statement[0].Resource {
		if strings.Contains(r, "/admin") || strings.HasSuffix(r, "/*/*") || strings.HasSuffix(r, "prod/*") {
			t.Fatalf("a track policy reaches beyond the track routes: %s", r)
		}
	}
	if l := logs.JSONLines(t)[1]; l["outcome"] != "forbidden" || l["level"] != "WARN" {
		t.Fatalf("log %v", l)
	}
	// An admin token's policy covers exactly the admin routes, path parameters as "*".
	adminResp, err := a.Authorize(ctx, withAuthorization(sampleAuthorizerEvent(t), "Bearer "+adminToken))
	if err != nil {
		t.Fatal(err)
	}
	var wantAdmin []string
	for _, r := range Routes {
		if r.Scope == auth.Admin || r.Scope == auth.Metrics {
			wantAdmin = append(wantAdmin, arnBase+"/"+r.Method+arnPath(r.Path))
		}
	}
	st := adminResp.PolicyDocument.Statement
	if len(st) != 1 || st[0].Effect != "Allow" || !slices.Equal(st[0].Resource, wantAdmin) ||
		!slices.Contains(wantAdmin, arnBase+"/POST/v1/admin/sandboxes/*/retry-deletion") || !slices.Contains(wantAdmin, arnBase+"/GET/metrics") {
		t.Fatalf("admin policy %+v, want Allow on %v", adminResp.PolicyDocument, wantAdmin)
	}
}

func TestAuthorizerRefusesBadHeaders(t *testing.T) {
	a, logs := newAuthorizer(t, tokenOf(t, "instruqt", auth.Track, sampleToken))
	for _, c := range []struct {
		name   string
		values []string
	}{
		{"no header", nil},
		{"empty", []string{""}},
		{"scheme only", []string{"Bearer"}},
		{"lowercase scheme", []string{"bearer " + sampleToken}},
		{"two spaces", []string{"Bearer  " + sampleToken}},
		{"scheme twice", []string{"Bearer Bearer " + sampleToken}},
		{"trailing space", []string{"Bearer " + sampleToken + " "}},
		{"unknown token", []string{"Bearer unknown-token-0123456789"}},
		{"another scheme", []string{"Basic " + sampleToken}},
		{"two different headers", []string{"Bearer " + sampleToken, "Bearer unknown-token-0123456789"}},
		{"two different headers, good one last", []string{"Bearer unknown-token-0123456789", "Bearer " + sampleToken}},
	} {
		_, err := a.Authorize(ctx, withAuthorization(sampleAuthorizerEvent(t), c.values...))
		if !errors.Is(err, ErrUnauthorized) || err.Error() != "Unauthorized" {
			t.Errorf("%s: %v, want exactly \"Unauthorized\"", c.name, err)
		}
	}
	if _, err := a.Authorize(ctx, withAuthorization(sampleAuthorizerEvent(t), "Bearer "+sampleToken, "Bearer "+sampleToken)); err != nil {
		t.Errorf("the same header twice: %v", err)
	}
	if strings.Contains(logs.String(), sampleToken) {
		t.Fatal("the log carries the token")
	}
}

func TestAuthorizerWithoutTokensDeniesAndSaysWhy(t *testing.T) {
	a, logs := newAuthorizer(t)
	if _, err := a.Authorize(ctx, sampleAuthorizerEvent(t)); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("no tokens configured: %v", err)
	}
	l := logs.JSONLines(t)[0]
	if l["level"] != "ERROR" || l["reason"] != auth.ReasonNoTokens {
		t.Fatalf("log %v", l)
	}
}

func TestAuthorizerBadMethodARNIsAnError(t *testing.T) {
	a, _ := newAuthorizer(t, tokenOf(t, "instruqt", auth.Track, sampleToken))
	ev := sampleAuthorizerEvent(t)
	for _, arn := range []string{"", "arn:aws:lambda:us-east-1:1:function:x", "arn:aws:execute-api:us-east-1:1:abc"} {
		ev.MethodArn = arn
		if _, err := a.Authorize(ctx, ev); err == nil || errors.Is(err, ErrUnauthorized) {
			t.Errorf("method ARN %q: %v, want a configuration error", arn, err)
		}
	}
}

// A token's max_live_allocations reaches the route functions as a context value, a
// string as API Gateway hands every value on.
func TestAuthorizerHandsOnTheClientCap(t *testing.T) {
	tok := tokenOf(t, "instruqt", auth.Track, sampleToken)
	tok.Limits.MaxLiveAllocations = 25
	a, _ := newAuthorizer(t, tok)
	resp, err := a.Authorize(ctx, sampleAuthorizerEvent(t))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Context[ContextMaxLiveAllocations] != "25" || resp.Context[ContextClient] != "instruqt" {
		t.Fatalf("context %+v", resp.Context)
	}
}

// TestAuthorizerAnswersTheClientsUsageKey: an answer carries the token's usage key on the
// REST API the method ARN names as its usageIdentifierKey, the API key the usage-plans job
// gives the client's plan of that API (pkg/usageplans checks the two agree against the fake
// API Gateway); another REST API of the region gets another key. A forbidden request's
// answer carries it too, because API Gateway caches that answer for the token's allowed
// routes; a refused token gets no answer at all, and the log never carries the key.
func TestAuthorizerAnswersTheClientsUsageKey(t *testing.T) {
	const restAPIID = "abcdef1234" // arnBase's
	track, admin := tokenOf(t, "instruqt", auth.Track, sampleToken), tokenOf(t, "ops", auth.Admin, adminToken)
	a, logs := newAuthorizer(t, track, admin)
	allowed, err := a.Authorize(ctx, withAuthorization(sampleAuthorizerEvent(t), "Bearer "+sampleToken))
	if err != nil {
		t.Fatal(err)
	}
	if allowed.UsageIdentifierKey != track.UsageKey(restAPIID) || len(allowed.UsageIdentifierKey) < 20 {
		t.Fatalf("allowed: usage identifier key %q, want the track token's %q", allowed.UsageIdentifierKey, track.UsageKey(restAPIID))
	}
	ev := withAuthorization(sampleAuthorizerEvent(t), "Bearer "+sampleToken)
	ev.Resource, ev.Path, ev.HTTPMethod, ev.MethodArn = "/v1/admin/stats", "/v1/admin/stats", "GET", arnBase+"/GET/v1/admin/stats"
	forbidden, err := a.Authorize(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	if forbidden.UsageIdentifierKey != track.UsageKey(restAPIID) {
		t.Fatalf("forbidden: usage identifier key %q, want the track token's", forbidden.UsageIdentifierKey)
	}
	ev = withAuthorization(sampleAuthorizerEvent(t), "Bearer "+sampleToken)
	ev.MethodArn = strings.Replace(ev.MethodArn, restAPIID, "f6g7h8i9j0", 1)
	otherAPI, err := a.Authorize(ctx, ev)
	if err != nil || otherAPI.UsageIdentifierKey != track.UsageKey("f6g7h8i9j0") || otherAPI.UsageIdentifierKey == allowed.UsageIdentifierKey {
		t.Fatalf("another REST API: usage identifier key %q, %v; want the token's key on that API", otherAPI.UsageIdentifierKey, err)
	}
	adminResp, err := a.Authorize(ctx, withAuthorization(sampleAuthorizerEvent(t), "Bearer "+adminToken))
	if err != nil {
		t.Fatal(err)
	}
	if adminResp.UsageIdentifierKey != admin.UsageKey(restAPIID) || adminResp.UsageIdentifierKey == track.UsageKey(restAPIID) {
		t.Fatalf("admin: usage identifier key %q, want its own %q", adminResp.UsageIdentifierKey, admin.UsageKey(restAPIID))
	}
	refused, err := a.Authorize(ctx, withAuthorization(sampleAuthorizerEvent(t), "Bearer unknown-token-0123456789"))
	if !errors.Is(err, ErrUnauthorized) || refused.UsageIdentifierKey != "" {
		t.Fatalf("refused: %+v, %v; want no answer and ErrUnauthorized", refused, err)
	}
	if strings.Contains(logs.String(), track.UsageKey(restAPIID)) || strings.Contains(logs.String(), admin.UsageKey(restAPIID)) {
		t.Fatal("the log carries a usage key")
	}
}
