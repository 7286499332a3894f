package broker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// Outcome is how a job run ended.
type Outcome string

const (
	// OutcomeOK: the run did all the work that was due.
	OutcomeOK Outcome = "ok"
	// OutcomePartial: the run stopped early on purpose (its deadline, an open circuit
	// breaker, CSP rate limiting) and left the rest for the next run.
	OutcomePartial Outcome = "partial"
	// OutcomeSkipped: another run of the same job held the lease; this one did nothing.
	OutcomeSkipped Outcome = "skipped"
	// OutcomeFailed: the run could not do its work (CSP listing down, DynamoDB errors, a
	// rejected CSP token). Run returns an error with it.
	OutcomeFailed Outcome = "failed"
)

// Alarms a run can raise. They are stable values of the summary's "alarm" field, so a log
// metric filter can page an operator on them.
const (
	// AlarmSyncShrinkGuard: the CSP listing was empty or dropped too much of the pool, so
	// sync marked nothing stale (defect D5).
	AlarmSyncShrinkGuard = "sync_shrink_guard"
	// AlarmDeletionFailed: cleanup gave up on a sandbox after its last attempt.
	AlarmDeletionFailed = "cleanup_deletion_failed"
	// AlarmCleanupBreakerOpen: cleanup stopped because the CSP circuit breaker is open.
	AlarmCleanupBreakerOpen = "cleanup_breaker_open"
	// AlarmCSPTokenRejected: the CSP answered 401; no sandbox is blamed for it.
	AlarmCSPTokenRejected = "csp_token_rejected"
)

const (
	// finishReserve is kept back from a run's deadline to book the last result, release
	// the lease and record the run.
	finishReserve = 500 * time.Millisecond
	// defaultCSPRequestTimeout is the CSP client's own default.
	defaultCSPRequestTimeout = 15 * time.Second
	maxErrorSamples          = 5
	runIDPattern             = `^[A-Za-z0-9_-]{1,64}$`
	deadlineReason           = "stopped before the deadline; the rest is left for the next run"
)

// RunSummary is what one run did. It is logged as one JSON line, stored (pool.Runs) and
// returned to the caller.
type RunSummary struct {
	Job        string    `json:"job"`
	RunID      string    `json:"run_id"`
	StartedAt  time.Time `json:"started_at"`
	DurationMS int64     `json:"duration_ms"`
	Outcome    Outcome   `json:"outcome"`
	// Reason says why a run was partial, skipped or failed, or what sync's shrink guard
	// refused.
	Reason string `json:"reason,omitempty"`
	// Alarm is one of the Alarm* values when the run found something an operator must see
	// (the first one, when it found several).
	Alarm  string         `json:"alarm,omitempty"`
	Counts map[string]int `json:"counts"`
	// Errors holds the first few per-sandbox errors, for the operator.
	Errors []string `json:"errors,omitempty"`
}

// JobDeps is what a JobRunner needs. CSP may be nil for a runner that only runs jobs
// without UsesCSP (expiry, stale-cleanup).
type JobDeps struct {
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
	Metrics JobMetrics
	// Now is the clock for cutoffs and timestamps (default time.Now). Deadlines are always
	// measured in real time.
	Now func() time.Time
}

// JobMetrics is where runs publish what they measured.
type JobMetrics interface {
	JobRun(job string, counts map[string]int, duration time.Duration)
	PoolGauges(byStatus map[string]int, total int)
	// TimesToDelete gets, for each sandbox a run deleted, the time from its release to the
	// confirmed delete.
	TimesToDelete(job string, times []time.Duration)
}

// JobRunner runs the background jobs of the job table (Jobs). It is the one entry point
// for every trigger: the Lambda functions (app.JobFunction), the local stack's scheduler and
// the admin API's "run now". It is safe for concurrent use; runs of the same job exclude
// each other through a lease item in the table, so an overlapping run returns at once
// with OutcomeSkipped.
type JobRunner struct {
	pool       *pool.Pool
	csp        *csp.Client
	cspTimeout time.Duration
	grace      time.Duration
	cfg        config.Jobs
	log        *slog.Logger
	metrics    JobMetrics
	now        func() time.Time
}

// NewJobRunner checks deps and returns a runner.
func NewJobRunner(d JobDeps) (*JobRunner, error) {
	if d.Pool == nil {
		return nil, errors.New("broker: job runner needs a pool")
	}
	// A zero config.Jobs would pace deletes at 0/s and back off for 0 s: catch a caller
	// that built one by hand instead of with config.LoadJobs.
	if c := d.Config; c.DeletesPerSecond <= 0 || c.IntervalScale <= 0 || c.CleanupMaxAttempts < 1 || c.CleanupMaxInFlight < 1 ||
		c.StaleStrikes < 1 || c.CleanupBackoffBase <= 0 || c.CleanupBackoffCap < c.CleanupBackoffBase || c.LeaseTTL <= 0 {
		return nil, fmt.Errorf("broker: job configuration is incomplete (load it with config.LoadJobs): %+v", d.Config)
	}
	r := &JobRunner{
		pool: d.Pool, csp: d.CSP, cspTimeout: d.CSPRequestTimeout, grace: d.PoolConfig.Grace,
		cfg: d.Config, log: d.Logger, metrics: d.Metrics, now: d.Now,
	}
	if r.cspTimeout <= 0 {
		r.cspTimeout = defaultCSPRequestTimeout
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	return r, nil
}

// jobFuncs holds the logic of each job of the table, by name.
var jobFuncs = map[string]func(*JobRunner, context.Context, *jobRun) error{
	"sync":          (*JobRunner).sync,
	"cleanup":       (*JobRunner).cleanup,
	"expiry":        (*JobRunner).expire,
	"stale-cleanup": (*JobRunner).removeStale,
	"pool-metrics":  (*JobRunner).publishPoolMetrics,
}

var validRunID = regexp.MustCompile(runIDPattern)

// Run runs the named job once, now, under a fresh run ID. See RunWithID.
func (r *JobRunner) Run(ctx context.Context, job string) (RunSummary, error) {
	return r.RunWithID(ctx, job, "")
}

// RunWithID runs the named job once under runID (letters, digits, '-' and '_', at most
// 64; empty: a random one), so a caller that answered "202 {job, run_id}" can find the run
// later. It takes the job's lease, does the work that is due, stops early enough before
// ctx's deadline to release the lease and record the run, then logs and stores the
// summary. The error is non-nil exactly when the outcome is OutcomeFailed (or the job name
// or run ID is invalid, before anything runs).
func (r *JobRunner) RunWithID(ctx context.Context, job, runID string) (RunSummary, error) {
	def, ok := jobByName(job)
	fn := jobFuncs[job]
	if !ok || fn == nil {
		return RunSummary{}, fmt.Errorf("broker: no job named %q", job)
	}
	if runID == "" {
		runID = newRunID()
	} else if !validRunID.MatchString(runID) {
		return RunSummary{}, fmt.Errorf("broker: run ID %q must match %s", runID, runIDPattern)
	}
	began := time.Now()
	sum := RunSummary{Job: job, RunID: runID, StartedAt: r.now().UTC(), Counts: map[string]int{}}
	run := &jobRun{summary: &sum, actor: pool.Actor{Kind: "job", Name: job, RequestID: runID}}
	if deadline, ok := ctx.Deadline(); ok {
		run.workDeadline = deadline.Add(-finishReserve)
	}

	var (
		lease  *pool.Lease
		jobErr error
	)
	if def.UsesCSP && r.csp == nil {
		jobErr = fmt.Errorf("job %s needs the CSP client, and this runner has none", job)
	} else if lease, jobErr = r.acquireLease(ctx, run); lease != nil {
		jobErr = fn(r, ctx, run)
	}
	switch {
	case jobErr != nil:
		sum.Outcome, sum.Reason = OutcomeFailed, jobErr.Error()
	case sum.Outcome == "":
		sum.Outcome = OutcomeOK
	}

	// The lease goes back and the run is recorded and logged even when the caller's
	// context is done, within the time kept for it.
	finish, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishReserve)
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
	r.logSummary(finish, sum)
	if r.metrics != nil && sum.Outcome != OutcomeSkipped {
		r.metrics.JobRun(job, sum.Counts, time.Duration(sum.DurationMS)*time.Millisecond)
	}
	if sum.Outcome == OutcomeFailed {
		return sum, fmt.Errorf("broker: job %s run %s failed: %s", job, runID, sum.Reason)
	}
	return sum, nil
}

// acquireLease takes the job's lease for the run, for the configured TTL or until the
// run's own deadline when that is later. Another run's lease makes this run skipped: no
// lease and no error.
func (r *JobRunner) acquireLease(ctx context.Context, run *jobRun) (*pool.Lease, error) {
	ttl := r.cfg.LeaseTTL
	if deadline, ok := ctx.Deadline(); ok {
		ttl = max(ttl, time.Until(deadline))
	}
	lease, err := r.pool.AcquireLease(ctx, run.summary.Job, run.summary.RunID, ttl)
	var held *pool.LeaseHeldError
	if errors.As(err, &held) {
		run.summary.Outcome = OutcomeSkipped
		run.summary.Reason = fmt.Sprintf("run %s holds the lease until %s", held.Current.Holder,
			time.Unix(held.Current.ExpiresAt, 0).UTC().Format(time.RFC3339))
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &lease, nil
}

func (r *JobRunner) logSummary(ctx context.Context, sum RunSummary) {
	level := slog.LevelInfo
	switch {
	case sum.Outcome == OutcomeFailed:
		level = slog.LevelError
	case sum.Outcome == OutcomePartial || sum.Alarm != "":
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("job", sum.Job), slog.String("run_id", sum.RunID),
		slog.Time("started_at", sum.StartedAt), slog.Int64("duration_ms", sum.DurationMS),
		slog.String("outcome", string(sum.Outcome)), slog.Any("counts", sum.Counts),
	}
	for name, v := range map[string]string{"reason": sum.Reason, "alarm": sum.Alarm} {
		if v != "" {
			attrs = append(attrs, slog.String(name, v))
		}
	}
	if len(sum.Errors) > 0 {
		attrs = append(attrs, slog.Any("errors", sum.Errors))
	}
	r.log.LogAttrs(ctx, level, "job run", attrs...)
}

func (s RunSummary) record() pool.JobRun {
	return pool.JobRun{
		Job: s.Job, RunID: s.RunID, StartedAt: s.StartedAt, DurationMS: s.DurationMS, Outcome: string(s.Outcome),
		Reason: s.Reason, Alarm: s.Alarm, Counts: s.Counts, Errors: s.Errors,
	}
}

func jobByName(name string) (Job, bool) {
	for _, j := range Jobs {
		if j.Name == name {
			return j, true
		}
	}
	return Job{}, false
}

func newRunID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// jobRun is the state of one run: its summary so far, its actor for history entries, and
// the moment it must stop starting work (the context deadline minus finishReserve). Its
// mutators are safe for concurrent use, so a job may book work from several goroutines
// (cleanup's deletes); the summary is read once the job function has returned.
type jobRun struct {
	summary      *RunSummary
	actor        pool.Actor
	workDeadline time.Time // zero: no deadline

	mu sync.Mutex // guards summary while the job runs
}

func (run *jobRun) count(name string, n int) {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.summary.Counts[name] += n
}

// addError keeps the first few errors of a run as examples for the operator.
func (run *jobRun) addError(err error) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if len(run.summary.Errors) < maxErrorSamples {
		run.summary.Errors = append(run.summary.Errors, err.Error())
	}
}

// stop ends the run early on purpose; the rest is the next run's. The first reason given
// is the one reported: later ones (the deadline reached while the calls in flight after
// an open breaker finish) are its consequences.
func (run *jobRun) stop(reason string) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.summary.Outcome != OutcomePartial {
		run.summary.Outcome, run.summary.Reason = OutcomePartial, reason
	}
}

// interrupted stops the run because ctx ended or the work deadline passed.
func (run *jobRun) interrupted(ctx context.Context) {
	if errors.Is(ctx.Err(), context.Canceled) {
		run.stop("cancelled; the rest is left for the next run")
		return
	}
	run.stop(deadlineReason)
}

// alarm raises an alarm; the first one raised in a run is the one reported.
func (run *jobRun) alarm(name string) {
	run.mu.Lock()
	defer run.mu.Unlock()
	if run.summary.Alarm == "" {
		run.summary.Alarm = name
	}
}

// outOfTime reports whether less than need is left before the run must stop starting
// work, and if so stops the run.
func (run *jobRun) outOfTime(need time.Duration) bool {
	if run.workDeadline.IsZero() || time.Until(run.workDeadline) >= need {
		return false
	}
	run.stop(deadlineReason)
	return true
}

// workContext bounds a call to the run's work deadline, so a slow CSP cannot eat the time
// kept to record the outcome.
func (run *jobRun) workContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if run.workDeadline.IsZero() {
		return context.WithCancel(ctx)
	}
	return context.WithDeadline(ctx, run.workDeadline)
}

// as returns the run's actor with a reason for the history entry.
func (run *jobRun) as(reason string) pool.Actor {
	a := run.actor
	a.Reason = reason
	return a
}

// countWrite counts a successful write under name and a lost race under "conflicts"; any
// other error fails the run and is the caller's to return.
func (run *jobRun) countWrite(name string, err error) {
	switch {
	case err == nil:
		run.count(name, 1)
	case conflict(err):
		run.count("conflicts", 1)
	}
}

// conflict reports whether err says that another writer changed the sandbox first, which
// a job skips: the next run sees the new state.
func conflict(err error) bool {
	return errors.Is(err, pool.ErrConflict) || errors.Is(err, pool.ErrContended)
}
