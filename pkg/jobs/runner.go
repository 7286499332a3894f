package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/niosxaas"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/pool"
)

const (
	// finishReserve is kept back from a run's deadline to book the last result, release
	// the lease and record the run: the least time a run's finish gets.
	finishReserve = 500 * time.Millisecond
	// leaseMargin is how long a lease outlasts its run's deadline: the clocks of two runs
	// (two Lambda instances) may disagree by that much.
	leaseMargin = 5 * time.Second
	// defaultCSPRequestTimeout is the CSP client's own default.
	defaultCSPRequestTimeout = 15 * time.Second
	maxErrorSamples          = 5
	deadlineReason           = "stopped before the deadline; the rest is left for the next run"
)

// Deps is what a Runner needs. CSP may be nil for a runner that only runs jobs
// without UsesCSP (expiry, stale-cleanup).
type Deps struct {
	Pool *pool.Pool
	CSP  *csp.Client
	// CSPRequestTimeout is the CSP client's per-request timeout: a CSP call starts only
	// when that much time is left before the run's deadline.
	CSPRequestTimeout time.Duration
	// PoolConfig gives the grace after expires_at.
	PoolConfig config.Pool
	Config     config.Jobs
	Logger     *slog.Logger
	// Metrics receives each run's counts and the pool gauges (obs.Metrics); nil: none.
	Metrics Metrics
	// NIOSXaaS, when set, runs cleanup's pre-delete step before each CSP delete
	// (niosxaasStep), up to NIOSXaaSMaxAttempts failed steps per sandbox.
	NIOSXaaS            *niosxaas.Client
	NIOSXaaSMaxAttempts int
	// UsagePlans is the usage-plans job's work; zero for a runner that does not run it.
	UsagePlans UsagePlans
}

// Metrics is where runs publish what they measured.
type Metrics interface {
	PublishRun(job string, counts map[string]int, alarm string, duration time.Duration)
	PoolGauges(byStatus map[string]int, total int)
	PrefixGauges(low, emptying int, each []obs.PrefixSignal)
	// TimesToDelete gets, for each sandbox a run deleted, the time from its release to the
	// confirmed delete.
	TimesToDelete(job string, times []time.Duration)
}

// Runner runs the background jobs of the job table (Table). It is the one entry point
// for every trigger: the Lambda functions (job.Function in pkg/app/job), the local stack's scheduler and
// the admin API's "run now". It is safe for concurrent use; runs of the same job exclude
// each other through a lease item in the table, so an overlapping run returns at once
// with OutcomeSkipped.
type Runner struct {
	pool       *pool.Pool
	csp        *csp.Client
	cspTimeout time.Duration
	grace      time.Duration
	cfg        config.Jobs
	log        *slog.Logger
	metrics    Metrics
	// niosxaas is the pre-delete step's client; nil: the step is off.
	niosxaas            *niosxaas.Client
	niosxaasMaxAttempts int
	usagePlans          UsagePlans
	// afterListing, when set (tests only, export_test.go), runs between sync's CSP listing
	// and its read of the pool, to force the racing-sync interleaving deterministically.
	afterListing func()
}

// NewRunner checks deps and returns a runner.
func NewRunner(d Deps) (*Runner, error) {
	if d.Pool == nil {
		return nil, errors.New("jobs: job runner needs a pool")
	}
	// A zero config.Jobs would pace deletes at 0/s and back off for 0 s: catch a caller
	// that built one by hand instead of with config.LoadJobs.
	if c := d.Config; c.DeletesPerSecond <= 0 || c.IntervalScale <= 0 || c.CleanupMaxAttempts < 1 || c.CleanupMaxInFlight < 1 ||
		c.StaleStrikes < 1 || c.CleanupBackoffBase <= 0 || c.CleanupBackoffCap < c.CleanupBackoffBase || c.AllocationRateWindow <= 0 {
		return nil, fmt.Errorf("jobs: job configuration is incomplete (load it with config.LoadJobs): %+v", d.Config)
	}
	r := &Runner{
		pool: d.Pool, csp: d.CSP, cspTimeout: d.CSPRequestTimeout, grace: d.PoolConfig.Grace,
		cfg: d.Config, log: d.Logger, metrics: d.Metrics,
		niosxaas: d.NIOSXaaS, niosxaasMaxAttempts: d.NIOSXaaSMaxAttempts, usagePlans: d.UsagePlans,
	}
	if r.niosxaas != nil && r.niosxaasMaxAttempts < 1 {
		return nil, errors.New("jobs: the NIOSXaaS step needs NIOSXaaSMaxAttempts ≥ 1 (config.LoadNIOSXaaS)")
	}
	if r.cspTimeout <= 0 {
		r.cspTimeout = defaultCSPRequestTimeout
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Run runs the named job once, now, under a fresh run ID. See RunWithID.
func (r *Runner) Run(ctx context.Context, job string) (Summary, error) {
	return r.RunWithID(ctx, job, "")
}

// RunWithID runs the named job once under runID (broker.ValidID; empty: a random one), so a
// caller that answered "202 {job, run_id}" can find the run later. It takes the job's
// lease, does the work that is due, stops early enough before its deadline (ctx's, and at
// most the job's Timeout, as in Lambda) to release the lease and record the run, then
// logs and stores the summary. The error is non-nil exactly when the outcome is
// OutcomeFailed (or the job name or run ID is invalid, before anything runs).
func (r *Runner) RunWithID(ctx context.Context, job, runID string) (Summary, error) {
	def, ok := Named(job)
	if !ok {
		return Summary{}, fmt.Errorf("jobs: no job named %q", job)
	}
	if runID == "" {
		runID = broker.NewID()
	} else if !broker.ValidID(runID) {
		return Summary{}, fmt.Errorf("broker: run ID %q must be %s", runID, broker.IDSyntax)
	}
	// No run outlasts its job's Timeout, whoever calls it: the lease is sized on it.
	ctx, cancelRun := context.WithTimeout(ctx, def.Timeout())
	defer cancelRun()
	began := time.Now()
	sum := Summary{Job: job, RunID: runID, StartedAt: r.pool.Now().UTC(), Counts: map[string]int{}}
	run := &runState{summary: &sum, actor: pool.Actor{Kind: "job", Name: job, RequestID: runID}}
	deadline, _ := ctx.Deadline()
	run.workDeadline = deadline.Add(-finishReserve)

	var (
		lease  *pool.Lease
		jobErr error
	)
	if def.UsesCSP && r.csp == nil {
		jobErr = fmt.Errorf("job %s needs the CSP client, and this runner has none", job)
	} else if lease, jobErr = r.acquireLease(ctx, run, def, deadline); lease != nil {
		jobErr = def.work(r, ctx, run)
	}
	switch {
	case jobErr != nil:
		sum.Outcome, sum.Reason = OutcomeFailed, jobErr.Error()
	case sum.Outcome == "":
		sum.Outcome = OutcomeOK
	}

	// The lease goes back and the run is recorded and logged even when the caller's
	// context is done: within what is left of the run's time, and at least the time kept
	// for it. A run that ended early leaves its finish all that time, so a slow table
	// delays the record instead of losing it.
	finishBy := deadline
	if least := time.Now().Add(finishReserve); finishBy.Before(least) {
		finishBy = least
	}
	finish, cancel := context.WithDeadline(context.WithoutCancel(ctx), finishBy)
	defer cancel()
	if lease != nil {
		if err := r.pool.ReleaseLease(finish, *lease); err != nil {
			run.addError(fmt.Errorf("release lease: %w", err))
		}
	}
	sum.DurationMS = time.Since(began).Milliseconds()
	if err := r.pool.RecordRun(finish, sum.record()); err != nil {
		// Too late for the stored record; the log line still says it.
		run.addError(fmt.Errorf("record run: %w", err))
	}
	sum.log(finish, r.log)
	// A skipped run did nothing worth a metric, unless it raised an alarm, which only a
	// metric delivers.
	if r.metrics != nil && (sum.Outcome != OutcomeSkipped || sum.Alarm != "") {
		r.metrics.PublishRun(job, sum.Counts, sum.Alarm, time.Duration(sum.DurationMS)*time.Millisecond)
	}
	if sum.Outcome == OutcomeFailed {
		return sum, fmt.Errorf("jobs: job %s run %s failed: %s", job, runID, sum.Reason)
	}
	return sum, nil
}

// acquireLease takes the job's lease for the run until its deadline (at most the job's
// Timeout away) and leaseMargin: a run that crashes holding it blocks no run scheduled
// after its own would have ended. Another run's lease makes this run skipped: no lease and
// no error. A lease taken longer ago than any run lasts raises AlarmJobLeaseStuck: its
// holder is over, yet it blocks the job.
func (r *Runner) acquireLease(ctx context.Context, run *runState, def Job, deadline time.Time) (*pool.Lease, error) {
	lease, err := r.pool.AcquireLease(ctx, run.summary.Job, run.summary.RunID, time.Until(deadline)+leaseMargin)
	var held *pool.LeaseHeldError
	if errors.As(err, &held) {
		cur := held.Current
		run.summary.Outcome = OutcomeSkipped
		run.summary.Reason = fmt.Sprintf("run %s holds the lease until %s", cur.Holder, time.Unix(cur.ExpiresAt, 0).UTC().Format(time.RFC3339))
		if took := time.Unix(cur.AcquiredAt, 0); r.pool.Now().Sub(took) > def.Timeout()+leaseMargin {
			run.summary.Reason += fmt.Sprintf(", yet took it at %s, longer ago than the job's %s timeout: that run is over",
				took.UTC().Format(time.RFC3339), def.Timeout())
			run.alarm(AlarmJobLeaseStuck)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &lease, nil
}
