package local

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// chromiumPath is Debian's chromium, which `make test` installs (scripts/check-tools).
const chromiumPath = "/usr/bin/chromium"

// browserTestTimeout bounds the whole browser run (it takes seconds).
const browserTestTimeout = 4 * time.Minute

// The console in a real headless Chromium, driven by playwright-core from Node's test
// runner (pkg/local/testdata/console.test.mjs), against a local stack seeded with one
// sandbox of each kind the console shows: allocated, pending deletion, deletion_failed
// (the fake CSP refuses its delete), stale (the CSP stopped listing it), and a deleted
// one with its history. The spec's screenshot lands in artifacts/ (not in git).
func TestConsoleInABrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("%s is missing: make test installs it (apt-get install -y chromium)", chromiumPath)
	}
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	accounts := cspfake.Generate(12, []string{"lab", "other"})
	for i := range 2 {
		accounts = append(accounts, cspfake.Account{AccountType: "sandbox", State: "active", ID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", 4_000_000+i),
			Name: fmt.Sprintf("gone-%04d", i), CSPID: int64(4_000_000 + i)})
	}
	s := startAdminStack(t, accounts, map[string]string{"CLEANUP_MAX_ATTEMPTS": "1"})

	var ids []string
	for i := range 5 {
		ids = append(ids, allocateFor(t, s, fmt.Sprintf("student-%d", i), "lab"))
	}
	for i, id := range ids[:3] {
		release(t, s, fmt.Sprintf("student-%d", i), id)
	}
	refused, err := s.pool.Get(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.csp.SetFaults(cspfake.Faults{DeleteFail: cspfake.Failure{UUIDs: []string{refused.ExternalID[strings.LastIndex(refused.ExternalID, "/")+1:]}}}); err != nil {
		t.Fatal(err)
	}
	if run := runJob(t, s, "cleanup"); run.Counts["deleted"] != 2 || run.Counts["deletion_failed"] != 1 {
		t.Fatalf("cleanup %+v", run)
	}
	// 10 of the 12 accounts left are listed: the two "gone" ones turn stale in two syncs.
	if err := s.csp.SetFaults(cspfake.Faults{ListLimit: 10}); err != nil {
		t.Fatal(err)
	}
	runJob(t, s, "sync")
	if run := runJob(t, s, "sync"); run.Counts["marked_stale"] != 2 {
		t.Fatalf("second sync %+v", run)
	}
	release(t, s, "student-3", ids[3]) // pending deletion: no cleanup runs until the page starts one
	census := pooltest.Check(t, s.pool)
	want := map[pool.Status]int{pool.Allocated: 1, pool.PendingDeletion: 1, pool.DeletionFailed: 1, pool.Stale: 2}
	for st, n := range want {
		if census.ByStatus[st] != n {
			t.Fatalf("seeded %v, want %v", census.ByStatus, want)
		}
	}

	artifacts := filepath.Join(root, "artifacts")
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), browserTestTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "--test", "--test-reporter=spec", filepath.Join("pkg", "local", "testdata", "console.test.mjs"))
	cmd.Dir = root
	cmd.Env = append(os.Environ(),
		"CONSOLE_URL="+s.URL+"/console", "API_URL="+s.URL, "ADMIN_TOKEN="+s.AdminToken, "CHROMIUM="+chromiumPath,
		"ARTIFACTS_DIR="+artifacts, "FAILED_ID="+ids[0], "DELETED_ID="+ids[1], "STUDENT=student-4", "STUDENT_SANDBOX="+ids[4],
	)
	out, err := cmd.CombinedOutput()
	t.Logf("node --test:\n%s", out)
	if err != nil {
		t.Fatalf("the browser test failed: %v", err)
	}
	pooltest.Check(t, s.pool)
}
