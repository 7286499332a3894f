package broker_test

import (
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// TestEveryJobRunsLogsOneLineAndIsRecorded runs each job of the table once and checks the
// summary three ways: returned, logged as one JSON line, stored for the admin API.
func TestEveryJobRunsLogsOneLineAndIsRecorded(t *testing.T) {
	e := newJobEnv(t, envOptions{accounts: cspfake.Generate(3, nil)})
	for _, job := range broker.Jobs {
		sum := e.run(t, job.Name)
		if sum.Job != job.Name || sum.RunID == "" || sum.Outcome != broker.OutcomeOK || !sum.StartedAt.Equal(t0) || sum.Counts == nil {
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
	if len(lines) != len(broker.Jobs) {
		t.Fatalf("%d log lines for %d runs: %v", len(lines), len(broker.Jobs), lines)
	}
	for i, line := range lines {
		job := broker.Jobs[i].Name
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

func sameRun(r pool.JobRun, s broker.RunSummary) bool {
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
	var first broker.RunSummary
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
	if err != nil || second.Outcome != broker.OutcomeSkipped || !strings.HasPrefix(second.Reason, "run scheduled-1 holds the lease until ") {
		t.Fatalf("overlapping run: %+v, %v", second, err)
	}
	if firstDone.Load() {
		t.Fatal("the overlapping run waited for the first one instead of returning at once")
	}
	if sum := e.run(t, "expiry"); sum.Outcome != broker.OutcomeOK {
		t.Fatalf("another job was held up: %+v", sum)
	}
	e.deletes.ReleaseAll()
	wg.Wait()
	if firstErr != nil || first.Outcome != broker.OutcomeOK || first.Counts["deleted"] != 3 {
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
	if sum := e.run(t, "cleanup"); sum.Outcome != broker.OutcomeOK {
		t.Fatalf("run after the first ended: %+v", sum)
	}
}

func TestLeaseOfADeadRunExpires(t *testing.T) {
	e := newJobEnv(t, envOptions{})
	if _, err := e.pool.AcquireLease(ctx, "expiry", "crashed-run", e.cfg.LeaseTTL); err != nil {
		t.Fatal(err)
	}
	if sum := e.run(t, "expiry"); sum.Outcome != broker.OutcomeSkipped {
		t.Fatalf("run under a live lease: %+v", sum)
	}
	e.clock.Advance(e.cfg.LeaseTTL + time.Second)
	if sum := e.run(t, "expiry"); sum.Outcome != broker.OutcomeOK {
		t.Fatalf("run after the dead run's lease expired: %+v", sum)
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
	withoutCSP, err := broker.NewJobRunner(broker.JobDeps{Pool: e.pool, PoolConfig: poolCfg, Config: e.cfg})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := withoutCSP.Run(ctx, "sync")
	if err == nil || sum.Outcome != broker.OutcomeFailed || !strings.Contains(sum.Reason, "needs the CSP client") {
		t.Fatalf("sync without a CSP client: %+v, %v", sum, err)
	}
	if sum, err := withoutCSP.Run(ctx, "stale-cleanup"); err != nil || sum.Outcome != broker.OutcomeOK {
		t.Fatalf("stale-cleanup without a CSP client: %+v, %v", sum, err)
	}
	if _, err := broker.NewJobRunner(broker.JobDeps{Pool: e.pool}); err == nil {
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
}

func (m *recordedMetrics) JobRun(job string, counts map[string]int, _ string, _ time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs = append(m.runs, job)
}

func (m *recordedMetrics) TimesToDelete(job string, times []time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.timesToDelete = append(m.timesToDelete, times...)
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
	runner, err := broker.NewJobRunner(broker.JobDeps{Pool: e.pool, CSP: e.csp, PoolConfig: poolCfg, Config: e.cfg, Metrics: metrics})
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
}
