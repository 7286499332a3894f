package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/config"
)

func TestLoadPoolTombstoneTTL(t *testing.T) {
	p, err := config.LoadPool(testkit.Env(map[string]string{"TABLE_NAME": "pool"}))
	if err != nil || p.TombstoneTTL != 90*24*time.Hour || p.HistoryTTL != 180*24*time.Hour {
		t.Fatalf("defaults: %+v %v", p, err)
	}
	p, err = config.LoadPool(testkit.Env(map[string]string{"TABLE_NAME": "pool", "TOMBSTONE_TTL_DAYS": "30", "HISTORY_TTL_DAYS": "30"}))
	if err != nil || p.TombstoneTTL != 30*24*time.Hour {
		t.Fatalf("equal TTLs: %+v %v", p, err)
	}
	for env, want := range map[string]string{
		"TOMBSTONE_TTL_DAYS=0":                      "TOMBSTONE_TTL_DAYS",
		"TOMBSTONE_TTL_DAYS=ninety":                 "TOMBSTONE_TTL_DAYS",
		"HISTORY_TTL_DAYS=30 TOMBSTONE_TTL_DAYS=90": "HISTORY_TTL_DAYS: must be at least TOMBSTONE_TTL_DAYS (90)",
	} {
		m := map[string]string{"TABLE_NAME": "pool"}
		for _, kv := range strings.Fields(env) {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		if _, err := config.LoadPool(testkit.Env(m)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one naming %q", env, err, want)
		}
	}
}

func TestLoadPoolStudentLimit(t *testing.T) {
	p, err := config.LoadPool(testkit.Env(map[string]string{"TABLE_NAME": "pool"}))
	if err != nil || p.StudentMaxLiveAllocations != 1 {
		t.Fatalf("default: %d %v", p.StudentMaxLiveAllocations, err)
	}
	p, err = config.LoadPool(testkit.Env(map[string]string{"TABLE_NAME": "pool", "STUDENT_MAX_LIVE_ALLOCATIONS": "3"}))
	if err != nil || p.StudentMaxLiveAllocations != 3 {
		t.Fatalf("3: %d %v", p.StudentMaxLiveAllocations, err)
	}
	for _, v := range []string{"0", "21", "-1", "one"} {
		_, err := config.LoadPool(testkit.Env(map[string]string{"TABLE_NAME": "pool", "STUDENT_MAX_LIVE_ALLOCATIONS": v}))
		if err == nil || !strings.Contains(err.Error(), "STUDENT_MAX_LIVE_ALLOCATIONS") {
			t.Errorf("%q: error %v, want one naming the variable", v, err)
		}
	}
}
