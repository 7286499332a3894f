package jobs_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"

	"github.com/sandbox-broker/broker/internal/apigwfake"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
	"github.com/sandbox-broker/broker/pkg/usageplans"
)

// usagePlansEnv is a runner whose usage-plans job reads a secret the test sets and
// reconciles the fake API Gateway over loopback HTTP.
type usagePlansEnv struct {
	fake   *apigwfake.Server
	pool   *pool.Pool
	runner *jobs.Runner
	logs   *testkit.Buffer

	mu     sync.Mutex
	secret string
}

// startAPIGateway starts a fake API Gateway and returns it with a reconciler on it.
func startAPIGateway(t *testing.T) (*apigwfake.Server, *usageplans.Reconciler) {
	t.Helper()
	fake := apigwfake.New(apigwfake.Options{RestAPIID: "a1b2c3d4e5", Stage: "api"})
	if err := fake.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = fake.Close() })
	client := apigateway.New(apigateway.Options{
		BaseEndpoint: aws.String(fake.URL()), Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	return fake, usageplans.New(client, "a1b2c3d4e5", "api")
}

func newUsagePlansEnv(t *testing.T) *usagePlansEnv {
	t.Helper()
	e := &usagePlansEnv{logs: &testkit.Buffer{}}
	var reconciler *usageplans.Reconciler
	e.fake, reconciler = startAPIGateway(t)
	cfg, err := config.LoadJobs(testkit.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	e.pool = pooltest.New(t)
	e.runner, err = jobs.NewRunner(jobs.Deps{
		Pool: e.pool, PoolConfig: poolCfg, Config: cfg, Logger: slog.New(slog.NewJSONHandler(e.logs, nil)),
		UsagePlans: jobs.UsagePlans{
			ReadTokens: func(context.Context) (string, error) {
				e.mu.Lock()
				defer e.mu.Unlock()
				return e.secret, nil
			},
			Reconciler: reconciler,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *usagePlansEnv) setSecret(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.secret = s
}

// entry is one token entry of the secret, with its plain token's digest.
func entry(name, scope, plain, limits string) string {
	d := sha256.Sum256([]byte(plain))
	return `{"name":"` + name + `","scope":"` + scope + `","sha256":"` + hex.EncodeToString(d[:]) + `"` + limits + `}`
}

// TestUsagePlansJobRunsTheReconciler: the job counts the clients by outcome in its
// summary, reports the secret's skipped entries, fails with usage_plans_failed when API
// Gateway refuses, and fails without touching API Gateway (and without that alarm) when the
// secret is no token document.
func TestUsagePlansJobRunsTheReconciler(t *testing.T) {
	e := newUsagePlansEnv(t)
	e.setSecret(`{"tokens":[` + entry("instruqt", "track", "instruqt-token-0123456789", `,"rate":10,"burst":20`) + `,` +
		entry("ops", "admin", "ops-token-0123456789", "") + `,` + entry("broken", "track", "broken-token-0123456789", `,"rate":10`) + `]}`)
	sum, err := e.runner.Run(ctx, "usage-plans")
	if err != nil {
		t.Fatal(err)
	}
	wantCounts(t, sum, map[string]int{usageplans.Created: 2})
	if sum.Outcome != jobs.OutcomeOK || sum.Alarm != "" || len(sum.Errors) != 1 || !strings.Contains(sum.Errors[0], `"broken"`) {
		t.Fatalf("first run %+v", sum)
	}
	if sum, err = e.runner.Run(ctx, "usage-plans"); err != nil || sum.Counts[usageplans.Unchanged] != 2 || len(sum.Counts) != 1 {
		t.Fatalf("second run %+v, %v", sum, err)
	}

	// API Gateway refuses a new client's plan: the run fails with the alarm, its counts
	// say what it did before.
	e.setSecret(`{"tokens":[` + entry("instruqt", "track", "instruqt-token-0123456789", `,"rate":5,"burst":5`) + `,` +
		entry("partner", "track", "partner-token-0123456789", "") + `]}`)
	e.fake.SetFailure(&apigwfake.Failure{Method: "POST", PathPrefix: "/usageplans", Status: 400, Type: "BadRequestException"})
	sum, err = e.runner.Run(ctx, "usage-plans")
	if err == nil || sum.Outcome != jobs.OutcomeFailed || sum.Alarm != jobs.AlarmUsagePlansFailed ||
		!strings.Contains(sum.Reason, "BadRequestException") || sum.Counts[usageplans.Updated] != 1 {
		t.Fatalf("refused run %+v, %v", sum, err)
	}
	e.fake.SetFailure(nil)
	if sum, err = e.runner.Run(ctx, "usage-plans"); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, sum, map[string]int{usageplans.Created: 1, usageplans.Unchanged: 1, usageplans.Removed: 1})

	// A secret that is no token document changes nothing: every client keeps its plan.
	n := len(e.fake.Requests())
	e.setSecret("a random value, as the stack creates the secret")
	sum, err = e.runner.Run(ctx, "usage-plans")
	if err == nil || sum.Outcome != jobs.OutcomeFailed || sum.Alarm != "" || len(e.fake.Requests()) != n {
		t.Fatalf("run on a broken secret %+v, %v, %d API Gateway requests", sum, err, len(e.fake.Requests())-n)
	}
	if len(e.fake.Plans()) != 2 {
		t.Fatalf("%d plans after a broken secret, want 2", len(e.fake.Plans()))
	}
	for _, secretPart := range []string{"instruqt-token", "partner-token"} {
		if strings.Contains(e.logs.String(), secretPart) {
			t.Fatalf("the job's log carries %s", secretPart)
		}
	}
	pooltest.Check(t, e.pool)
}

// TestUsagePlansJobNeedsItsDependencies: a runner built without them fails the run, not
// the process.
func TestUsagePlansJobNeedsItsDependencies(t *testing.T) {
	cfg, err := config.LoadJobs(testkit.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	r, err := jobs.NewRunner(jobs.Deps{Pool: pooltest.New(t), PoolConfig: poolCfg, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := r.Run(ctx, "usage-plans"); err == nil || sum.Outcome != jobs.OutcomeFailed {
		t.Fatalf("%+v, %v", sum, err)
	}
}
