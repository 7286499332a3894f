package local

import (
	"context"
	"encoding/json"
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
	"github.com/sandbox-broker/broker/pkg/broker"
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
// one with its history; two lab profiles, and a reservation the pool cannot cover. The
// spec's screenshot lands in artifacts/ (not in git).
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

	// What operators plan with, through the admin API: two lab profiles, and a reservation
	// a few hours ahead of far more seats of lab than the pool has, forced past its capacity
	// check. One pass of the reservations job (run here: the stack runs it every minute)
	// records it short.
	admin := bearer(s.AdminToken)
	for _, profile := range []string{
		`{"lab":"dns-lab","lab_duration_minutes":120,"extension_minutes":30,"max_duration_minutes":180,"no_sandbox_message":"The DNS lab is full: ask your instructor."}`,
		`{"prefix":"lab","student_limit":2,"low_water":3}`,
	} {
		wantStatus(t, "seed a profile", s.c.do("PUT", "/v1/admin/profiles", admin, []byte(profile)), http.StatusOK, "")
	}
	start := time.Now().Add(6 * time.Hour).Unix()
	forced := s.c.do("POST", "/v1/admin/reservations?force=true", admin,
		fmt.Appendf(nil, `{"lab":"dns-workshop","prefix":"lab","seats":40,"starts_at":%d,"ends_at":%d,"lead_minutes":30}`, start, start+3*3600))
	wantStatus(t, "seed a reservation the pool cannot cover", forced, http.StatusCreated, "")
	var created struct{ Reservation struct{ ID string } }
	if err := json.Unmarshal(forced.body, &created); err != nil {
		t.Fatal(err)
	}
	if _, err := broker.KeepReservations(context.Background(), s.pool, pool.Actor{Kind: "job", Name: "reservations"}); err != nil {
		t.Fatal(err)
	}
	if r, err := s.pool.Reservation(context.Background(), created.Reservation.ID); err != nil || r.Coverage != pool.CoverageShort || r.Shortfall == 0 {
		t.Fatalf("the forced reservation: %+v, %v", r, err)
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
		"SHORT_RESERVATION="+created.Reservation.ID,
		fmt.Sprintf("STEP_TIMEOUT_MS=%d", stepTimeout.Milliseconds()),
	)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("the browser test failed: %v", err)
	}
	pooltest.Check(t, s.pool)
}
