package jobs_test

import (
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/jobs"
)

// TestJobTableCarriesItsCode: every job runs a Runner method, and every method with a
// job's signature is the run of a job (pkg/api's TestTablesMatchTheTree checks the
// functions and samples). The names are unique and Named finds each.
func TestJobTableCarriesItsCode(t *testing.T) {
	run := map[string]bool{}
	for _, j := range jobs.Table {
		m := jobs.WorkMethod(j)
		if m == "" {
			t.Errorf("job %s has no run method", j.Name)
		}
		run[m] = true
		if found, ok := jobs.Named(j.Name); !ok || found.Name != j.Name || jobs.WorkMethod(found) != m {
			t.Errorf("Named(%q) = %q, %v", j.Name, found.Name, ok)
		}
	}
	for _, m := range testkit.Methods(t, ".", "Runner", "context.Context, *runState", "error") {
		if !run[m] {
			t.Errorf("(*Runner).%s runs no job of the table", m)
		}
	}
	if _, ok := jobs.Named("no-such-job"); ok {
		t.Error("Named found a job that is not in the table")
	}
}

// TestJobScheduleAndTimeoutComeFromTheInterval: the EventBridge expression and the run's
// timeout are both read off Every, so they cannot disagree with it.
func TestJobScheduleAndTimeoutComeFromTheInterval(t *testing.T) {
	for _, c := range []struct {
		every    time.Duration
		schedule string
		timeout  time.Duration
	}{
		{time.Minute, "rate(1 minute)", 54 * time.Second},
		{5 * time.Minute, "rate(5 minutes)", 270 * time.Second},
		{10 * time.Minute, "rate(10 minutes)", 5 * time.Minute},
		{90 * time.Minute, "rate(90 minutes)", 5 * time.Minute},
		{time.Hour, "rate(1 hour)", 5 * time.Minute},
		{24 * time.Hour, "rate(1 day)", 5 * time.Minute},
		{48 * time.Hour, "rate(2 days)", 5 * time.Minute},
	} {
		j := jobs.Job{Name: "x", Every: c.every}
		if got := j.Schedule(); got != c.schedule {
			t.Errorf("Every %v: Schedule %q, want %q", c.every, got, c.schedule)
		}
		if got := j.Timeout(); got != c.timeout {
			t.Errorf("Every %v: Timeout %v, want %v", c.every, got, c.timeout)
		}
	}
	for _, j := range jobs.Table {
		// EventBridge rates are whole minutes.
		if j.Every < time.Minute || j.Every%time.Minute != 0 {
			t.Errorf("job %s: interval %v is not a whole number of minutes", j.Name, j.Every)
		}
	}
}
