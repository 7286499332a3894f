package jobs_test

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/smithy-go/middleware"

	"github.com/sandbox-broker/broker/internal/ddblimits"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/niosxaas"
	"github.com/sandbox-broker/broker/pkg/niosxaas/niosxaasfake"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

const cspToken = "job-test-token"

var cleanupActor = pool.Actor{Kind: "job", Name: "cleanup"}

// t0 is where every job test's clock starts.
var t0 = time.Unix(1_800_000_000, 0).UTC()

// jobEnv is one job test's world: a pool on a fresh table, a fake CSP over real HTTP, a
// CSP client, a runner and a broker, all on one clock.
type jobEnv struct {
	clock  *testkit.Clock
	pool   *pool.Pool
	fake   *cspfake.Server
	csp    *csp.Client
	runner *jobs.Runner
	broker *broker.Broker
	logs   *testkit.Buffer
	cfg    config.Jobs
	// deletes watches the fake's delete requests (envOptions.watchDeletes).
	deletes *cspfake.DeleteWatch
	// nios is the fake NIOSXaaS and niosClient the step's client, when envOptions.niosxaas
	// is set; niosLogs gets the client's logs.
	nios       *niosxaasfake.Server
	niosClient *niosxaas.Client
	niosLogs   *testkit.Buffer
	// limits is the proxy the pool's table sits behind, when envOptions.limits is set.
	limits *ddblimits.Proxy
}

type envOptions struct {
	jobs      func(*config.Jobs)
	csp       func(*csp.Options)
	accounts  []cspfake.Account
	poolPages int
	// watchDeletes puts a cspfake.DeleteWatch in front of the fake's deletes.
	watchDeletes bool
	// fakeOnTestClock runs the fake CSP's records (and so its DeletedListLag) on the
	// test's clock; its delete rate limiter then runs on it too.
	fakeOnTestClock bool
	// fakeClock, when set, is the fake CSP's clock instead (its records and its delete
	// rate limiter), one the test moves apart from the pool's.
	fakeClock *testkit.Clock
	// niosxaas turns the NIOSXaaS step on, against a fake NIOSXaaS, with these client
	// options changed (nil: the step is off); niosxaasMaxAttempts defaults to 3.
	niosxaas            func(*niosxaas.Options)
	niosxaasMaxAttempts int
	// limits puts the pool's table behind DynamoDB's limits (pooltest.NewBehindLimits),
	// its client calling limitsAPIOptions too.
	limits           *ddblimits.Config
	limitsAPIOptions []func(*middleware.Stack) error
}

func newJobEnv(t *testing.T, o envOptions) *jobEnv {
	t.Helper()
	e := &jobEnv{clock: testkit.NewClock(t0), logs: &testkit.Buffer{}}
	if o.limits != nil {
		e.pool, e.limits = pooltest.NewBehindLimits(t, *o.limits, pool.Options{Now: e.clock.Now, PageSize: o.poolPages}, o.limitsAPIOptions...)
	} else {
		e.pool = pooltest.NewWith(t, pool.Options{Now: e.clock.Now, PageSize: o.poolPages})
	}
	e.broker = broker.New(e.pool, poolCfg)

	fakeOpts := cspfake.Options{Token: cspToken}
	if o.fakeOnTestClock {
		fakeOpts.Now = e.clock.Now
	}
	if o.fakeClock != nil {
		fakeOpts.Now = o.fakeClock.Now
	}
	if o.watchDeletes {
		e.fake, e.deletes = cspfake.StartedWatchingDeletes(t, fakeOpts, o.accounts...)
	} else {
		e.fake = cspfake.Started(t, fakeOpts, o.accounts...)
	}
	// One attempt per call: the cleanup ledger, not the client, retries across runs,
	// which keeps these tests fast and their request counts exact.
	copts := csp.Options{
		BaseURL: e.fake.URL(), Token: cspToken, RequestTimeout: 2 * time.Second, MaxAttempts: 1,
		Breaker: breaker.Options{Now: e.clock.Now},
	}
	if o.csp != nil {
		o.csp(&copts)
	}
	var err error
	if e.csp, err = csp.New(copts); err != nil {
		t.Fatal(err)
	}
	if e.cfg, err = config.LoadJobs(testkit.Env(map[string]string{"CLEANUP_DELETES_PER_SECOND": "100"})); err != nil {
		t.Fatal(err)
	}
	if o.jobs != nil {
		o.jobs(&e.cfg)
	}
	deps := jobs.Deps{
		Pool: e.pool, CSP: e.csp, CSPRequestTimeout: copts.RequestTimeout, PoolConfig: poolCfg, Config: e.cfg,
		Logger: slog.New(slog.NewJSONHandler(e.logs, nil)),
	}
	// The usage-plans job reconciles one client against a fake API Gateway.
	_, reconciler := startAPIGateway(t)
	deps.UsagePlans = jobs.UsagePlans{
		ReadTokens: func(context.Context) (string, error) {
			return `{"tokens":[` + entry("instruqt", "track", "job-env-track-token-0123", "") + `]}`, nil
		},
		Reconciler: reconciler,
	}
	if o.niosxaas != nil {
		e.startNIOSXaaS(t, o.niosxaas)
		deps.NIOSXaaS, deps.NIOSXaaSMaxAttempts = e.niosClient, cmp.Or(o.niosxaasMaxAttempts, 3)
	}
	if e.runner, err = jobs.NewRunner(deps); err != nil {
		t.Fatal(err)
	}
	return e
}

// The NIOSXaaS credentials of the job tests; the tests look for them in every log.
const (
	niosEmail    = "nios-cleanup@example.com"
	niosPassword = "nios-Pw-7f3!q"
	niosService  = "Instrqt-SaaS"
)

func (e *jobEnv) startNIOSXaaS(t *testing.T, tweak func(*niosxaas.Options)) {
	t.Helper()
	e.nios = niosxaasfake.Started(t, niosxaasfake.Options{Email: niosEmail, Password: niosPassword})
	e.niosLogs = &testkit.Buffer{}
	opts := niosxaas.Options{
		BaseURL:     e.nios.URL(),
		Credentials: niosxaas.Static(niosxaas.Credentials{Email: niosEmail, Password: niosPassword}),
		ServiceName: niosService, Timeout: 2 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(e.niosLogs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	tweak(&opts)
	var err error
	if e.niosClient, err = niosxaas.New(opts); err != nil {
		t.Fatal(err)
	}
}

// run runs a job and fails the test on an error.
func (e *jobEnv) run(t *testing.T, job string) jobs.Summary {
	t.Helper()
	sum, err := e.runner.Run(ctx, job)
	if err != nil {
		t.Fatalf("%s: %v", job, err)
	}
	return sum
}

func (e *jobEnv) get(t *testing.T, id string) pool.Sandbox {
	t.Helper()
	s, err := e.pool.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sandboxID is the pool ID sync gives a generated account.
func sandboxID(a cspfake.Account) string { return strconv.FormatInt(a.CSPID, 10) }

func asPoolAccount(a cspfake.Account) pool.Account {
	created, _ := time.Parse(time.RFC3339Nano, a.CreatedAt)
	return pool.Account{ID: sandboxID(a), Name: a.Name, ExternalID: a.ID, SFDCAccountID: a.SFDCAccountID, CreatedAt: created.Unix()}
}

// released puts the accounts into the pool as pending_deletion: created, allocated to a
// student each and released by that student, at the clock's current time.
func (e *jobEnv) released(t *testing.T, accounts []cspfake.Account) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(accounts))
	sem := make(chan struct{}, 8)
	for i, a := range accounts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs <- e.releaseOne(a, fmt.Sprintf("student-%d", i))
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (e *jobEnv) releaseOne(a cspfake.Account, student string) error {
	s, err := e.pool.Create(ctx, asPoolAccount(a), syncJob)
	if err != nil {
		return err
	}
	now := e.clock.Now()
	claim := pool.Claim{Student: student, IdempotencyKey: student, AllocatedAt: now.Unix(), ExpiresAt: now.Add(poolCfg.LabDuration).Unix()}
	if _, err := e.pool.Claim(ctx, s, claim, pool.Actor{Kind: "student", Name: student}); err != nil {
		return err
	}
	if s, err = e.pool.Get(ctx, s.ID); err != nil {
		return err
	}
	_, err = e.pool.Release(ctx, s, pool.Holder{Student: student}, pool.Actor{Kind: "student", Name: student})
	return err
}

func (e *jobEnv) count(t *testing.T, status pool.Status) int {
	t.Helper()
	n, err := e.pool.Count(ctx, status)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func (e *jobEnv) setFaults(t *testing.T, f cspfake.Faults) {
	t.Helper()
	if err := e.fake.SetFaults(f); err != nil {
		t.Fatal(err)
	}
}

// wantCounts checks the named counts of a summary; unnamed ones may be anything.
func wantCounts(t *testing.T, sum jobs.Summary, want map[string]int) {
	t.Helper()
	for name, n := range want {
		if sum.Counts[name] != n {
			t.Errorf("%s run: count %s = %d, want %d (counts %v, reason %q)", sum.Job, name, sum.Counts[name], n, sum.Counts, sum.Reason)
		}
	}
}
