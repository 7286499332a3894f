package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/testkit"
)

// The command as make run starts it: DynamoDB Local with DATA_DIR, the fake CSP, the
// jobs and the API; ready when /healthz answers; a signal stops every child process; a
// second run finds the table DATA_DIR kept.
func TestRunStartsEverythingAndStopsOnSignal(t *testing.T) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	// With the race detector: the packages are those the test run has just compiled, so
	// only the link is new, and the stack runs under the detector too.
	bin := filepath.Join(t.TempDir(), "broker-local")
	build := exec.Command("go", "build", "-race", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	dataDir := filepath.Join(t.TempDir(), "state")

	for i, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		cmd := exec.Command(bin)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "PORT=0", "DATA_DIR="+dataDir, "LOCAL_WARM_ROUNDS=1", "SEED_SANDBOXES=4", "JOB_INTERVAL_SCALE=0.01",
			"BROKER_TRACK_TOKEN=", "BROKER_ADMIN_TOKEN=", "DYNAMODB_ENDPOINT=", "TABLE_NAME=", "CSP_BASE_URL=", "CSP_API_TOKEN=")
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		stderr := &testkit.Buffer{}
		cmd.Stderr = stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		banner, lines := readUntilReady(t, stdout, cmd, stderr)
		api := match(t, banner, `Ready at (http://127\.0\.0\.1:\d+)`)
		ddb := match(t, banner, `DynamoDB Local at http://(127\.0\.0\.1:\d+)`)
		if want := []string{"(created)", "(existing)"}[i]; !strings.Contains(banner, "table sandbox-broker-local "+want) {
			t.Fatalf("run %d: want the table %s:\n%s", i+1, want, banner)
		}
		if !strings.Contains(banner, "data kept in "+dataDir) || !regexp.MustCompile(`track: [A-Za-z0-9_-]{43} \(generated`).MatchString(banner) {
			t.Fatalf("run %d banner:\n%s", i+1, banner)
		}
		resp, err := http.Get(api + "/healthz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("healthz: %v %v", resp, err)
		}
		resp.Body.Close()

		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() {
			for range lines { // drain the rest of the output
			}
			done <- cmd.Wait()
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run %d: exit after %v: %v", i+1, sig, err)
			}
		case <-testkit.Patience(t).Done():
			_ = cmd.Process.Kill()
			t.Fatalf("run %d: still running after %v, near the test binary's timeout", i+1, sig)
		}
		if conn, err := net.DialTimeout("tcp", ddb, time.Second); err == nil {
			conn.Close()
			t.Fatalf("run %d: DynamoDB Local still listens on %s after the stack stopped", i+1, ddb)
		}
		if pids := processesMentioning(dataDir); len(pids) > 0 {
			t.Fatalf("run %d: processes left behind: %v", i+1, pids)
		}
	}
}

// readUntilReady returns stdout up to the "Ready at" line, and a channel of the lines
// after it.
func readUntilReady(t *testing.T, r io.Reader, cmd *exec.Cmd, stderr *testkit.Buffer) (string, <-chan string) {
	t.Helper()
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var b strings.Builder
	patience := testkit.Patience(t)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the stack exited before it was ready:\n%s\nstderr:\n%s", b.String(), stderr.String())
			}
			b.WriteString(l + "\n")
			if strings.HasPrefix(l, "Ready at ") {
				return b.String(), lines
			}
		case <-patience.Done():
			_ = cmd.Process.Kill()
			t.Fatalf("not ready near the test binary's timeout:\n%s\nstderr:\n%s", b.String(), stderr.String())
		}
	}
}

func match(t *testing.T, s, pattern string) string {
	t.Helper()
	m := regexp.MustCompile(pattern).FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("no %q in:\n%s", pattern, s)
	}
	return m[1]
}

// processesMentioning lists the processes whose command line contains s.
func processesMentioning(s string) []string {
	var out []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), s) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return out
}
