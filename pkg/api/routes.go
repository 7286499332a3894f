// Package api is the broker's HTTP API as API Gateway (REST, Lambda proxy integration)
// delivers it: the route table, the adapters between API Gateway events and the use cases
// of pkg/broker, strict header parsing, the one error envelope, and the authorizer's
// Lambda adapter. It and pkg/local are the only packages that know Lambda event types.
package api

import (
	"net/http"
	"strings"

	"github.com/sandbox-broker/broker/pkg/auth"
)

// Route is one API route, served by one Lambda function. The table is plain data: the CDK
// stack makes one API Gateway method and one function per entry, and the local stack's
// gateway emulator routes by it.
type Route struct {
	// Name identifies the route in logs and selects its handler.
	Name   string
	Method string
	// Path is the API Gateway resource path; {name} is a path parameter (one segment).
	Path  string
	Scope auth.Scope
	// Function is the folder under functions/ (and the sample events/<Function>.json).
	Function string
	// Starts names the job (broker.Jobs) an admin trigger route starts: its function may
	// invoke that job's function, whose name it reads from JobFunctionEnv(job).
	Starts string
}

// JobFunctionEnv is the variable that gives a trigger route the name of the function of
// job, e.g. JOB_FUNCTION_STALE_CLEANUP.
func JobFunctionEnv(job string) string {
	return "JOB_FUNCTION_" + strings.ToUpper(strings.ReplaceAll(job, "-", "_"))
}

// Routes is the route table (ARCHITECTURE §3). Adding a route is one line here, one
// handler in handlers, one folder under functions/ and one sample under events/.
var Routes = []Route{
	{Name: "allocate", Method: http.MethodPost, Path: "/v1/allocate", Scope: auth.Track, Function: "allocate"},
	{Name: "get-sandbox", Method: http.MethodGet, Path: "/v1/sandboxes/{id}", Scope: auth.Track, Function: "get-sandbox"},
	{Name: "mark-for-deletion", Method: http.MethodPost, Path: "/v1/sandboxes/{id}/mark-for-deletion", Scope: auth.Track, Function: "mark-for-deletion"},
	{Name: "healthz", Method: http.MethodGet, Path: "/healthz", Scope: auth.Public, Function: "healthz"},
	{Name: "readyz", Method: http.MethodGet, Path: "/readyz", Scope: auth.Public, Function: "readyz"},
	{Name: "console", Method: http.MethodGet, Path: "/console", Scope: auth.Public, Function: "console"},
	{Name: "console-asset", Method: http.MethodGet, Path: "/console/{asset}", Scope: auth.Public, Function: "console-asset"},

	{Name: "admin-list-sandboxes", Method: http.MethodGet, Path: "/v1/admin/sandboxes", Scope: auth.Admin, Function: "admin-list-sandboxes"},
	{Name: "admin-get-sandbox", Method: http.MethodGet, Path: "/v1/admin/sandboxes/{id}", Scope: auth.Admin, Function: "admin-get-sandbox"},
	{Name: "admin-retry-deletion", Method: http.MethodPost, Path: "/v1/admin/sandboxes/{id}/retry-deletion", Scope: auth.Admin, Function: "admin-retry-deletion"},
	{Name: "admin-stats", Method: http.MethodGet, Path: "/v1/admin/stats", Scope: auth.Admin, Function: "admin-stats"},
	{Name: "admin-sync", Method: http.MethodPost, Path: "/v1/admin/sync", Scope: auth.Admin, Function: "admin-sync", Starts: "sync"},
	{Name: "admin-cleanup", Method: http.MethodPost, Path: "/v1/admin/cleanup", Scope: auth.Admin, Function: "admin-cleanup", Starts: "cleanup"},
	{Name: "admin-job-runs", Method: http.MethodGet, Path: "/v1/admin/jobs/{name}", Scope: auth.Admin, Function: "admin-job-runs"},
	{Name: "admin-bulk-delete", Method: http.MethodPost, Path: "/v1/admin/bulk-delete", Scope: auth.Admin, Function: "admin-bulk-delete"},
	{Name: "admin-auto-delete-stale", Method: http.MethodPost, Path: "/v1/admin/auto-delete-stale", Scope: auth.Admin, Function: "admin-auto-delete-stale"},
	{Name: "metrics", Method: http.MethodGet, Path: "/metrics", Scope: auth.Admin, Function: "metrics"},
}

// AuthorizerFunction is the folder of the Lambda authorizer, the one function that is not
// a route.
const AuthorizerFunction = "authorizer"

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
