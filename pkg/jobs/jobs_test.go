package jobs_test

import (
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/jobs"
)

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
}
