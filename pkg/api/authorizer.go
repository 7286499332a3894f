package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/pkg/auth"
)

// ErrUnauthorized is the one error text API Gateway turns into its UNAUTHORIZED gateway
// response (401); any other error from an authorizer becomes a 500.
var ErrUnauthorized = errors.New("Unauthorized")

// Authorizer is the REQUEST Lambda authorizer of the track and admin routes (identity
// source: the Authorization header).
type Authorizer struct {
	tokens auth.Source
	log    *slog.Logger
}

// NewAuthorizer decides with the tokens of src.
func NewAuthorizer(src auth.Source, log *slog.Logger) *Authorizer {
	return &Authorizer{tokens: src, log: log}
}

// Authorize answers ErrUnauthorized for a missing, malformed or unknown token, and
// otherwise the token's policy: Allow on exactly the routes of the token's scope.
//
// API Gateway caches the answer per identity source (the Authorization header) for the
// authorizer's TTL, and applies the cached policy to later requests with the same token on
// any route. A policy naming only the method of the first request would wrongly refuse
// the token's other routes for the TTL; "Allow *" would wrongly admit a track token to the
// admin routes. So the policy depends only on the token's scope, never on the request:
// Allow on the method ARN of every route of that scope, path parameters as "*". A request
// for a route outside the scope (a track token on /v1/admin/...) matches no statement, and
// API Gateway answers ACCESS_DENIED (403 FORBIDDEN) — from the cache too.
func (a *Authorizer) Authorize(ctx context.Context, ev events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error) {
	logAttrs := []any{"request_id", ev.RequestContext.RequestID, "method", ev.HTTPMethod, "resource", ev.Resource}
	need := auth.Admin // a resource outside the table needs the narrowest scope; the policy never covers it
	if r, ok := routeOf(ev.HTTPMethod, ev.Resource); ok {
		need = r.Scope
		logAttrs = append(logAttrs, "route", r.Name)
	}

	header, _, conflict := headerValue(ev.Headers, ev.MultiValueHeaders, HeaderAuthorization)
	var d auth.Decision
	if conflict {
		d = auth.Decision{Outcome: auth.Unauthorized, Reason: "more than one Authorization header with different values"}
	} else {
		d = auth.Decide(a.tokens.Tokens(ctx), header, need)
	}
	logAttrs = append(logAttrs, "outcome", string(d.Outcome))
	if d.Identity.Name != "" {
		logAttrs = append(logAttrs, "client", d.Identity.Name, "scope", string(d.Identity.Scope))
	}
	if d.Reason != "" {
		logAttrs = append(logAttrs, "reason", d.Reason)
	}

	switch {
	case d.Reason == auth.ReasonNoTokens:
		a.log.ErrorContext(ctx, "authorizer", logAttrs...)
	case d.Outcome == auth.Allowed:
		a.log.InfoContext(ctx, "authorizer", logAttrs...)
	default:
		a.log.WarnContext(ctx, "authorizer", logAttrs...)
	}
	if d.Outcome == auth.Unauthorized {
		return events.APIGatewayCustomAuthorizerResponse{}, ErrUnauthorized
	}

	policy, err := Policy(ev.MethodArn, d.Identity.Scope)
	if err != nil {
		// API Gateway builds the method ARN; a bad one is a configuration error (500).
		a.log.ErrorContext(ctx, "authorizer: unusable method ARN", "request_id", ev.RequestContext.RequestID, "error", err.Error())
		return events.APIGatewayCustomAuthorizerResponse{}, err
	}
	restAPIID, _, _ := parseMethodARN(ev.MethodArn) // Policy has checked it
	context := map[string]any{ContextScope: string(d.Identity.Scope), ContextClient: d.Identity.Name}
	if n := d.Identity.MaxLiveAllocations; n > 0 {
		context[ContextMaxLiveAllocations] = strconv.Itoa(n)
	}
	// The usage identifier key names the client's API key, so API Gateway meters the
	// request by the client's usage plan (docs/operations.md, "Usage plans per client").
	// Like the policy it depends on the token only (and on the REST API, which API Gateway
	// names in the method ARN): a cached answer to a forbidden request serves the token's
	// allowed routes too, and must carry the key for them.
	return events.APIGatewayCustomAuthorizerResponse{
		PrincipalID:        d.Identity.Name,
		PolicyDocument:     policy,
		Context:            context,
		UsageIdentifierKey: d.Identity.UsageKey(restAPIID),
	}, nil
}

// Policy is the IAM policy of a token of scope, built on the API and stage of methodArn
// (arn:aws:execute-api:<region>:<account>:<api-id>/<stage>/<METHOD>/<path>).
func Policy(methodArn string, scope auth.Scope) (events.APIGatewayCustomAuthorizerPolicy, error) {
	_, base, err := parseMethodARN(methodArn)
	if err != nil {
		return events.APIGatewayCustomAuthorizerPolicy{}, err
	}
	var resources []string
	for _, r := range Routes {
		if r.Scope != auth.Public && scope.Permits(r.Scope) {
			resources = append(resources, base+"/"+r.Method+arnPath(r.Path))
		}
	}
	statement := events.IAMPolicyStatement{Action: []string{"execute-api:Invoke"}, Effect: "Allow", Resource: resources}
	if len(resources) == 0 {
		// IAM needs a resource; Deny on everything says plainly that this scope has none.
		statement = events.IAMPolicyStatement{Action: []string{"execute-api:Invoke"}, Effect: "Deny", Resource: []string{base + "/*"}}
	}
	return events.APIGatewayCustomAuthorizerPolicy{Version: "2012-10-17", Statement: []events.IAMPolicyStatement{statement}}, nil
}

// parseMethodARN is the REST API id of a method ARN and its part up to the stage
// (arn:aws:execute-api:<region>:<account>:<api-id>/<stage>).
func parseMethodARN(methodArn string) (restAPIID, base string, err error) {
	parts := strings.SplitN(methodArn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "execute-api" {
		return "", "", fmt.Errorf("api: %q is not an execute-api method ARN", methodArn)
	}
	apiAndStage := strings.SplitN(parts[5], "/", 3)
	if len(apiAndStage) != 3 || apiAndStage[0] == "" || apiAndStage[1] == "" {
		return "", "", fmt.Errorf("api: method ARN %q has no API ID and stage", methodArn)
	}
	return apiAndStage[0], strings.Join(parts[:5], ":") + ":" + apiAndStage[0] + "/" + apiAndStage[1], nil
}

// arnPath turns a resource path into its ARN form: each {param} segment becomes "*".
func arnPath(path string) string {
	segs := strings.Split(path, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, "{") {
			segs[i] = "*"
		}
	}
	return strings.Join(segs, "/")
}

func routeOf(method, resource string) (Route, bool) {
	for _, r := range Routes {
		if r.Method == method && r.Path == resource {
			return r, true
		}
	}
	return Route{}, false
}
