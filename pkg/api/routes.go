package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/sandbox-broker/broker/pkg/auth"
)

// Route is one API route, served by one Lambda function. The CDK stack makes one API
// Gateway method and one function per entry, and the local stack's gateway emulator
// routes by it.
type Route struct {
	// Name identifies the route in logs; it is also its function's folder under functions/
	// and its sample events/<Name>.json.
	Name   string
	Method string
	// Path is the API Gateway resource path; {name} is a path parameter (one segment).
	Path  string
	Scope auth.Scope
	// Starts names the job (jobs.Table) an admin trigger route starts: its function may
	// invoke that job's function, whose name it reads from JobFunctionEnv(job).
	Starts string
	// Table is what the route's code does to the pool table: the stack grants its function
	// the DynamoDB actions of that and no more.
	Table TableUse
	// ReplaysEvents marks the route that publishes the domain events' dead letters again:
	// its function is built by eventfn.ReplayRoute, and the stack grants it the
	// dead-letter queue, the event bus and the table's stream.
	ReplaysEvents bool
	// handle is the route's code (API.Function serves it).
	handle handlerFunc
}

// TableUse is what a route's code does to the pool table.
type TableUse int

const (
	// NoTable: the route's code never calls the pool (health, the console's page and assets).
	NoTable TableUse = iota + 1
	// PingsTable: the route only asks whether the table answers (readiness).
	PingsTable
	// ReadsTable: the route reads and queries; a trigger route reads its job's lease (the job writes).
	ReadsTable
	// WritesTable: the route makes transitions.
	WritesTable
)

type handlerFunc func(a *API, ctx context.Context, r *request) (reply, error)

// JobFunctionEnv is the variable that gives a trigger route the name of the function of
// job, e.g. JOB_FUNCTION_STALE_CLEANUP.
func JobFunctionEnv(job string) string {
	return "JOB_FUNCTION_" + strings.ToUpper(strings.ReplaceAll(job, "-", "_"))
}

// Routes is the route table (docs/architecture.md §3). Adding a route: README.md, "Add a
// route"; `make check` names what is missing.
var Routes = []Route{
	{Name: "allocate", Method: http.MethodPost, Path: "/v1/allocate", Scope: auth.Track, Table: WritesTable, handle: (*API).allocate},
	{Name: "get-sandbox", Method: http.MethodGet, Path: "/v1/sandboxes/{id}", Scope: auth.Track, Table: ReadsTable, handle: (*API).getSandbox},
	{Name: "mark-for-deletion", Method: http.MethodPost, Path: "/v1/sandboxes/{id}/mark-for-deletion", Scope: auth.Track, Table: WritesTable, handle: (*API).markForDeletion},
	{Name: "extend", Method: http.MethodPost, Path: "/v1/sandboxes/{id}/extend", Scope: auth.Track, Table: WritesTable, handle: (*API).extend},
	{Name: "healthz", Method: http.MethodGet, Path: "/healthz", Scope: auth.Public, Table: NoTable, handle: (*API).healthz},
	{Name: "readyz", Method: http.MethodGet, Path: "/readyz", Scope: auth.Public, Table: PingsTable, handle: (*API).readyz},
	{Name: "console", Method: http.MethodGet, Path: "/console", Scope: auth.Public, Table: NoTable, handle: (*API).consolePage},
	{Name: "console-asset", Method: http.MethodGet, Path: "/console/{asset}", Scope: auth.Public, Table: NoTable, handle: (*API).consoleAsset},

	{Name: "admin-list-sandboxes", Method: http.MethodGet, Path: "/v1/admin/sandboxes", Scope: auth.Admin, Table: ReadsTable, handle: (*API).listSandboxes},
	{Name: "admin-get-sandbox", Method: http.MethodGet, Path: "/v1/admin/sandboxes/{id}", Scope: auth.Admin, Table: ReadsTable, handle: (*API).inspectSandbox},
	{Name: "admin-retry-deletion", Method: http.MethodPost, Path: "/v1/admin/sandboxes/{id}/retry-deletion", Scope: auth.Admin, Table: WritesTable, handle: (*API).retryDeletion},
	{Name: "admin-stats", Method: http.MethodGet, Path: "/v1/admin/stats", Scope: auth.Metrics, Table: ReadsTable, handle: (*API).stats},
	{Name: "admin-sync", Method: http.MethodPost, Path: "/v1/admin/sync", Scope: auth.Admin, Starts: "sync", Table: ReadsTable, handle: (*API).startJob},
	{Name: "admin-cleanup", Method: http.MethodPost, Path: "/v1/admin/cleanup", Scope: auth.Admin, Starts: "cleanup", Table: ReadsTable, handle: (*API).startJob},
	{Name: "admin-job-runs", Method: http.MethodGet, Path: "/v1/admin/jobs/{name}", Scope: auth.Admin, Table: ReadsTable, handle: (*API).jobRuns},
	{Name: "admin-bulk-delete", Method: http.MethodPost, Path: "/v1/admin/bulk-delete", Scope: auth.Admin, Table: WritesTable, handle: (*API).bulkDelete},
	{Name: "admin-auto-delete-stale", Method: http.MethodPost, Path: "/v1/admin/auto-delete-stale", Scope: auth.Admin, Table: WritesTable, handle: (*API).deleteStale},
	{Name: "admin-drain-state", Method: http.MethodGet, Path: "/v1/admin/drain", Scope: auth.Admin, Table: ReadsTable, handle: (*API).drainState},
	{Name: "admin-drain", Method: http.MethodPut, Path: "/v1/admin/drain", Scope: auth.Admin, Table: WritesTable, handle: (*API).startDrain},
	{Name: "admin-undrain", Method: http.MethodDelete, Path: "/v1/admin/drain", Scope: auth.Admin, Table: WritesTable, handle: (*API).endDrains},
	{Name: "admin-replay-events", Method: http.MethodPost, Path: "/v1/admin/events/replay", Scope: auth.Admin, Table: NoTable, ReplaysEvents: true, handle: (*API).replayEvents},
	{Name: "admin-list-profiles", Method: http.MethodGet, Path: "/v1/admin/profiles", Scope: auth.Admin, Table: ReadsTable, handle: (*API).listProfiles},
	{Name: "admin-put-profile", Method: http.MethodPut, Path: "/v1/admin/profiles", Scope: auth.Admin, Table: WritesTable, handle: (*API).putProfile},
	{Name: "admin-delete-profile", Method: http.MethodDelete, Path: "/v1/admin/profiles", Scope: auth.Admin, Table: WritesTable, handle: (*API).deleteProfile},
	{Name: "admin-list-reservations", Method: http.MethodGet, Path: "/v1/admin/reservations", Scope: auth.Admin, Table: ReadsTable, handle: (*API).listReservations},
	{Name: "admin-create-reservation", Method: http.MethodPost, Path: "/v1/admin/reservations", Scope: auth.Admin, Table: WritesTable, handle: (*API).createReservation},
	{Name: "admin-cancel-reservation", Method: http.MethodDelete, Path: "/v1/admin/reservations/{id}", Scope: auth.Admin, Table: WritesTable, handle: (*API).cancelReservation},
	{Name: "admin-capacity", Method: http.MethodGet, Path: "/v1/admin/capacity", Scope: auth.Admin, Table: ReadsTable, handle: (*API).checkCapacity},
	{Name: "metrics", Method: http.MethodGet, Path: "/metrics", Scope: auth.Metrics, Table: ReadsTable, handle: (*API).metricsText},
}

// AuthorizerFunction is the folder of the Lambda authorizer, the one function that is not
// a route.
const AuthorizerFunction = "authorizer"

// EventConsumerFunction is the folder of the function that consumes the table's stream
// and publishes the domain events (pkg/events): neither a route nor a job. It is named
// here, beside the authorizer, so what sorts the functions (app.KindOf) links no events
// code.
const EventConsumerFunction = "publish-events"

// RouteByName finds a route of the table.
func RouteByName(name string) (Route, bool) {
	for _, r := range Routes {
		if r.Name == name {
			return r, true
		}
	}
	return Route{}, false
}

// Match resolves a request path and method against the table as API Gateway does. It
// returns the route and its path parameters, or the status of the gateway's answer: 404
// when no resource has this path, 405 when the resource exists without this method.
func Match(method, path string) (Route, map[string]string, int) {
	pathKnown := false
	for _, r := range Routes {
		params, ok := matchPath(r.Path, path)
		if !ok {
			continue
		}
		if r.Method == method {
			return r, params, http.StatusOK
		}
		pathKnown = true
	}
	if pathKnown {
		return Route{}, nil, http.StatusMethodNotAllowed
	}
	return Route{}, nil, http.StatusNotFound
}

// MethodsOf lists the methods the table defines on a resource path (for 405 answers and
// CORS preflights).
func MethodsOf(resource string) []string {
	var out []string
	for _, r := range Routes {
		if r.Path == resource {
			out = append(out, r.Method)
		}
	}
	return out
}

// ResourceOf returns the resource path of the table that a request path falls under.
func ResourceOf(path string) (string, bool) {
	for _, r := range Routes {
		if _, ok := matchPath(r.Path, path); ok {
			return r.Path, true
		}
	}
	return "", false
}

// matchPath matches segment by segment; a {param} takes exactly one non-empty segment.
func matchPath(pattern, path string) (map[string]string, bool) {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range ps {
		if name, ok := strings.CutPrefix(p, "{"); ok {
			if xs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[strings.TrimSuffix(name, "}")] = xs[i]
			continue
		}
		if p != xs[i] {
			return nil, false
		}
	}
	return params, true
}
