package jobs_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/sandbox-broker/broker/internal/ddblimits"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// The scenarios below run the broker against DynamoDB Local behind the limits AWS applies
// and DynamoDB Local does not (internal/ddblimits): per-partition-key and table throughput,
// transaction conflicts. Each allocation runs in a broker of its own, as each Lambda
// instance has its own, through a client that retries as the AWS SDK's DynamoDB client does
// in AWS. The limits are scaled (ddblimits.Config.Scale) so that DynamoDB Local, which serves
// a small share of AWS's throughput, meets them as a rush meets them in AWS; how many
// requests are throttled then depends on the machine's speed, so the scenarios print the
// counts and assert only what must hold whatever they are:
//
//   - every student's answer is one AWS lets the broker give (answers.judge): a sandbox;
//     409 NO_SANDBOXES_AVAILABLE only when no free sandbox matched, CLIENT_LIMIT_REACHED only
//     when the client holds its cap; a 5xx (503 SERVICE_UNAVAILABLE) only once retrying was
//     spent — the broker's budget of claims (ErrBusy) or of time (its 8 s deadline on a
//     DynamoDB call, which a loaded machine's queue in front of DynamoDB Local's one lane
//     can reach), or a DynamoDB call that failed after all the SDK's attempts (four, up to
//     7 s of backoff for a throttle; as many for a transaction cancelled for throughput,
//     which the pool retries as the SDK retries a throttle). A 5xx after a refusal nobody
//     retried is one a retry could have saved, and fails the scenario;
//   - the invariants hold afterwards (pooltest.Check), and the counts of the pool match the
//     answers.
//
// In make test they run at a tenth of their full size (100 students instead of 1 000,
// 1 000 accounts instead of 10 000): go test ./pkg/jobs -run Limits -limits.full runs
// them whole.

// limitsScale is the share of AWS's throughput the scenarios give a partition key and a
// table: DynamoDB Local on two shared cores, behind the proxy, serves tens to a few hundred
// transactions a second, where a rush in AWS asks thousands. At a twentieth, a partition
// key takes 50 write units a second (the capped client's counter key 25 claims), a table
// 200.
const limitsScale = 0.05

var limitsFull = flag.Bool("limits.full", false, "run the DynamoDB limits scenarios at their full size")

// sized is n at the scenarios' size: a tenth of it in make test.
func sized(n int) int {
	if *limitsFull {
		return n
	}
	return n / 10
}

// scenarioLimits is everything AWS applies to a new on-demand table, scaled.
func scenarioLimits() *ddblimits.Config {
	cfg := ddblimits.AsAWS()
	cfg.Scale = limitsScale
	return &cfg
}

type studentKey struct{}

// callLog records, per student (from the context of its allocation), the error of each of
// its DynamoDB calls that failed, after the SDK's retries.
type callLog struct {
	mu     sync.Mutex
	errors map[string][]error
}

func newCallLog() *callLog { return &callLog{errors: map[string][]error{}} }

func (l *callLog) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("student-calls", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		out, md, err := next.HandleInitialize(ctx, in)
		if student, ok := ctx.Value(studentKey{}).(string); ok && err != nil {
			l.mu.Lock()
			l.errors[student] = append(l.errors[student], err)
			l.mu.Unlock()
		}
		return out, md, err
	}), middleware.After)
}

func (l *callLog) last(student string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := l.errors[student]
	if len(errs) == 0 {
		return nil
	}
	return errs[len(errs)-1]
}

// retriesSpent reports whether the student's last DynamoDB call failed after every attempt
// its client makes: the SDK's retryer gave up, or the pool retried a transaction DynamoDB
// kept cancelling for throughput as many times (the SDK does not retry those).
func (l *callLog) retriesSpent(student string) bool {
	var spent *retry.MaxAttemptsError
	if errors.As(l.last(student), &spent) {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	errs := l.errors[student]
	attempts := ddblimits.AWSRetryer().MaxAttempts()
	if len(errs) < attempts {
		return false
	}
	for _, err := range errs[len(errs)-attempts:] {
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) || !strings.Contains(tce.ErrorMessage(), ddblimits.ReasonThrottlingError) {
			return false
		}
	}
	return true
}

// limitsEnv is a job environment behind the scenario's limits, with a pool on the same
// table that DynamoDB Local serves directly, for seeding.
type limitsEnv struct {
	*jobEnv
	direct *pool.Pool
	calls  *callLog
}

func newLimitsEnv(t *testing.T, o envOptions) *limitsEnv {
	t.Helper()
	calls := newCallLog()
	o.limits = scenarioLimits()
	// The fake CSP is not what these scenarios are about: on a loaded machine its listing of
	// thousands of accounts may take longer than the jobs' usual 2 s per request.
	o.csp = func(o *csp.Options) { o.RequestTimeout = time.Minute }
	o.limitsAPIOptions = append(o.limitsAPIOptions, calls.middleware)
	e := newJobEnv(t, o)
	return &limitsEnv{jobEnv: e, direct: pool.New(pooltest.Client(), e.pool.Table(), pool.Options{Now: e.clock.Now}), calls: calls}
}

// allocate runs every request at once, each in a broker of its own (a Lambda instance
// per allocation), and returns the results in request order.
func (e *limitsEnv) allocate(reqs []broker.AllocateRequest) []brokertest.Result {
	return brokertest.AllocateEach(reqs, func(r broker.AllocateRequest) (broker.Allocation, error) {
		return broker.New(e.pool, poolCfg).Allocate(context.WithValue(ctx, studentKey{}, r.Student), r)
	})
}

// answers counts what the students were told, by the HTTP answer pkg/api gives each error.
type answers struct {
	created, replays int
	// 409s
	noSandbox, clientLimit, studentLimit int
	// 503s once retrying was spent: the broker's claims or its deadline, or the SDK's
	// attempts.
	busy, deadline, exhausted int
	// saveable are 5xx answers after a refusal nobody retried: student: error.
	saveable []string
}

func (a answers) String() string {
	return fmt.Sprintf("%d created, %d replays; 409: %d no sandbox, %d client limit, %d student limit; 503: %d broker busy, %d past the broker's deadline, %d after the SDK's attempts, %d a retry could have saved",
		a.created, a.replays, a.noSandbox, a.clientLimit, a.studentLimit, a.busy, a.deadline, a.exhausted, len(a.saveable))
}

// judge sorts each result into the answer the student got (see the top of the file).
func (e *limitsEnv) judge(results []brokertest.Result) answers {
	var a answers
	for _, r := range results {
		switch {
		case r.Err == nil && r.Alloc.Created:
			a.created++
		case r.Err == nil:
			a.replays++
		case errors.Is(r.Err, broker.ErrNoSandbox):
			a.noSandbox++
		case errors.Is(r.Err, broker.ErrClientLimit):
			a.clientLimit++
		case errors.Is(r.Err, broker.ErrStudentLimit):
			a.studentLimit++
		case errors.Is(r.Err, broker.ErrBusy):
			a.busy++
		case errors.Is(r.Err, context.DeadlineExceeded):
			a.deadline++
		case e.calls.retriesSpent(r.Req.Student):
			a.exhausted++
		default:
			a.saveable = append(a.saveable, fmt.Sprintf("%s: %v (its last DynamoDB error: %v)", r.Req.Student, r.Err, e.calls.last(r.Req.Student)))
		}
	}
	sort.Strings(a.saveable)
	return a
}

// report logs the scenario's counts: the proxy's refusals and the SDK's retries, and the
// students' answers; it fails the test on a 5xx a retry could have saved.
func (e *limitsEnv) report(t *testing.T, a answers) {
	t.Helper()
	t.Logf("students: %s", a)
	t.Logf("DynamoDB behind its limits: %s", e.limits.Counts())
	if len(a.saveable) > 0 {
		t.Errorf("%d students got a 5xx that a retry could have saved:\n%s", len(a.saveable), strings.Join(a.saveable[:min(len(a.saveable), 10)], "\n"))
	}
}

// underCap makes every request one of client, capped at clientCap.
func underCap(reqs []broker.AllocateRequest, client string, clientCap int) []broker.AllocateRequest {
	for i := range reqs {
		reqs[i].Client, reqs[i].ClientCap = client, clientCap
	}
	return reqs
}

// A thousand students of one capped client press Start at once. Every claim takes a
// counter shard of the client (each shard on a partition key of its own): the rush
// spreads its counter writes over the client's shards.
func TestLimitsRushOnACappedClient(t *testing.T) {
	students, clientCap := sized(1000), sized(800)
	e := newLimitsEnv(t, envOptions{})
	brokertest.Fill(t, e.direct, "lab", 0, students)
	results := e.allocate(underCap(studentsOf(students), "capped", clientCap))
	a := e.judge(results)
	e.report(t, a)
	brokertest.AssertDistinct(t, results)
	if a.noSandbox != 0 || a.studentLimit != 0 || a.replays != 0 {
		t.Errorf("answers no rush of distinct students on a pool larger than the cap gives: %s", a)
	}
	census := e.checkAllocated(t, a)
	if held := census.ByStatus[pool.Allocated]; a.clientLimit > 0 && held != clientCap {
		t.Errorf("%d CLIENT_LIMIT_REACHED while the client holds %d of its cap of %d", a.clientLimit, held, clientCap)
	}
}

// checkAllocated runs the invariant checker and holds the pool's allocations to the
// answers: each created one is allocated, and so may be one whose answer the broker's
// deadline cut off (its claim committed; a retry of the student replays it).
func (e *limitsEnv) checkAllocated(t *testing.T, a answers) pool.Census {
	t.Helper()
	census := pooltest.Check(t, e.direct)
	if n := census.ByStatus[pool.Allocated]; n < a.created || n > a.created+a.deadline || census.Owners != n {
		t.Errorf("census %+v, %d allocations answered and %d cut off by the deadline", census, a.created, a.deadline)
	}
	return census
}

func studentsOf(n int) []broker.AllocateRequest { return brokertest.Students(n, "") }

// A claim transaction that DynamoDB throttles is cancelled (ThrottlingError), which the
// SDK does not retry; the throttle passes within seconds. Here the table's write
// throughput is one unit a second on a clock that stands still: the first student's claim
// spends it (and more), the second student's claim is throttled, and the test then lets a
// minute pass. A student must not get a 503 for a throttle that one more claim, a moment
// later, gets past.
func TestLimitsThrottledClaimIsRetried(t *testing.T) {
	clk := testkit.NewClock(t0)
	calls := newCallLog()
	p, proxy := pooltest.NewBehindLimits(t, ddblimits.Config{TableWriteUnits: 1, Now: clk.Now}, pool.Options{}, calls.middleware)
	e := &limitsEnv{jobEnv: &jobEnv{pool: p, limits: proxy}, direct: pool.New(pooltest.Client(), p.Table(), pool.Options{}), calls: calls}
	brokertest.Fill(t, e.direct, "lab", 0, 2)
	first := e.allocate(studentsOf(1))
	if first[0].Err != nil {
		t.Fatal(first[0].Err)
	}
	go func() {
		for proxy.Counts().Total(ddblimits.Throttle) == 0 {
			time.Sleep(time.Millisecond)
		}
		clk.Advance(time.Minute)
	}()
	second := e.allocate([]broker.AllocateRequest{{Student: "student-late", Client: "instruqt"}})
	a := e.judge(append(first, second...))
	e.report(t, a)
	if a.created != 2 {
		t.Errorf("answers %s, want both students served", a)
	}
	e.checkAllocated(t, a)
}

// seed puts the accounts into the pool as sync would have, through DynamoDB Local
// directly; then applies to each sandbox what state asks for (nil: available).
func (e *limitsEnv) seed(t *testing.T, accounts []cspfake.Account, state func(pool.Sandbox) error) {
	t.Helper()
	brokertest.All(t, len(accounts), func(i int) error {
		s, err := e.direct.Create(ctx, asPoolAccount(accounts[i]), syncJob)
		if err == nil && state != nil {
			err = state(s)
		}
		return err
	})
}

// allocated is a seed state: the sandbox allocated to a student of its own, now.
func (e *limitsEnv) allocated(s pool.Sandbox) error {
	student := "earlier-" + s.ID
	now := e.clock.Now()
	_, err := e.direct.Claim(ctx, s, pool.Claim{Student: student, IdempotencyKey: student, Client: "instruqt",
		AllocatedAt: now.Unix(), ExpiresAt: now.Add(poolCfg.LabDuration).Unix()}, pool.Actor{Kind: "student", Name: student})
	return err
}

// released is a seed state: allocated, then released by its student (pending deletion).
func (e *limitsEnv) released(s pool.Sandbox) error {
	if err := e.allocated(s); err != nil {
		return err
	}
	s, err := e.direct.Get(ctx, s.ID)
	if err != nil {
		return err
	}
	student := "earlier-" + s.ID
	_, err = e.direct.Release(ctx, s, pool.Holder{Client: "instruqt", Student: student}, pool.Actor{Kind: "student", Name: student})
	return err
}

// The sync job lists the CSP's accounts — nine in ten of them in the pool already, the
// rest new —
// while the students of a rush allocate: the sync reads every record through StatusIndex
// and writes the new ones on the same index partitions the claims write. The sync may
// fail a run (a write refused after every retry fails it, and the next run goes on);
// it must never undo an allocation, and the next run must leave every account in the pool.
func TestLimitsSyncWhileStudentsAllocate(t *testing.T) {
	accounts := cspfake.Generate(sized(10000), []string{"lab"})
	known, students := len(accounts)*9/10, sized(1000)
	e := newLimitsEnv(t, envOptions{accounts: accounts})
	e.seed(t, accounts[:known], nil)

	var sum jobs.Summary
	var syncErr error
	var wg sync.WaitGroup
	wg.Go(func() { sum, syncErr = e.runner.Run(ctx, "sync") })
	results := e.allocate(studentsOf(students))
	wg.Wait()
	t.Logf("sync during the rush: %v (%v)", sum.Counts, syncErr)

	a := e.judge(results)
	e.report(t, a)
	brokertest.AssertDistinct(t, results)
	if a.noSandbox != 0 || a.clientLimit != 0 || a.studentLimit != 0 {
		t.Errorf("answers a pool larger than the rush gives: %s", a)
	}
	again := e.runUntilDone(t, "sync", func(jobs.Summary) bool { return true })
	census := e.checkAllocated(t, a)
	if census.UUIDs != len(accounts) {
		t.Errorf("%d accounts in the pool after the sync's next run (%v), want %d", census.UUIDs, again.Counts, len(accounts))
	}
}

// runUntilDone runs the job after a rush until a run succeeds and done says it found
// nothing more to do. A run that failed under throttling may not have released its lease
// in the time it keeps for that; the job then waits for the lease to expire, and so does
// the test's clock.
func (e *limitsEnv) runUntilDone(t *testing.T, job string, done func(jobs.Summary) bool) jobs.Summary {
	t.Helper()
	for run := 0; run < 6; run++ {
		sum, err := e.runner.Run(ctx, job)
		switch {
		case sum.Outcome == jobs.OutcomeSkipped:
			t.Logf("%s after the rush: %s; the clock moves on past the lease", job, sum.Reason)
			def, _ := jobs.Named(job)
			e.clock.Advance(def.Timeout() + jobs.LeaseMargin)
		case err != nil:
			t.Logf("%s after the rush: %v", job, err)
		case done(sum):
			return sum
		}
	}
	t.Fatalf("%s still at work after 6 runs after the rush", job)
	return jobs.Summary{}
}

// The expiry job ends allocations past their expiry and grace and the cleanup job deletes
// released sandboxes, both through the StatusIndex partitions the students' claims write,
// while a rush allocates. A job run may stop on a write throttled after every retry (the
// next run goes on); no student's allocation is touched, and once the rush is over the
// jobs' next runs end every expired allocation and delete every released sandbox.
func TestLimitsCleanupAndExpiryRaceAllocation(t *testing.T) {
	expired, pending, available := sized(400), sized(200), sized(1000)
	accounts := cspfake.Generate(expired+pending+available, []string{"lab"})
	e := newLimitsEnv(t, envOptions{accounts: accounts})
	e.seed(t, accounts[:expired], e.allocated)
	e.seed(t, accounts[expired:expired+pending], e.released)
	e.seed(t, accounts[expired+pending:], nil)
	e.clock.Advance(poolCfg.LabDuration + poolCfg.Grace + time.Minute)

	var wg sync.WaitGroup
	for _, job := range []string{"expiry", "cleanup"} {
		wg.Go(func() {
			sum, err := e.runner.Run(ctx, job)
			t.Logf("%s during the rush: %v (%v)", job, sum.Counts, err)
		})
	}
	results := e.allocate(studentsOf(available))
	wg.Wait()

	a := e.judge(results)
	e.report(t, a)
	brokertest.AssertDistinct(t, results)
	if a.noSandbox != 0 || a.clientLimit != 0 || a.studentLimit != 0 {
		t.Errorf("answers a pool with a sandbox for every student gives: %s", a)
	}
	for _, r := range results {
		if r.Err == nil {
			if s := e.get(t, r.Alloc.SandboxID); s.Status != pool.Allocated || s.Owner != r.Req.Student {
				t.Errorf("allocation of %s to %s was undone: %+v", s.ID, r.Req.Student, s)
			}
		}
	}
	for _, job := range []string{"expiry", "cleanup"} {
		e.runUntilDone(t, job, func(sum jobs.Summary) bool { return sum.Counts["expired"]+sum.Counts["deleted"] == 0 })
	}
	census := e.checkAllocated(t, a)
	if ended := census.ByStatus[pool.PendingDeletion] + census.ByStatus[pool.Deleted]; ended != expired+pending || census.ByStatus[pool.Deleted] < pending {
		t.Errorf("census %+v: want the %d expired ended and the %d released deleted", census, expired, pending)
	}
}

// A burst of transaction conflicts on one sandbox: every student of a class asks for the
// one sandbox of its name prefix at once. Exactly one gets it; every other is told none is
// free (409), however the claims conflict (or, on a machine slow enough for the broker's
// deadline, a 503). Then the winner's duplicate releases
// race each other and the expiry job on that sandbox: it ends once, with one history entry.
func TestLimitsConflictBurstOnOneSandbox(t *testing.T) {
	class := sized(200)
	e := newLimitsEnv(t, envOptions{})
	brokertest.Fill(t, e.direct, "lab", 0, 20)
	brokertest.Fill(t, e.direct, "solo", 100, 1)
	results := e.allocate(brokertest.Students(class, "solo"))
	a := e.judge(results)
	e.report(t, a)
	if a.created != 1 || a.replays != 0 || a.clientLimit+a.studentLimit != 0 || len(a.saveable) != 0 {
		t.Fatalf("answers %s, want one sandbox and the others told none is free (or a 503 once retrying was spent)", a)
	}
	var winner brokertest.Result
	for _, r := range results {
		if r.Err == nil {
			winner = r
		}
	}
	e.clock.Advance(poolCfg.LabDuration + poolCfg.Grace + time.Minute)
	var wg sync.WaitGroup
	releases := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			_, err := broker.New(e.pool, poolCfg).Release(ctx, winner.Alloc.SandboxID, pool.Holder{Client: winner.Req.Client, Student: winner.Req.Student}, "release")
			releases <- err
		})
	}
	wg.Go(func() {
		if _, err := e.runner.Run(ctx, "expiry"); err != nil {
			t.Errorf("expiry: %v", err)
		}
	})
	wg.Wait()
	close(releases)
	for err := range releases {
		if err != nil && !errors.Is(err, broker.ErrBusy) {
			t.Errorf("a duplicate release: %v", err)
		}
	}
	t.Logf("after the releases and the expiry: %s", e.limits.Counts())
	s := e.get(t, winner.Alloc.SandboxID)
	if s.Status != pool.PendingDeletion {
		t.Fatalf("the sandbox after its releases and expiry: %+v", s)
	}
	history, err := e.direct.History(ctx, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	ended := 0
	for _, h := range history {
		if h.To == pool.PendingDeletion {
			ended++
		}
	}
	if ended != 1 {
		t.Fatalf("the allocation ended %d times: %+v", ended, history)
	}
	pooltest.Check(t, e.direct)
}
