package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/auth"
)

// Limits API Gateway applies before any function runs.
const (
	// maxRequestLineAndHeaders is API Gateway's quota on the request line and header
	// values together.
	maxRequestLineAndHeaders = 10240
	// maxBody is the largest event a Lambda proxy integration can deliver (the
	// synchronous invocation payload limit); API Gateway itself would take 10 MB.
	maxBody = 6 << 20
)

// Emulated deployment, for method ARNs and request contexts.
const (
	emulatedRegion  = "us-east-1"
	emulatedAccount = "123456789012"
	emulatedAPIID   = "localapi"
	emulatedStage   = "local"
)

// Gateway turns each HTTP request into the REST proxy event API Gateway would send,
// authorizes it the way API Gateway runs a REQUEST authorizer (identity source
// Authorization, cached per token, policy evaluated against the method ARN), and calls
// the route's function. What API Gateway answers by itself (401, 403, 404, 405, 413) it
// answers with the gateway responses of pkg/api, as the stack configures them in AWS; a
// request over the stage throttle gets THROTTLED (429), as in AWS; an invocation Lambda
// throttles gets 500 and a function that fails 502, both DEFAULT_5XX.
type Gateway struct {
	functions  map[string]api.LambdaHandler
	authorize  authorizeFunc
	cors       api.CORS
	cacheTTL   time.Duration
	log        *slog.Logger
	now        func() time.Time
	cacheMu    sync.Mutex
	authzCache map[string]cachedAuthorization
	// stage is the stage throttle, taken by every request before anything else runs.
	stage *tokenBucket
	// clients are the per-client throttles (API Gateway's usage plans), by client name, for
	// the clients whose token carries rate and burst; taken after the authorizer.
	clients map[string]*tokenBucket
}

// GatewayOptions are what API Gateway is configured with besides the routes.
type GatewayOptions struct {
	CORS api.CORS
	// CacheTTL is the authorizer result cache's time to live.
	CacheTTL time.Duration
	// Throttle is the stage throttle (api.StageThrottle outside tests).
	Throttle api.Throttle
	// Tokens give the per-client throttles: their Limits' rate and burst.
	Tokens []auth.Token
	Log    *slog.Logger
	Now    func() time.Time // nil: time.Now
}

// authorizeFunc is the authorizer's function as API Gateway invokes it.
type authorizeFunc = func(context.Context, events.APIGatewayCustomAuthorizerRequestTypeRequest) (events.APIGatewayCustomAuthorizerResponse, error)

// NewGateway serves every route of api.Routes with its function of functions, behind
// authorize.
func NewGateway(functions map[string]api.LambdaHandler, authorize authorizeFunc, o GatewayOptions) (*Gateway, error) {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	g := &Gateway{functions: functions, authorize: authorize, cors: o.CORS, cacheTTL: o.CacheTTL,
		log: o.Log, now: now, authzCache: map[string]cachedAuthorization{}, stage: newTokenBucket(o.Throttle, now()),
		clients: map[string]*tokenBucket{}}
	for _, t := range o.Tokens {
		if t.Limits.Rate > 0 {
			g.clients[t.Name] = newTokenBucket(api.Throttle{Rate: t.Limits.Rate, Burst: t.Limits.Burst}, now())
		}
	}
	for _, r := range api.Routes {
		if functions[r.Name] == nil {
			return nil, fmt.Errorf("local: no function for the route %s", r.Name)
		}
	}
	return g, nil
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := api.NewRequestID()
	resp, code := g.handle(w, r, id)
	if code != "" {
		g.log.WarnContext(r.Context(), "gateway", "request_id", id, "method", r.Method, "path", r.URL.Path,
			"status", resp.StatusCode, "code", code)
	}
	writeResponse(w, resp)
}

// handle returns the response, and the gateway response type when the gateway answered
// by itself.
func (g *Gateway) handle(w http.ResponseWriter, r *http.Request, id string) (events.APIGatewayProxyResponse, string) {
	if !g.stage.take(g.now()) {
		return g.gatewayError(r, id, "THROTTLED")
	}
	if requestLineAndHeaders(r) > maxRequestLineAndHeaders {
		return g.gatewayError(r, id, "REQUEST_TOO_LARGE")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		return g.gatewayError(r, id, "REQUEST_TOO_LARGE")
	}
	route, params, status := api.Match(r.Method, r.URL.Path)
	switch {
	case status == http.StatusNotFound:
		return g.gatewayError(r, id, "MISSING_AUTHENTICATION_TOKEN")
	case status == http.StatusMethodNotAllowed && r.Method == http.MethodOptions:
		if resp, ok := g.preflight(r, id); ok {
			return resp, ""
		}
		return g.errorResponse(r, id, api.MethodNotAllowed), "METHOD_NOT_ALLOWED"
	case status == http.StatusMethodNotAllowed:
		return g.errorResponse(r, id, api.MethodNotAllowed), "METHOD_NOT_ALLOWED"
	}

	ev := proxyEvent(r, id, route, params, body)
	if route.Scope != auth.Public {
		authorizer, denied := g.authorizeRequest(r, ev)
		if denied != "" {
			return g.gatewayError(r, id, denied)
		}
		ev.RequestContext.Authorizer = authorizer
		client, _ := authorizer[api.ContextClient].(string)
		if b, ok := g.clients[client]; ok && !b.take(g.now()) {
			return g.gatewayError(r, id, "THROTTLED")
		}
	}
	resp, err := g.functions[route.Name](r.Context(), ev)
	if err != nil {
		return g.integrationError(r, id, route, err), "DEFAULT_5XX"
	}
	return resp, ""
}

// integrationError is API Gateway's answer when the route's function does not answer
// (docs.aws.amazon.com/lambda/latest/dg/services-apigateway-errors.html): 500 when Lambda
// rejects the invocation (a throttle), 502 when the function fails (a failed init; the
// route handlers themselves never return an error). Both are the DEFAULT_5XX gateway
// response, whose status the stack keeps as API Gateway chose it.
func (g *Gateway) integrationError(r *http.Request, id string, route api.Route, err error) events.APIGatewayProxyResponse {
	e, _ := api.Gateway("DEFAULT_5XX")
	var throttled *throttledError
	if errors.As(err, &throttled) {
		e.Status = http.StatusInternalServerError
		g.log.WarnContext(r.Context(), "gateway: Lambda throttled the function", "request_id", id, "route", route.Name, "reason", throttled.reason)
	} else {
		e.Status = http.StatusBadGateway
		g.log.ErrorContext(r.Context(), "gateway: the function failed", "request_id", id, "route", route.Name, "error", err.Error())
	}
	return g.errorResponse(r, id, e)
}

// preflight answers a CORS preflight for a known resource from an allowed origin, as the
// OPTIONS method the stack adds when origins are configured.
func (g *Gateway) preflight(r *http.Request, id string) (events.APIGatewayProxyResponse, bool) {
	resource, _ := api.ResourceOf(r.URL.Path)
	h := api.ResponseHeaders(id)
	if r.Header.Get("Access-Control-Request-Method") == "" || !g.cors.Preflight(h, r.Header.Get("Origin"), api.MethodsOf(resource)) {
		return events.APIGatewayProxyResponse{}, false
	}
	return events.APIGatewayProxyResponse{StatusCode: http.StatusNoContent, Headers: h}, true
}

func (g *Gateway) gatewayError(r *http.Request, id, responseType string) (events.APIGatewayProxyResponse, string) {
	e, ok := api.Gateway(responseType)
	if !ok {
		panic("local: no gateway response " + responseType)
	}
	return g.errorResponse(r, id, e), responseType
}

func (g *Gateway) errorResponse(r *http.Request, id string, e api.Error) events.APIGatewayProxyResponse {
	resp := api.ErrorResponse(id, e)
	g.cors.Headers(resp.Headers, r.Header.Get("Origin"))
	return resp
}

// proxyEvent is the REST API proxy event (payload 1.0) of r.
func proxyEvent(r *http.Request, id string, route api.Route, params map[string]string, body []byte) events.APIGatewayProxyRequest {
	ev := events.APIGatewayProxyRequest{
		Resource: route.Path, Path: r.URL.Path, HTTPMethod: r.Method,
		Headers: map[string]string{}, MultiValueHeaders: map[string][]string{},
		PathParameters: params, Body: string(body),
		RequestContext: events.APIGatewayProxyRequestContext{
			AccountID: emulatedAccount, ResourceID: route.Name, Stage: emulatedStage, DomainName: r.Host,
			RequestID: id, ExtendedRequestID: id, Protocol: r.Proto, ResourcePath: route.Path, Path: r.URL.Path,
			HTTPMethod: r.Method, APIID: emulatedAPIID,
			RequestTime:      time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700"),
			RequestTimeEpoch: time.Now().UnixMilli(),
			Identity:         events.APIGatewayRequestIdentity{SourceIP: sourceIP(r), UserAgent: r.UserAgent()},
		},
	}
	for name, values := range r.Header {
		ev.Headers[name] = values[len(values)-1]
		ev.MultiValueHeaders[name] = values
	}
	if r.Host != "" {
		ev.Headers["Host"], ev.MultiValueHeaders["Host"] = r.Host, []string{r.Host}
	}
	if q := r.URL.Query(); len(q) > 0 {
		ev.QueryStringParameters, ev.MultiValueQueryStringParameters = map[string]string{}, map[string][]string(q)
		for k, v := range q {
			ev.QueryStringParameters[k] = v[len(v)-1]
		}
	}
	return ev
}

func sourceIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndex(host, ":"); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

func requestLineAndHeaders(r *http.Request) int {
	n := len(r.Method) + len(r.RequestURI) + len(r.Proto)
	for name, values := range r.Header {
		for _, v := range values {
			n += len(name) + len(v)
		}
	}
	return n
}

func writeResponse(w http.ResponseWriter, resp events.APIGatewayProxyResponse) {
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.WriteString(w, resp.Body)
}
