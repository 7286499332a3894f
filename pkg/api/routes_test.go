package api

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// TestTablesMatchTheTree holds the route table and the job table to the repository. A
// route is five pieces: its table line, its handler method, functions/<name>/main.go
// building it, events/<name>.json and its operation in api/openapi.yaml; a job is its
// line, its run method (checked in pkg/broker), its function and its sample. Each piece
// missing is named, and so is each one left over: a handler, folder, sample or operation
// that belongs to no entry.
func TestTablesMatchTheTree(t *testing.T) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	spec := apitest.Spec(t)
	want := map[string]string{AuthorizerFunction: "authorizer"}
	handled := map[string]bool{}
	for _, r := range Routes {
		if prev, dup := want[r.Name]; dup {
			t.Errorf("function folder %s is used by %s and route %s", r.Name, prev, r.Name)
		}
		want[r.Name] = "route " + r.Name
		if r.handle == nil {
			t.Errorf("route %s has no handler", r.Name)
		} else {
			handled[testkit.FuncName(r.handle)] = true
		}
		if item := spec.Paths.Find(r.Path); item == nil || item.GetOperation(r.Method) == nil {
			t.Errorf("route %s: api/openapi.yaml has no operation %s %s", r.Name, r.Method, r.Path)
		}
		main, err := os.ReadFile(filepath.Join(root, "functions", r.Name, "main.go"))
		if r.Table < NoTable || r.Table > WritesTable {
			t.Errorf("route %s does not say what it does to the table (Route.Table)", r.Name)
		}
		constructor := "app.Route" // a trigger route's function is the one that links the Lambda client
		if r.Starts != "" {
			constructor = "trigger.Route"
		}
		if err == nil && !strings.Contains(string(main), constructor+`(context.Background(), os.Getenv, os.Stdout, "`+r.Name+`")`) {
			t.Errorf("functions/%s/main.go does not build the %s route's handler", r.Name, r.Name)
		}
	}
	for _, m := range testkit.Methods(t, ".", "API", "context.Context, *request", "reply, error") {
		if !handled[m] {
			t.Errorf("handler (*API).%s serves no route of the table", m)
		}
	}
	for path, item := range spec.Paths.Map() {
		for method := range item.Operations() {
			if !slices.ContainsFunc(Routes, func(r Route) bool { return r.Path == path && r.Method == method }) {
				t.Errorf("api/openapi.yaml: %s %s is no route of the table", method, path)
			}
		}
	}
	for _, j := range jobs.Table {
		if prev, dup := want[j.Name]; dup {
			t.Errorf("function folder %s is used by %s and job %s", j.Name, prev, j.Name)
		}
		want[j.Name] = "job " + j.Name
	}
	for f, owner := range want {
		if _, err := os.Stat(filepath.Join(root, "functions", f, "main.go")); err != nil {
			t.Errorf("%s: functions/%s/main.go is missing", owner, f)
		}
		raw, err := os.ReadFile(filepath.Join(root, "events", f+".json"))
		if err != nil {
			t.Errorf("%s: events/%s.json is missing", owner, f)
			continue
		}
		if !json.Valid(raw) {
			t.Errorf("events/%s.json is not JSON", f)
		}
	}

	dirs, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, ok := want[d.Name()]; !ok {
			t.Errorf("functions/%s belongs to no route, no job and is not the authorizer", d.Name())
		}
	}
	samples, err := filepath.Glob(filepath.Join(root, "events", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		name, isJSON := strings.CutSuffix(filepath.Base(s), ".json")
		if _, ok := want[name]; !ok || !isJSON {
			t.Errorf("events/%s belongs to no route, no job and is not the authorizer", filepath.Base(s))
		}
	}
}

// TestRouteSamplesAreTheirRoutesEvents: each route's sample is the REST proxy event of
// that route, and the authorizer's sample is a REQUEST authorizer event.
func TestRouteSamplesAreTheirRoutesEvents(t *testing.T) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range Routes {
		var ev events.APIGatewayProxyRequest
		readJSON(t, filepath.Join(root, "events", r.Name+".json"), &ev)
		if ev.Resource != r.Path || ev.HTTPMethod != r.Method || ev.RequestContext.RequestID == "" {
			t.Errorf("events/%s.json: %s %s (request id %q), want %s %s", r.Name, ev.HTTPMethod, ev.Resource, ev.RequestContext.RequestID, r.Method, r.Path)
		}
		if m, params, status := Match(ev.HTTPMethod, ev.Path); status != http.StatusOK || m.Name != r.Name || !mapsEqual(params, ev.PathParameters) {
			t.Errorf("events/%s.json: path %s resolves to %q %v (%d)", r.Name, ev.Path, m.Name, params, status)
		}
		scope, _ := ev.RequestContext.Authorizer[ContextScope].(string)
		if (r.Scope == auth.Public) != (scope == "") || (scope != "" && scope != string(r.Scope)) {
			t.Errorf("events/%s.json: authorizer scope %q for a %s route", r.Name, scope, r.Scope)
		}
	}
	var ev events.APIGatewayCustomAuthorizerRequestTypeRequest
	readJSON(t, filepath.Join(root, "events", AuthorizerFunction+".json"), &ev)
	if ev.Type != "REQUEST" || ev.MethodArn == "" || ev.Headers[HeaderAuthorization] == "" {
		t.Errorf("events/authorizer.json is not a REQUEST authorizer event with an Authorization header: %+v", ev)
	}
}

func TestRouteTable(t *testing.T) {
	names, starters := map[string]bool{}, map[string]string{}
	for _, r := range Routes {
		if names[r.Name] {
			t.Errorf("route name %s twice", r.Name)
		}
		names[r.Name] = true
		if !slices.Contains([]auth.Scope{auth.Public, auth.Track, auth.Admin, auth.Metrics}, r.Scope) {
			t.Errorf("route %s: unknown scope %q", r.Name, r.Scope)
		}
		// The admin surface is admin-only whatever else changes in the table, except the
		// two reads a metrics token may make.
		readsMetrics := r.Method == http.MethodGet && (r.Path == "/v1/admin/stats" || r.Path == "/metrics")
		if (strings.HasPrefix(r.Path, "/v1/admin/") || r.Path == "/metrics") && r.Scope != auth.Admin && !(readsMetrics && r.Scope == auth.Metrics) {
			t.Errorf("route %s on %s must have the admin scope", r.Name, r.Path)
		}
		if r.Scope == auth.Metrics && !readsMetrics {
			t.Errorf("route %s: a metrics token may read /metrics and GET /v1/admin/stats only", r.Name)
		}
		if m, _, status := Match(r.Method, r.Path); status != http.StatusOK || m.Name != r.Name {
			t.Errorf("route %s does not match its own path", r.Name)
		}
		// A trigger route starts a job of the job table, is an admin POST, and is the only
		// route that starts it (the stack grants the invoke to exactly one function).
		if r.Starts != "" {
			if _, ok := jobs.Named(r.Starts); !ok {
				t.Errorf("route %s starts %q, which is not in the job table", r.Name, r.Starts)
			}
			if r.Scope != auth.Admin || r.Method != http.MethodPost {
				t.Errorf("route %s starts a job: it must be an admin POST", r.Name)
			}
			if starters[r.Starts] != "" {
				t.Errorf("routes %s and %s both start %s", starters[r.Starts], r.Name, r.Starts)
			}
			starters[r.Starts] = r.Name
		}
	}
	for _, c := range []struct {
		method, path string
		route        string
		status       int
		params       map[string]string
	}{
		{"POST", "/v1/allocate", "allocate", 200, nil},
		{"GET", "/v1/allocate", "", 405, nil},
		{"GET", "/v1/sandboxes/42", "get-sandbox", 200, map[string]string{"id": "42"}},
		{"DELETE", "/v1/sandboxes/42", "", 405, nil},
		{"POST", "/v1/sandboxes/42/mark-for-deletion", "mark-for-deletion", 200, map[string]string{"id": "42"}},
		{"GET", "/v1/sandboxes/", "", 404, nil},
		{"GET", "/v1/sandboxes//mark-for-deletion", "", 404, nil},
		{"GET", "/v1/allocate/", "", 404, nil},
		{"GET", "/nope", "", 404, nil},
		{"GET", "/healthz", "healthz", 200, nil},
		{"GET", "/v1/admin/sandboxes", "admin-list-sandboxes", 200, nil},
		{"GET", "/v1/admin/sandboxes/42", "admin-get-sandbox", 200, map[string]string{"id": "42"}},
		{"POST", "/v1/admin/sandboxes/42/retry-deletion", "admin-retry-deletion", 200, map[string]string{"id": "42"}},
		{"GET", "/v1/admin/sandboxes/42/retry-deletion", "", 405, nil},
		{"GET", "/v1/admin/jobs/sync", "admin-job-runs", 200, map[string]string{"name": "sync"}},
		{"GET", "/v1/admin/jobs", "", 404, nil},
		{"GET", "/v1/admin/sync", "", 405, nil},
		{"POST", "/v1/admin/bulk-delete", "admin-bulk-delete", 200, nil},
		{"DELETE", "/v1/admin/bulk-delete", "", 405, nil},
		{"GET", "/metrics", "metrics", 200, nil},
	} {
		r, params, status := Match(c.method, c.path)
		if status != c.status || r.Name != c.route || !mapsEqual(params, c.params) {
			t.Errorf("Match(%s %s) = %q %v %d, want %q %v %d", c.method, c.path, r.Name, params, status, c.route, c.params, c.status)
		}
	}
}

func readJSON(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The admin API's status list (pkg/api/wire, read by brokerctl) is the pool's.
func TestWireStatusesArePoolStatuses(t *testing.T) {
	var want []string
	for _, s := range pool.Statuses {
		want = append(want, string(s))
	}
	if !slices.Equal(wire.Statuses, want) {
		t.Fatalf("wire.Statuses %v, pool.Statuses %v", wire.Statuses, want)
	}
}
