package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/obs"
)

// Keys of the authorizer context, which API Gateway hands to the route functions in
// requestContext.authorizer.
const (
	ContextScope  = "scope"
	ContextClient = "client"
	// ContextMaxLiveAllocations is the client's cap on live allocations, in decimal; absent
	// for a client without one. API Gateway hands every context value on as a string.
	ContextMaxLiveAllocations = "max_live_allocations"
)

// maxBodyBytes: no route reads a body (upstream clients send none); anything beyond a
// stray small one is refused rather than carried into logs or memory.
const maxBodyBytes = 8 << 10

// Deps are what the route handlers use.
type Deps struct {
	Broker *broker.Broker
	// Ready reports whether the pool's table answers (pool.Ping), for /readyz.
	Ready   func(context.Context) error
	Log     *slog.Logger
	Metrics *obs.Metrics
	Config  config.API
	// Jobs starts the runs the admin trigger routes ask for; only their functions need it.
	Jobs JobStarter
	// Events replays the events' dead-letter queue; only the functions of routes with
	// ReplaysEvents need it.
	Events EventReplayer
}

// EventReplayer publishes the domain events' dead letters again (eventfn.Replayer, over
// pkg/events, which only its route's function links): what it did, and why it kept the
// messages it kept.
type EventReplayer interface {
	Replay(ctx context.Context) (wire.EventReplay, []string, error)
}

// JobStarter starts one run of a job under runID and returns without waiting for it: in
// AWS an asynchronous invoke of the job's function (pkg/app), locally the same job handler
// in the background (pkg/local). The run records itself under runID when it ends.
type JobStarter interface {
	StartJob(ctx context.Context, job, runID string) error
}

// API serves the routes of the table.
type API struct {
	broker  *broker.Broker
	ready   func(context.Context) error
	log     *slog.Logger
	metrics *obs.Metrics
	jobs    JobStarter
	events  EventReplayer
	cors    CORS
	now     func() time.Time
}

// New returns the API over d.
func New(d Deps) *API {
	return &API{broker: d.Broker, ready: d.Ready, log: d.Log, metrics: d.Metrics, jobs: d.Jobs, events: d.Events, cors: NewCORS(d.Config.CORSOrigins), now: time.Now}
}

// LambdaHandler is what a route function passes to lambda.Start.
type LambdaHandler = func(context.Context, events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error)

// Function returns the handler of the route named name: the code its Lambda function
// runs, and the code the local gateway emulator calls. It never returns an error to the
// Lambda runtime (API Gateway would turn that into a bare 502): every failure is an
// answer in the envelope.
func (a *API) Function(name string) (LambdaHandler, error) {
	route, ok := RouteByName(name)
	if !ok {
		return nil, fmt.Errorf("api: no route named %q", name)
	}
	return func(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
		return a.serve(ctx, route, ev), nil
	}, nil
}

// request is one request being served; handlers fill the log fields.
type request struct {
	id     string
	route  Route
	ev     *events.APIGatewayProxyRequest
	client string
	// clientCap is the client's max_live_allocations, 0 for none.
	clientCap int

	student, sandboxID, outcome string
}

// reply is a successful answer: body as JSON, or text of contentType when that is set.
// headers replace common ones of ResponseHeaders for this answer (the console's
// Content-Security-Policy and Cache-Control); every other route keeps them all.
type reply struct {
	status      int
	body        any
	location    string
	contentType string
	text        []byte
	headers     map[string]string
}

func (a *API) serve(ctx context.Context, route Route, ev events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	start := time.Now()
	r := &request{id: ev.RequestContext.RequestID, route: route, ev: &ev}
	if r.id == "" {
		r.id = NewRequestID() // only a hand-made event lacks one; API Gateway always sets it
	}
	rep, err := r.run(ctx, a)

	var resp events.APIGatewayProxyResponse
	entry := obs.Request{RequestID: r.id, Route: route.Name, Method: ev.HTTPMethod, Student: r.student, SandboxID: r.sandboxID, Client: r.client, Outcome: r.outcome}
	if err != nil {
		e := toError(err)
		resp = ErrorResponse(r.id, *e)
		entry.Code = e.Code
		if entry.Outcome == "" {
			entry.Outcome = strings.ToLower(e.Code)
		}
		if e.Status >= 500 {
			entry.Cause = err
		}
	} else {
		resp = rep.response(r.id)
		if entry.Outcome == "" {
			entry.Outcome = "ok"
		}
	}
	origin, _, _ := headerValue(ev.Headers, ev.MultiValueHeaders, "Origin")
	a.cors.Headers(resp.Headers, origin)
	entry.Status, entry.Latency = resp.StatusCode, time.Since(start)
	obs.LogRequest(ctx, a.log, entry)
	return resp
}

// run checks what every route requires, then runs the route's handler on a; a panic
// becomes a 500.
func (r *request) run(ctx context.Context, a *API) (rep reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("%w: panic: %v\n%s", errInternal, p, debug.Stack())
		}
	}()
	if err := r.check(); err != nil {
		return reply{}, err
	}
	return r.route.handle(a, ctx, r)
}

// check holds the event to the route this function serves, bounds the body, and
// re-checks the scope the authorizer granted: a function wired to the wrong route or
// reached without the authorizer refuses instead of serving.
func (r *request) check() error {
	switch {
	case r.ev.Resource != r.route.Path:
		return errNotFound
	case r.ev.HTTPMethod != r.route.Method:
		return errMethodNotAllowed
	case len(r.ev.Body) > maxBodyBytes:
		return errPayloadTooLarge
	}
	if r.route.Scope == auth.Public {
		return nil
	}
	scope, _ := r.ev.RequestContext.Authorizer[ContextScope].(string)
	client, _ := r.ev.RequestContext.Authorizer[ContextClient].(string)
	if !auth.Scope(scope).Permits(r.route.Scope) {
		return errForbidden
	}
	r.client = client
	if v, ok := r.ev.RequestContext.Authorizer[ContextMaxLiveAllocations].(string); ok {
		// Only the authorizer writes it; a value it cannot have written refuses rather than
		// serving the client without its cap.
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return errForbidden
		}
		r.clientCap = n
	}
	return nil
}

func (rep reply) response(requestID string) events.APIGatewayProxyResponse {
	h := ResponseHeaders(requestID)
	if rep.location != "" {
		h["Location"] = rep.location
	}
	for k, v := range rep.headers {
		h[k] = v
	}
	if rep.contentType != "" {
		h["Content-Type"] = rep.contentType
		return events.APIGatewayProxyResponse{StatusCode: rep.status, Headers: h, Body: string(rep.text)}
	}
	body, _ := json.Marshal(rep.body) // the package's own body types: Marshal cannot fail
	return events.APIGatewayProxyResponse{StatusCode: rep.status, Headers: h, Body: string(body)}
}

// NewRequestID makes a random UUID (version 4), the form of API Gateway's request IDs. The
// local gateway emulator assigns them as API Gateway would.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
