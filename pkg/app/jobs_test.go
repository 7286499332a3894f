package app_test

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/app/job"
	"github.com/sandbox-broker/broker/pkg/app/usagejob"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

var ctx = context.Background()

// repoRoot is where functions/ and events/ are, seen from this package.
const repoRoot = "../.."

func readEvent(t *testing.T, fn string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "events", fn+".json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJobHandlersServeTheirScheduledEvent builds each job's handler the way its main does,
// from an environment, and invokes it through aws-lambda-go with the bytes of its events/
// sample, against DynamoDB Local and the fake CSP. Each job finds one piece of due work.
func TestJobHandlersServeTheirScheduledEvent(t *testing.T) {
	const token = "jobfn-test-token"
	accounts := cspfake.Generate(4, nil)
	fake := cspfake.Started(t, cspfake.Options{Token: token}, accounts...)
	table := pooltest.NewTable(t)
	poolEnv := map[string]string{"TABLE_NAME": table, "DYNAMODB_ENDPOINT": pooltest.Endpoint(), "AWS_REGION": "us-east-1"}
	cspEnv := map[string]string{"CSP_BASE_URL": fake.URL(), "CSP_API_TOKEN": token}
	poolCfg, err := config.LoadPool(testkit.Env(poolEnv))
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}

	invoke := func(t *testing.T, j jobs.Job, payload []byte) jobs.Summary {
		t.Helper()
		env := map[string]string{}
		for k, v := range poolEnv {
			env[k] = v
		}
		// Only the jobs that call the CSP get its settings: the others must not need them.
		if j.UsesCSP {
			for k, v := range cspEnv {
				env[k] = v
			}
		}
		h, err := job.Function(ctx, testkit.Env(env), logs, j.Name)
		if err != nil {
			t.Fatalf("%s: %v", j.Name, err)
		}
		invokeCtx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		out, err := lambda.NewHandler(h).Invoke(invokeCtx, payload)
		if err != nil {
			t.Fatalf("%s: invoke: %v", j.Name, err)
		}
		var sum jobs.Summary
		if err := json.Unmarshal(out, &sum); err != nil {
			t.Fatalf("%s: response %s: %v", j.Name, out, err)
		}
		if sum.Job != j.Name || sum.Outcome != jobs.OutcomeOK {
			t.Fatalf("%s: summary %+v", j.Name, sum)
		}
		return sum
	}

	byName := map[string]jobs.Job{}
	for _, j := range jobs.Table {
		byName[j.Name] = j
	}
	sum := invoke(t, byName["sync"], readEvent(t, byName["sync"].Name))
	if sum.Counts["created"] != len(accounts) {
		t.Fatalf("sync created %d of %d listed sandboxes", sum.Counts["created"], len(accounts))
	}

	// Due work for the other three, set up in the past through the same table.
	id := func(i int) string { return strconv.FormatInt(accounts[i].CSPID, 10) }
	past := func(d time.Duration) func() time.Time { return func() time.Time { return time.Now().Add(-d) } }
	p := pool.New(pooltest.Client(), table, pool.Options{})
	b := broker.New(p, poolCfg)
	if _, err := b.Allocate(ctx, broker.AllocateRequest{Student: "done", NamePrefix: accounts[0].Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Release(ctx, id(0), pool.Holder{Student: "done"}, "req-1"); err != nil {
		t.Fatal(err)
	}
	lapsed := broker.New(pooltest.Clocked(p, past(poolCfg.LabDuration+poolCfg.Grace+time.Minute)), poolCfg)
	if _, err := lapsed.Allocate(ctx, broker.AllocateRequest{Student: "gone", NamePrefix: accounts[1].Name}); err != nil {
		t.Fatal(err)
	}
	stale := pooltest.Clocked(p, past(25*time.Hour))
	s, err := stale.Get(ctx, id(2))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stale.MarkStale(ctx, s, pool.Actor{Kind: "job", Name: "sync"}); err != nil {
		t.Fatal(err)
	}

	if sum := invoke(t, byName["cleanup"], readEvent(t, byName["cleanup"].Name)); sum.Counts["deleted"] != 1 || !fake.Deleted(accounts[0].UUID()) {
		t.Fatalf("cleanup: %+v", sum)
	}
	if sum := invoke(t, byName["expiry"], readEvent(t, byName["expiry"].Name)); sum.Counts["expired"] != 1 {
		t.Fatalf("expiry: %+v", sum)
	}
	if sum := invoke(t, byName["stale-cleanup"], readEvent(t, byName["stale-cleanup"].Name)); sum.Counts["removed"] != 1 {
		t.Fatalf("stale-cleanup: %+v", sum)
	}
	if got, err := p.Get(ctx, id(1)); err != nil || got.Status != pool.PendingDeletion {
		t.Fatalf("lapsed allocation after expiry: %+v, %v", got, err)
	}

	// pool-metrics counts the pool as it now is: sandbox 0 deleted, 1 expired (pending
	// deletion), 2 removed as stale, the rest available.
	if sum := invoke(t, byName["pool-metrics"], readEvent(t, byName["pool-metrics"].Name)); sum.Counts["available"] != len(accounts)-3 ||
		sum.Counts["pending_deletion"] != 1 {
		t.Fatalf("pool-metrics: %+v", sum)
	}

	// The admin API's asynchronous invoke names the run.
	if sum := invoke(t, byName["expiry"], []byte(`{"run_id":"admin-7"}`)); sum.RunID != "admin-7" {
		t.Fatalf("run ID from the trigger: %+v", sum)
	}
	runs, err := p.Runs(ctx, "expiry", 1)
	if err != nil || len(runs) != 1 || runs[0].RunID != "admin-7" {
		t.Fatalf("last expiry run %+v, %v", runs, err)
	}
	// One log line and one EMF document per run (and the gauges and times to delete), and
	// nothing else while the CSP is healthy.
	var runLines, metricLines int
	for _, line := range logs.JSONLines(t) {
		switch {
		case line["_aws"] != nil && line["Job"] != nil && line["JobRunDuration"] != nil:
			metricLines++
		case line["_aws"] != nil && line["PoolTotal"] != nil:
			// the pool-metrics gauges
		case line["_aws"] != nil && line["TimeToDelete"] != nil:
			// cleanup's time to delete, when the release was a second or more before it
		case line["msg"] == "job run" && line["run_id"] != "" && line["counts"] != nil && line["duration_ms"] != nil:
			runLines++
		default:
			t.Fatalf("log line %v", line)
		}
	}
	if runLines != 6 || metricLines != 6 {
		t.Fatalf("%d run lines and %d run metrics for 6 invocations", runLines, metricLines)
	}
	pooltest.Check(t, p)
}

func TestJobFunctionReportsConfigurationProblems(t *testing.T) {
	base := map[string]string{"TABLE_NAME": "t", "DYNAMODB_ENDPOINT": pooltest.Endpoint()}
	tests := []struct {
		job  string
		env  map[string]string
		want []string
	}{
		{"backup", base, []string{`no job named "backup"`}},
		{"sync", base, []string{"CSP_BASE_URL: is required", "CSP_API_TOKEN: is required"}},
		{"cleanup", map[string]string{"TABLE_NAME": "t", "CSP_BASE_URL": "http://127.0.0.1:1/v2", "CSP_API_TOKEN": "x", "CLEANUP_MAX_ATTEMPTS": "0"},
			[]string{"CLEANUP_MAX_ATTEMPTS: 0 is outside 1..100"}},
		{"expiry", map[string]string{"JOB_INTERVAL_SCALE": "0"}, []string{"TABLE_NAME: is required", "JOB_INTERVAL_SCALE: must be greater than 0"}},
		{"sync", map[string]string{"STALE_GRACE_HOURS": "0"}, []string{"TABLE_NAME: is required", "STALE_GRACE_HOURS: 0 is outside", "CSP_BASE_URL: is required"}},
		{"stale-cleanup", map[string]string{"TABLE_NAME": "t", "JOB_INTERVAL_SCALE": "0"}, []string{"JOB_INTERVAL_SCALE: must be greater than 0"}},
		// The usage-plans job needs the tokens secret and the REST API stage; no other job does.
		{"usage-plans", base, []string{"TOKENS_SECRET_ARN: is required", "REST_API_ID: is required", "REST_API_STAGE: is required"}},
		// The NIOSXaaS settings are cleanup's, reported with the others.
		{"cleanup", map[string]string{"CSP_BASE_URL": "http://127.0.0.1:1/v2", "CSP_API_TOKEN": "x", "NIOSXAAS_ENABLED": "true", "NIOSXAAS_MAX_ATTEMPTS": "0"},
			[]string{"TABLE_NAME: is required", "NIOSXAAS_EMAIL", "NIOSXAAS_MAX_ATTEMPTS: 0 is outside"}},
	}
	for _, tt := range tests {
		_, err := job.Function(ctx, testkit.Env(tt.env), io.Discard, tt.job, job.WithUsagePlans(usagejob.Build))
		if err == nil {
			t.Fatalf("%s with %v: accepted", tt.job, tt.env)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not name %q", tt.job, err, w)
			}
		}
	}
	if _, err := job.Function(ctx, testkit.Env(base), io.Discard, "usage-plans"); err == nil || !strings.Contains(err.Error(), "job.WithUsagePlans") {
		t.Errorf("usage-plans without its builder: %v", err)
	}
	h, err := job.Function(ctx, testkit.Env(base), io.Discard, "expiry")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h(ctx, json.RawMessage(`["not", "an", "object"]`)); err == nil {
		t.Fatal("a non-object event was accepted")
	}
}
