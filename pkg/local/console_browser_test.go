package local

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// chromiumPath is Debian's chromium, which `make test` installs (scripts/check-tools).
const chromiumPath = "/usr/bin/chromium"

// The console in a real headless Chromium, driven by playwright-core from Node's test
// runner (pkg/local/testdata/console.test.mjs), against a local stack seeded with one
// sandbox of each kind the console shows: allocated, pending deletion, deletion_failed
// (the fake CSP refuses its delete), stale (the CSP stopped listing it), and a deleted
// one with its history; and two lab profiles. The spec's screenshot lands in artifacts/
// (not in git).
func TestConsoleInABrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: make test installs it (apt-get install -y chromium)", chromiumPath)
	}
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	const accounts = 12
	s, ids := startMixedStack(t, accounts, 5)
	release(t, s, "student-3", ids[3]) // pending deletion: no cleanup runs until the page starts one
	census := pooltest.Check(t, s.pool)
	want := map[pool.Status]int{pool.Allocated: 1, pool.PendingDeletion: 1, pool.DeletionFailed: 1, pool.Stale: 2}
	for st, n := range want {
		if census.ByStatus[st] != n {
			t.Fatalf("seeded %v, want %v", census.ByStatus, want)
		}
	}

	// Each prefix's signals as the pool-metrics job stores them (its computation is
	// TestOnePrefixDrainingWhileAnotherIsFull's): lab low on both counts, other fine.
	counted := time.Now().UnixMilli()
	for _, sig := range []pool.PrefixSignal{pool.NewPrefixSignal("lab", 2, 1.2, 5, 30, counted), pool.NewPrefixSignal("other", 6, 0, 5, 30, counted)} {
		if err := s.pool.PutPrefixSignal(context.Background(), sig); err != nil {
			t.Fatal(err)
		}
	}

	// What operators plan with: two lab profiles, through the admin API.
	admin := bearer(s.AdminToken)
	for _, profile := range []string{
		`{"lab":"dns-lab","lab_duration_minutes":120,"extension_minutes":30,"max_duration_minutes":180,"no_sandbox_message":"The DNS lab is full: ask your instructor."}`,
		`{"prefix":"lab","student_limit":2,"low_water":3}`,
	} {
		wantStatus(t, "seed a profile", s.c.do("PUT", "/v1/admin/profiles", admin, []byte(profile)), http.StatusOK, "")
	}

	// The spec makes the CSP list the two gone accounts again (a sync then brings them
	// back from stale) and hide them again, to move the pool under an open confirmation.
	control := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit := map[string]int{"/csp/list-all": 0, "/csp/hide-gone": accounts - 2} // as startMixedStack hides them
		n, ok := limit[r.URL.Path]
		if !ok || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		if err := s.csp.SetFaults(cspfake.Faults{ListLimit: n}); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
		}
	}))
	defer control.Close()

	artifacts := filepath.Join(root, "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	// The run and each of its steps may take until the test binary's -timeout is near.
	ctx := testkit.Patience(t)
	stepTimeout := time.Duration(0) // Playwright's "no limit"
	if deadline, ok := ctx.Deadline(); ok {
		stepTimeout = time.Until(deadline)
	}
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", filepath.Join("pkg", "local", "testdata", "console.test.mjs"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"CONSOLE_URL="+s.URL+"/console", "API_URL="+s.URL, "ADMIN_TOKEN="+s.AdminToken, "CHROMIUM="+chromiumPath,
		"ARTIFACTS_DIR="+artifacts, "CONTROL_URL="+control.URL, "FAILED_ID="+ids[0], "DELETED_ID="+ids[1], "STUDENT=student-4", "STUDENT_SANDBOX="+ids[4],
		fmt.Sprintf("STEP_TIMEOUT_MS=%d", stepTimeout.Milliseconds()),
	)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("the browser test failed: %v", err)
	}
	pooltest.Check(t, s.pool)
}
