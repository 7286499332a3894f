package api

import (
	"encoding/json"
	"maps"
	"os"
	"slices"
	"testing"

	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// TestMatch resolves requests as API Gateway does: a route, 404 for an unknown resource,
// 405 for a known resource without that method. Each route's own checks are
// internal/tablecheck's.
func TestMatch(t *testing.T) {
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
		if status != c.status || r.Name != c.route || !maps.Equal(params, c.params) {
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
