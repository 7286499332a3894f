package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/config"
)

func TestLoadJobsDefaults(t *testing.T) {
	j, err := config.LoadJobs(testkit.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Jobs{
		StaleStrikes: 2, MaxShrinkFraction: 0.5, CleanupMaxAttempts: 6,
		CleanupBackoffBase: time.Minute, CleanupBackoffCap: time.Hour, DeletesPerSecond: 1, CleanupMaxInFlight: 16,
		StaleGrace: 24 * time.Hour, IntervalScale: 1,
		PrefixLowWaterMark: 5, PrefixLeadTime: 30 * time.Minute, AllocationRateWindow: 15 * time.Minute, PrefixMetricsMax: 20,
	}
	if j != want {
		t.Fatalf("got %+v\nwant %+v", j, want)
	}
	if got := j.Scale(5 * time.Minute); got != 5*time.Minute {
		t.Fatalf("scale 1 changed 5m to %s", got)
	}
}

func TestLoadJobsIntervalScale(t *testing.T) {
	j, err := config.LoadJobs(testkit.Env(map[string]string{"JOB_INTERVAL_SCALE": "0.02"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := j.Scale(5 * time.Minute); got != 6*time.Second {
		t.Fatalf("5m scaled by 0.02 is %s, want 6s", got)
	}
	if got := j.Scale(j.CleanupBackoffBase); got != 1200*time.Millisecond {
		t.Fatalf("backoff base scaled to %s, want 1.2s", got)
	}
}

func TestLoadJobsRejectsNamingEachVariable(t *testing.T) {
	_, err := config.LoadJobs(testkit.Env(map[string]string{
		"SYNC_STALE_STRIKES": "0", "SYNC_MAX_SHRINK_FRACTION": "1.5", "CLEANUP_MAX_ATTEMPTS": "many",
		"CLEANUP_BACKOFF_BASE_SECONDS": "600", "CLEANUP_BACKOFF_CAP_SECONDS": "60",
		"CLEANUP_DELETES_PER_SECOND": "0", "CLEANUP_MAX_IN_FLIGHT": "65", "STALE_GRACE_HOURS": "0",
		"JOB_INTERVAL_SCALE": "0",
	}))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, w := range []string{
		"SYNC_STALE_STRIKES: 0 is outside 1..10", "SYNC_MAX_SHRINK_FRACTION: 1.5 is outside 0..1",
		`CLEANUP_MAX_ATTEMPTS: "many" is not an integer`, "CLEANUP_BACKOFF_CAP_SECONDS: 1m0s is below CLEANUP_BACKOFF_BASE_SECONDS (10m0s)",
		"CLEANUP_DELETES_PER_SECOND: 0 is outside 0.01..100", "CLEANUP_MAX_IN_FLIGHT: 65 is outside 1..64",
		"STALE_GRACE_HOURS: 0 is outside 1..720",
		"JOB_INTERVAL_SCALE: must be greater than 0",
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error does not contain %q:\n%v", w, err)
		}
	}
	_, err = config.LoadJobs(testkit.Env(map[string]string{"JOB_INTERVAL_SCALE": "2"}))
	if err == nil || !strings.Contains(err.Error(), "JOB_INTERVAL_SCALE: 2 is outside 0..1") {
		t.Fatalf("scale 2: %v", err)
	}
}
