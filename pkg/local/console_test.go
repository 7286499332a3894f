package local

import (
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/console"
)

// GET /console over the gateway: the page with the console's CSP and no caching, its
// content-hashed assets with their media types and caching for good, an unknown asset a
// 404 in the envelope, and every other route still with the API's own CSP.
func TestConsoleRoutes(t *testing.T) {
	s, _, _ := startStack(t, nil)
	c := client{t, s.URL}
	const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

	page := c.do("GET", "/console", nil, nil)
	wantStatus(t, "console", page, http.StatusOK, "")
	if got := page.header.Get("Content-Security-Policy"); got != csp {
		t.Fatalf("page CSP %q", got)
	}
	if page.header.Get("Cache-Control") != "no-store" || page.header.Get("Content-Type") != "text/html; charset=utf-8" ||
		page.header.Get("X-Frame-Options") != "DENY" || page.header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("page headers %v", page.header)
	}
	refs := regexp.MustCompile(`(?:src|href)="(console/[^"]+)"`).FindAllStringSubmatch(string(page.body), -1)
	if len(refs) != 2 {
		t.Fatalf("the page references %v", refs)
	}
	hashed := regexp.MustCompile(`^console/[a-z0-9-]+\.[0-9a-f]{12}\.(js|css)$`)
	seen := map[string]bool{}
	for _, ref := range refs {
		// Relative (no leading slash): under API Gateway's stage prefix it resolves to
		// /<stage>/console/...
		if !hashed.MatchString(ref[1]) {
			t.Fatalf("asset URL %s is not relative and hashed", ref[1])
		}
		seen[ref[1]] = true
	}
	// Every asset, also those only imported by a module, answers with its type and caching.
	for _, name := range console.Default().AssetNames() {
		a := c.do("GET", "/console/"+name, nil, nil)
		wantStatus(t, name, a, http.StatusOK, "")
		want := "text/javascript; charset=utf-8"
		if strings.HasSuffix(name, ".css") {
			want = "text/css; charset=utf-8"
		}
		if a.header.Get("Content-Type") != want || a.header.Get("Cache-Control") != "public, max-age=31536000, immutable" ||
			a.header.Get("Content-Security-Policy") != csp || len(a.body) == 0 {
			t.Fatalf("%s: %v", name, a.header)
		}
		for _, imported := range regexp.MustCompile(`from "\./([^"]+)"`).FindAllStringSubmatch(string(a.body), -1) {
			if !hashed.MatchString("console/" + imported[1]) {
				t.Fatalf("%s imports %s, not a hashed name", name, imported[1])
			}
			seen["console/"+imported[1]] = true
		}
	}
	if len(seen) != len(console.Default().AssetNames()) {
		t.Fatalf("the page and its modules reference %d assets, the console has %d", len(seen), len(console.Default().AssetNames()))
	}

	for _, path := range []string{"/console/app.js", "/console/app.000000000000.js", "/console/index.html", "/console/console.css"} {
		a := c.do("GET", path, nil, nil)
		wantStatus(t, path, a, http.StatusNotFound, "NOT_FOUND")
		if apitest.DecodeError(t, a.body).Message != "No such console asset" || a.header.Get("Content-Security-Policy") != api.SecurityHeaders["Content-Security-Policy"] {
			t.Fatalf("%s: %s %v", path, a.body, a.header)
		}
	}
	wantStatus(t, "console with a query", c.do("GET", "/console?token=x", nil, nil), http.StatusBadRequest, "VALIDATION_ERROR")
	wantStatus(t, "POST console", c.do("POST", "/console", nil, nil), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")

	// The other routes keep the API's policy and no-store.
	for _, a := range []answer{
		c.do("GET", "/healthz", nil, nil),
		c.do("GET", "/v1/admin/stats", bearer(s.AdminToken), nil),
		c.do("GET", "/v1/admin/stats", nil, nil),
		c.do("POST", "/v1/allocate", track(s.TrackToken, "student-c"), nil),
	} {
		if a.header.Get("Content-Security-Policy") != "default-src 'none'; frame-ancestors 'none'" || a.header.Get("Cache-Control") != "no-store" {
			t.Fatalf("a non-console answer (%d) has %v", a.status, a.header)
		}
	}
}
