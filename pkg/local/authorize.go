package local

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/pkg/api"
)

type cachedAuthorization struct {
	resp    events.APIGatewayCustomAuthorizerResponse
	expires time.Time
}

// authorizeRequest runs the authorizer as API Gateway does and returns the
// requestContext.authorizer of the event, or the gateway response type of a refusal.
func (g *Gateway) authorizeRequest(r *http.Request, ev events.APIGatewayProxyRequest) (map[string]any, string) {
	identity := strings.Join(r.Header.Values(api.HeaderAuthorization), ",")
	// With caching on, API Gateway answers 401 itself when the identity source is
	// missing or empty, without calling the authorizer.
	if g.cacheTTL > 0 && identity == "" {
		return nil, "UNAUTHORIZED"
	}
	methodArn := fmt.Sprintf("arn:aws:execute-api:%s:%s:%s/%s/%s%s", emulatedRegion, emulatedAccount, emulatedAPIID, emulatedStage, ev.HTTPMethod, ev.Path)
	resp, ok := g.cached(identity)
	if !ok {
		var err error
		resp, err = g.authorize(r.Context(), events.APIGatewayCustomAuthorizerRequestTypeRequest{
			Type: "REQUEST", MethodArn: methodArn, Resource: ev.Resource, Path: ev.Path, HTTPMethod: ev.HTTPMethod,
			Headers: ev.Headers, MultiValueHeaders: ev.MultiValueHeaders,
			QueryStringParameters: ev.QueryStringParameters, MultiValueQueryStringParameters: ev.MultiValueQueryStringParameters,
			PathParameters: ev.PathParameters,
			RequestContext: events.APIGatewayCustomAuthorizerRequestTypeRequestContext{
				Path: ev.RequestContext.Path, AccountID: emulatedAccount, ResourceID: ev.RequestContext.ResourceID, Stage: emulatedStage,
				RequestID: ev.RequestContext.RequestID, ResourcePath: ev.Resource, HTTPMethod: ev.HTTPMethod, APIID: emulatedAPIID,
				Identity: events.APIGatewayCustomAuthorizerRequestTypeRequestIdentity{SourceIP: ev.RequestContext.Identity.SourceIP},
			},
		})
		switch {
		case err != nil && err.Error() == api.ErrUnauthorized.Error():
			return nil, "UNAUTHORIZED" // API Gateway does not cache a 401
		case err != nil:
			return nil, "AUTHORIZER_FAILURE"
		}
		g.store(identity, resp)
	}
	if !allows(resp.PolicyDocument, methodArn) {
		return nil, "ACCESS_DENIED"
	}
	// API Gateway hands every context value on as a string, whatever its JSON type.
	ctx := map[string]any{"principalId": resp.PrincipalID}
	for k, v := range resp.Context {
		ctx[k] = fmt.Sprint(v)
	}
	return ctx, ""
}

func (g *Gateway) cached(identity string) (events.APIGatewayCustomAuthorizerResponse, bool) {
	if g.cacheTTL <= 0 {
		return events.APIGatewayCustomAuthorizerResponse{}, false
	}
	g.cacheMu.Lock()
	defer g.cacheMu.Unlock()
	c, ok := g.authzCache[identity]
	if !ok || g.now().After(c.expires) {
		delete(g.authzCache, identity)
		return events.APIGatewayCustomAuthorizerResponse{}, false
	}
	return c.resp, true
}

func (g *Gateway) store(identity string, resp events.APIGatewayCustomAuthorizerResponse) {
	if g.cacheTTL <= 0 {
		return
	}
	g.cacheMu.Lock()
	defer g.cacheMu.Unlock()
	g.authzCache[identity] = cachedAuthorization{resp: resp, expires: g.now().Add(g.cacheTTL)}
}

// allows evaluates an authorizer policy as API Gateway does: an explicit Deny wins, and
// otherwise an Allow must match the method ARN.
func allows(policy events.APIGatewayCustomAuthorizerPolicy, methodArn string) bool {
	allowed := false
	for _, st := range policy.Statement {
		if !matchesAny(st.Action, "execute-api:Invoke") || !matchesAny(st.Resource, methodArn) {
			continue
		}
		switch st.Effect {
		case "Deny":
			return false
		case "Allow":
			allowed = true
		}
	}
	return allowed
}

func matchesAny(patterns []string, s string) bool {
	for _, p := range patterns {
		if globMatch(p, s) {
			return true
		}
	}
	return false
}

// globMatch is IAM's wildcard match: '*' any run of characters (slashes included), '?'
// one character.
func globMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if globMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && globMatch(pattern[1:], s[1:])
	default:
		return s != "" && s[0] == pattern[0] && globMatch(pattern[1:], s[1:])
	}
}
