package pooltest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

func TestMain(m *testing.M) { Main(m) }

// childEnv tells this test binary, started again by TestDynamoDBLocalStartsLazilyAndAlwaysStops,
// which scenario TestChildScenario plays.
const childEnv = "POOLTEST_CHILD_SCENARIO"

// TestDynamoDBLocalStartsLazilyAndAlwaysStops runs this test binary again, as a test binary
// of another package would run, once per scenario: tests that never ask for a table start
// no JVM; the first that does starts one, which is gone once the binary has ended, whether
// its test failed or panicked; BROKER_TEST_DYNAMODB_ENDPOINT is used instead of starting one.
func TestDynamoDBLocalStartsLazilyAndAlwaysStops(t *testing.T) {
	external := Endpoint()
	for _, sc := range []struct {
		mode     string
		env      []string
		exitCode int
		started  bool
	}{
		{mode: "no-table", exitCode: 0, started: false},
		{mode: "fail", exitCode: 1, started: true},
		{mode: "panic", exitCode: 2, started: true},
		{mode: "external", env: []string{"BROKER_TEST_DYNAMODB_ENDPOINT=" + external}, exitCode: 0, started: false},
	} {
		t.Run(sc.mode, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(os.Args[0], "-test.run=^TestChildScenario$", "-test.count=1")
			cmd.Env = append(append(os.Environ(), childEnv+"="+sc.mode, "BROKER_TEST_DYNAMODB_ENDPOINT="), sc.env...)
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != sc.exitCode {
				t.Fatalf("exit code %d, want %d:\n%s", code, sc.exitCode, out)
			}
			m := regexp.MustCompile(`(?m)^java children: \[([0-9 ]*)\]$`).FindSubmatch(out)
			if m == nil {
				t.Fatalf("the child did not report its java children:\n%s", out)
			}
			pids := strings.Fields(string(m[1]))
			if started := len(pids) > 0; started != sc.started {
				t.Fatalf("started a JVM: %v, want %v:\n%s", started, sc.started, out)
			}
			for _, pid := range pids {
				waitGone(t, pid)
			}
		})
	}
}

// TestChildScenario is the child's side of TestDynamoDBLocalStartsLazilyAndAlwaysStops; it
// does nothing in a binary that was not started by it.
func TestChildScenario(t *testing.T) {
	mode := os.Getenv(childEnv)
	if mode == "" {
		return
	}
	if mode != "no-table" {
		table := NewTable(t)
		if _, err := Client().DescribeTable(context.Background(), &dynamodb.DescribeTableInput{TableName: &table}); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Printf("java children: %v\n", javaChildren(t))
	switch mode {
	case "fail":
		t.Fatal("failing on purpose, with DynamoDB Local running")
	case "panic":
		panic("panicking on purpose, with DynamoDB Local running")
	}
}

// javaChildren lists the java processes this process started.
func javaChildren(t *testing.T) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, path := range stats {
		comm, ppid, _, ok := procStat(path)
		if ok && comm == "java" && ppid == os.Getpid() {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(path)))
			pids = append(pids, pid)
		}
	}
	return pids
}

// procStat reads a process's command name, parent and state from /proc/<pid>/stat.
func procStat(path string) (comm string, ppid int, state string, ok bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", 0, "", false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", 0, "", false
	}
	fields := strings.Fields(s[end+1:])
	if len(fields) < 2 {
		return "", 0, "", false
	}
	ppid, _ = strconv.Atoi(fields[1])
	return s[open+1 : end], ppid, fields[0], true
}

// waitGone returns once process pid has exited (a zombie that nobody reaps has exited
// too). A SIGKILL takes effect asynchronously, so this waits for it, bounded only by the
// test's own timeout.
func waitGone(t *testing.T, pid string) {
	t.Helper()
	for {
		comm, _, state, ok := procStat("/proc/" + pid + "/stat")
		if !ok || comm != "java" || state == "Z" {
			return
		}
		if deadline, has := t.Deadline(); has && time.Until(deadline) < 5*time.Second {
			t.Fatalf("DynamoDB Local (pid %s) outlived its test binary", pid)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
