package jobs_test

import (
	"errors"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// TestEveryJobRunsLogsOneLineAndIsRecorded runs each job of the table once and checks the
// summary three ways: returned, logged as one JSON line, stored for the admin API.
func TestEveryJobRunsLogsOneLineAndIsRecorded(t *testing.T) {
	e := newJobEnv(t, envOptions{accounts: cspfake.Generate(3, nil)})
	for _, job := range jobs.Table {
		sum := e.run(t, job.Name)
		if sum.Job != job.Name || sum.RunID == "" || sum.Outcome != jobs.OutcomeOK || !sum.StartedAt.Equal(t0) || sum.Counts == nil {
			t.Fatalf("%s: summary %+v", job.Name, sum)
		}
		runs, err := e.pool.Runs(ctx, job.Name, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(runs) != 1 || !sameRun(runs[0], sum) {
			t.Fatalf("%s: stored runs %+v, want %+v", job.Name, runs, sum)
		}
	}
	lines := e.logs.JSONLines(t)
	if len(lines) != len(jobs.Table) {
		t.Fatalf("%d log lines for %d runs: %v", len(lines), len(jobs.Table), lines)
	}
	for i, line := range lines {
		job := jobs.Table[i].Name
		counts, _ := line["counts"].(map[string]any)
		if line["msg"] != "job run" || line["level"] != "INFO" || line["job"] != job || line["outcome"] != "ok" ||
			line["run_id"] == "" || counts == nil || line["duration_ms"] == nil {
			t.Fatalf("%s: log line %v", job, line)
		}
	}
	if got := e.logs.JSONLines(t)[0]["counts"].(map[string]any)["created"]; got != float64(3) {
		t.Fatalf("sync's logged counts: created = %v, want 3", got)
	}
}

func sameRun(r pool.RunRecord, s jobs.Summary) bool {
	return r.Job == s.Job && r.RunID == s.RunID && r.StartedAt.Equal(s.StartedAt) && r.DurationMS == s.DurationMS &&
		r.Outcome == string(s.Outcome) && r.Reason == s.Reason && r.Alarm == s.Alarm &&
		maps.Equal(r.Counts, s.Counts) && slices.Equal(r.Errors, s.Errors)
}

// TestOverlappingRunIsSkipped starts a second run of a job while the first is deleting
// (its deletes held at the CSP until then): the second returns at once with outcome
// skipped, and a run of another job is not held up.
func TestOverlappingRunIsSkipped(t *testing.T) {
	accounts := cspfake.Generate(3, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, watchDeletes: true})
	e.released(t, accounts)
	e.deletes.Hold()

	var wg sync.WaitGroup
	var first jobs.Summary
	var firstErr error
	var firstDone atomic.Bool
	wg.Go(func() {
		first, firstErr = e.runner.RunWithID(ctx, "cleanup", "scheduled-1")
		firstDone.Store(true)
	})
	if err := e.deletes.WaitHeld(testkit.Patience(t), 1); err != nil {
		t.Fatalf("waiting for the first run's delete: %v", err)
	}
	second, err := e.runner.RunWithID(ctx, "cleanup", "admin-1")
	if err != nil || second.Outcome != jobs.OutcomeSkipped || !strings.HasPrefix(second.Reason, "run scheduled-1 holds the lease until ") {
		t.Fatalf("overlapping run: %+v, %v", second, err)
	}
	if firstDone.Load() {
		t.Fatal("the overlapping run waited for the first one instead of returning at once")
	}
	if sum := e.run(t, "expiry"); sum.Outcome != jobs.OutcomeOK {
		t.Fatalf("another job was held up: %+v", sum)
	}
	e.deletes.ReleaseAll()
	wg.Wait()
	if firstErr != nil || first.Outcome != jobs.OutcomeOK || first.Counts["deleted"] != 3 {
		t.Fatalf("first run: %+v, %v", first, firstErr)
	}
	if len(e.fake.Deletes()) != 3 {
		t.Fatalf("CSP got %d deletes for 3 sandboxes", len(e.fake.Deletes()))
	}
	runs, err := e.pool.Runs(ctx, "cleanup", 0)
	if err != nil || len(runs) != 2 {
		t.Fatalf("recorded runs %+v, %v", runs, err)
	}
	outcomes := map[string]string{}
	for _, r := range runs {
		outcomes[r.RunID] = r.Outcome
	}
	if outcomes["scheduled-1"] != "ok" || outcomes["admin-1"] != "skipped" {
		t.Fatalf("recorded outcomes %v", outcomes)
	}
	// The lease was given back: the next run goes ahead.
	if sum := e.run(t, "cleanup"); sum.Outcome != jobs.OutcomeOK {
		t.Fatalf("run after the first ended: %+v", sum)
	}
}

// TestCrashedRunBlocksNoScheduledRun crashes a sync holding its lease (it panics after
// its listing, so nothing gives the lease back, as when Lambda kills a run). The lease
// lasts as long as a run may (the job's Timeout and LeaseMargin), not 15 minutes: a run
// meanwhile is skipped, without an alarm (the holder may still be working), and the next
// scheduled run, Every later, goes ahead.
func TestCrashedRunBlocksNoScheduledRun(t *testing.T) {
	e := newJobEnv(t, envOptions{accounts: cspfake.Generate(3, nil)})
	def, _ := jobs.Named("sync")
	crash := errors.New("the run crashed")
	jobs.SetAfterListing(e.runner, func() { panic(crash) })
	func() {
		defer func() {
			if r := recover(); r != crash {
				t.Fatalf("the run did not crash as planned: %v", r)
			}
		}()
		_, _ = e.runner.Run(ctx, "sync")
	}()
	jobs.SetAfterListing(e.runner, nil)

	lease, held, err := e.pool.CurrentLease(ctx, "sync")
	if err != nil || !held {
		t.Fatalf("the crashed run left no lease: %v", err)
	}
	if d := time.Duration(lease.ExpiresAt-lease.AcquiredAt) * time.Second; d > def.Timeout()+jobs.LeaseMargin || d < def.Timeout()-time.Minute {
		t.Fatalf("the lease lasts %s, want about the job's %s timeout", d, def.Timeout())
	}
	if sum := e.run(t, "sync"); sum.Outcome != jobs.OutcomeSkipped || sum.Alarm != "" {
		t.Fatalf("run under the crashed run's lease: %+v, want skipped without an alarm", sum)
	}
	e.clock.Advance(def.Every)
	if sum := e.run(t, "sync"); sum.Outcome != jobs.OutcomeOK || sum.Counts["created"] != 3 {
		t.Fatalf("the next scheduled run: %+v, want ok with the 3 accounts created", sum)
	}
	pooltest.Check(t, e.pool)
}

// TestStuckLeaseRaisesAnAlarm holds a job's lease as no run of this version does (15
// minutes, as an earlier version took it). Once it was taken longer ago than the job's
// timeout, its run is over: a run skipped on it raises job_lease_stuck, and publishes it
// (only a metric pages someone), while a skip behind a run that may still be working
// raises nothing.
func TestStuckLeaseRaisesAnAlarm(t *testing.T) {
	e := newJobEnv(t, envOptions{})
	metrics := &recordedMetrics{}
	runner, err := jobs.NewRunner(jobs.Deps{Pool: e.pool, PoolConfig: poolCfg, Config: e.cfg, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	def, _ := jobs.Named("expiry")
	if _, err := e.pool.AcquireLease(ctx, "expiry", "earlier-version-run", 15*time.Minute); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(def.Timeout())
	if sum, err := runner.Run(ctx, "expiry"); err != nil || sum.Outcome != jobs.OutcomeSkipped || sum.Alarm != "" {
		t.Fatalf("skipped within the holder's timeout: %+v, %v; want skipped without an alarm", sum, err)
	}
	e.clock.Advance(jobs.LeaseMargin + time.Second)
	sum, err := runner.Run(ctx, "expiry")
	if err != nil || sum.Outcome != jobs.OutcomeSkipped || sum.Alarm != jobs.AlarmJobLeaseStuck ||
		!strings.Contains(sum.Reason, "run earlier-version-run holds the lease") || !strings.Contains(sum.Reason, "that run is over") {
		t.Fatalf("skipped on a stuck lease: %+v, %v; want skipped with %s", sum, err, jobs.AlarmJobLeaseStuck)
	}
	if !slices.Equal(metrics.alarms, []string{jobs.AlarmJobLeaseStuck}) {
		t.Fatalf("published alarms %q, want the stuck lease's", metrics.alarms)
	}
	runs, err := e.pool.Runs(ctx, "expiry", 0)
	if err != nil || len(runs) != 2 || runs[0].Alarm != jobs.AlarmJobLeaseStuck {
		t.Fatalf("recorded runs %+v, %v", runs, err)
	}
}

func TestRunRejectsWhatItCannotRun(t *testing.T) {
	e := newJobEnv(t, envOptions{})
	if _, err := e.runner.Run(ctx, "backup"); err == nil || !strings.Contains(err.Error(), `no job named "backup"`) {
		t.Fatalf("unknown job: %v", err)
	}
	for _, id := range []string{"a#b", strings.Repeat("x", 65), "run id"} {
		if _, err := e.runner.RunWithID(ctx, "expiry", id); err == nil {
			t.Fatalf("run ID %q accepted", id)
		}
	}
	withoutCSP, err := jobs.NewRunner(jobs.Deps{Pool: e.pool, PoolConfig: poolCfg, Config: e.cfg})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := withoutCSP.Run(ctx, "sync")
	if err == nil || sum.Outcome != jobs.OutcomeFailed || !strings.Contains(sum.Reason, "needs the CSP client") {
		t.Fatalf("sync without a CSP client: %+v, %v", sum, err)
	}
	if sum, err := withoutCSP.Run(ctx, "stale-cleanup"); err != nil || sum.Outcome != jobs.OutcomeOK {
		t.Fatalf("stale-cleanup without a CSP client: %+v, %v", sum, err)
	}
	if _, err := jobs.NewRunner(jobs.Deps{Pool: e.pool}); err == nil {
		t.Fatal("a runner without job configuration was built")
	}
}

// recordedMetrics keeps what a runner publishes.
type recordedMetrics struct {
	mu    sync.Mutex
	runs  []string
	gauge map[string]int
	total int
	// timesToDelete holds every value TimesToDelete got.
	timesToDelete []time.Duration
	// alarms holds every alarm a published run raised.
	alarms []string
	// The last PrefixGauges.
	prefixesLow, prefixesEmptying int
	prefixes                      []obs.PrefixSignal
}

func (m *recordedMetrics) PublishRun(job string, counts map[string]int, alarm string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = append(m.runs, job)
	if alarm != "" {
		m.alarms = append(m.alarms, alarm)
	}
}

func (m *recordedMetrics) TimesToDelete(job string, times []time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.timesToDelete = append(m.timesToDelete, times...)
}

func (m *recordedMetrics) PrefixGauges(low, emptying int, each []obs.PrefixSignal) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.prefixesLow, m.prefixesEmptying, m.prefixes = low, emptying, each
}

func (m *recordedMetrics) PoolGauges(byStatus map[string]int, total int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gauge, m.total = byStatus, total
}

// TestPoolMetricsPublishesExactGauges runs sync, then releases two sandboxes, and checks
// that pool-metrics publishes the counts a full read of the table finds, and that every
// run that did work is published.
func TestPoolMetricsPublishesExactGauges(t *testing.T) {
	e := newJobEnv(t, envOptions{accounts: cspfake.Generate(5, nil)})
	metrics := &recordedMetrics{}
	runner, err := jobs.NewRunner(jobs.Deps{Pool: e.pool, CSP: e.csp, PoolConfig: poolCfg, Config: e.cfg, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Run(ctx, "sync"); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		a, err := e.broker.Allocate(ctx, broker.AllocateRequest{Student: "s" + strings.Repeat("x", i)})
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := e.broker.Release(ctx, a.SandboxID, pool.Holder{Client: a.Client, Student: a.Student}, "r"); err != nil {
				t.Fatal(err)
			}
		}
	}
	sum, err := runner.Run(ctx, "pool-metrics")
	if err != nil {
		t.Fatal(err)
	}
	census, err := e.pool.CheckInvariants(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, status := range pool.Statuses {
		if metrics.gauge[string(status)] != census.ByStatus[status] || sum.Counts[string(status)] != census.ByStatus[status] {
			t.Fatalf("%s: gauge %d, summary %d, table %d", status, metrics.gauge[string(status)], sum.Counts[string(status)], census.ByStatus[status])
		}
	}
	if metrics.total != 5 || metrics.gauge["available"] != 3 || !slices.Equal(metrics.runs, []string{"sync", "pool-metrics"}) {
		t.Fatalf("gauges %v total %d runs %v", metrics.gauge, metrics.total, metrics.runs)
	}
	// The prefix lab: 3 available, below the default low-water mark of 5; one allocation
	// (still held) in the 15-minute window, so 45 minutes to empty, beyond the 30 of the
	// lead time. The released one is no longer allocated, so not counted (a floor).
	p := metrics.prefixes
	if metrics.prefixesLow != 1 || metrics.prefixesEmptying != 0 || len(p) != 1 || p[0].Prefix != "lab" || p[0].Available != 3 ||
		math.Abs(p[0].PerMinute-1.0/15) > 1e-12 || math.Abs(p[0].MinutesToEmpty-45) > 1e-9 || sum.Counts["prefixes_low"] != 1 {
		t.Fatalf("prefix gauges: %d low, %d emptying, %+v; summary %v", metrics.prefixesLow, metrics.prefixesEmptying, p, sum.Counts)
	}
}

// A lab profile's low-water mark on a prefix is the mark the prefix is judged by: with
// 5 available, the configured mark of 5 leaves lab fine, a profile's mark of 8 makes it
// low, and a profile's mark of 2 keeps it fine.
func TestPrefixSignalsTakeTheProfilesLowWaterMark(t *testing.T) {
	e := newJobEnv(t, envOptions{accounts: cspfake.Generate(5, nil)})
	e.run(t, "sync")
	by := pool.Actor{Kind: "operator", Name: "test"}
	for _, tt := range []struct {
		mark    int // the profile's; 0: no profile
		wantLow bool
	}{{0, false}, {8, true}, {2, false}} {
		if tt.mark != 0 {
			if _, err := e.pool.PutProfile(ctx, pool.Profile{Prefix: "lab", LowWater: tt.mark}, by); err != nil {
				t.Fatal(err)
			}
		}
		e.run(t, "pool-metrics")
		signals, err := e.pool.PrefixSignals(ctx)
		if err != nil || len(signals) != 1 {
			t.Fatalf("signals %+v, %v", signals, err)
		}
		want := tt.mark
		if want == 0 {
			want = e.cfg.PrefixLowWaterMark
		}
		if s := signals[0]; s.LowWater != want || slices.Contains(s.Reasons, pool.BelowLowWater) != tt.wantLow {
			t.Fatalf("profile mark %d: signal %+v, want mark %d, low %v", tt.mark, s, want, tt.wantLow)
		}
	}
	pooltest.Check(t, e.pool)
}
