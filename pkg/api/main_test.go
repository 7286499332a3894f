package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestMain(m *testing.M) { pooltest.Main(m) }

var (
	ctx     = context.Background()
	poolCfg = config.Pool{LabDuration: 48 * time.Hour, Grace: 30 * time.Minute}
)

// fixture is an API over a fresh table, with its logs, metrics and started jobs captured.
type fixture struct {
	api     *API
	pool    *pool.Pool
	logs    *testkit.Buffer
	metrics *testkit.Buffer
	jobs    *recordingJobs
}

// recordingJobs is the JobStarter of the handler tests: it records what it was asked to
// start, or fails with err.
type recordingJobs struct {
	mu      sync.Mutex
	started []string // "job/runID"
	err     error
}

func (j *recordingJobs) StartJob(_ context.Context, job, runID string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	j.started = append(j.started, job+"/"+runID)
	return nil
}

func newFixture(t *testing.T, cfg config.API) *fixture {
	t.Helper()
	p := pooltest.New(t)
	return newFixtureOn(t, p, cfg)
}

func newFixtureOn(t *testing.T, p *pool.Pool, cfg config.API) *fixture {
	f := &fixture{pool: p, logs: &testkit.Buffer{}, metrics: &testkit.Buffer{}, jobs: &recordingJobs{}}
	f.api = New(Deps{
		Broker: broker.New(p, poolCfg), Ready: p.Ping, Config: cfg,
		Log: obs.NewLogger(f.logs, -8), Metrics: obs.NewMetrics(f.metrics, "SandboxBrokerTest"), Jobs: f.jobs,
	})
	return f
}

// fill adds n available sandboxes named <prefix>-<i>.
func fill(t *testing.T, p *pool.Pool, prefix string, n int) {
	t.Helper()
	for i := range n {
		_, err := p.Create(ctx, pool.Account{
			ID: fmt.Sprint(2012000 + i), Name: fmt.Sprintf("%s-%04d", prefix, i),
			ExternalID: fmt.Sprintf("identity/accounts/3f1c9a52-0b7e-4d3a-9c1f-%012d", i), SFDCAccountID: "001ABC",
		}, pool.Actor{Kind: "job", Name: "sync"})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// event builds the REST proxy event API Gateway sends for route, with the authorizer
// context of a token of the route's scope (track "instruqt", admin "ops", metrics "prometheus"), headers in both
// maps, and params substituted into the path.
func event(t *testing.T, routeName string, headers map[string]string, params map[string]string) events.APIGatewayProxyRequest {
	t.Helper()
	r, ok := RouteByName(routeName)
	if !ok {
		t.Fatalf("no route %s", routeName)
	}
	path := r.Path
	for k, v := range params {
		path = strings.ReplaceAll(path, "{"+k+"}", v)
	}
	ev := events.APIGatewayProxyRequest{
		Resource: r.Path, Path: path, HTTPMethod: r.Method, PathParameters: params,
		Headers: map[string]string{}, MultiValueHeaders: map[string][]string{},
		RequestContext: events.APIGatewayProxyRequestContext{
			RequestID: NewRequestID(), Stage: "test", ResourcePath: r.Path, HTTPMethod: r.Method,
		},
	}
	switch r.Scope {
	case auth.Track:
		ev.RequestContext.Authorizer = map[string]any{"principalId": "instruqt", ContextScope: "track", ContextClient: "instruqt"}
	case auth.Admin:
		ev.RequestContext.Authorizer = map[string]any{"principalId": "ops", ContextScope: "admin", ContextClient: "ops"}
	case auth.Metrics:
		ev.RequestContext.Authorizer = map[string]any{"principalId": "prometheus", ContextScope: "metrics", ContextClient: "prometheus"}
	}
	for k, v := range headers {
		ev.Headers[k] = v
		ev.MultiValueHeaders[k] = []string{v}
	}
	return ev
}

func student(id string) map[string]string {
	return map[string]string{HeaderSandboxID: id, HeaderTrackName: "dns-basics", HeaderNamePrefix: "lab"}
}

// call runs the route's function on ev and validates the answer against the OpenAPI
// document.
func (f *fixture) call(t *testing.T, ev events.APIGatewayProxyRequest) events.APIGatewayProxyResponse {
	t.Helper()
	r, ok := routeOf(ev.HTTPMethod, ev.Resource)
	if !ok {
		t.Fatalf("event for no route: %s %s", ev.HTTPMethod, ev.Resource)
	}
	fn, err := f.api.Function(r.Name)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := fn(ctx, ev)
	if err != nil {
		t.Fatalf("a route function returned an error to the runtime: %v", err)
	}
	apitest.Check(t, r.Method, r.Path, resp.StatusCode, httpHeader(resp.Headers), []byte(resp.Body))
	if got := resp.Headers[HeaderRequestID]; got != ev.RequestContext.RequestID {
		t.Errorf("X-Request-ID %q, want the API Gateway request id %q", got, ev.RequestContext.RequestID)
	}
	return resp
}

func httpHeader(m map[string]string) http.Header {
	h := http.Header{}
	for k, v := range m {
		h.Set(k, v)
	}
	return h
}

func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return v
}

// wantError asserts an error answer's status and code.
func wantError(t *testing.T, resp events.APIGatewayProxyResponse, status int, code string) apitest.Detail {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d: %s", resp.StatusCode, status, resp.Body)
	}
	d := apitest.DecodeError(t, []byte(resp.Body))
	if d.Code != code {
		t.Fatalf("code %s, want %s: %s", d.Code, code, resp.Body)
	}
	return d
}
