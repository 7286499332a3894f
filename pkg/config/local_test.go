package config_test

import (
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/config"
)

// The local stack runs Lambda's instance model by default, with Lambda's default account
// concurrency and no reservation of its own.
func TestLoadLocalExecutionDefaults(t *testing.T) {
	l, err := config.LoadLocal(testkit.Env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if l.ExecutionModel != config.ExecutionInstances || l.AccountConcurrency != 1000 || l.ReservedConcurrency != nil || l.IdleTimeout != 5*time.Minute {
		t.Fatalf("%+v", l)
	}
}

func TestLoadLocalExecution(t *testing.T) {
	l, err := config.LoadLocal(testkit.Env(map[string]string{"LOCAL_EXECUTION_MODEL": "process", "LOCAL_LAMBDA_CONCURRENCY": "10",
		"LOCAL_RESERVED_CONCURRENCY": " allocate=5, authorizer = 0", "LOCAL_LAMBDA_IDLE_SECONDS": "60"}))
	if err != nil {
		t.Fatal(err)
	}
	if l.ExecutionModel != config.ExecutionProcess || l.AccountConcurrency != 10 || l.IdleTimeout != time.Minute ||
		!maps.Equal(l.ReservedConcurrency, map[string]int{"allocate": 5, "authorizer": 0}) {
		t.Fatalf("%+v", l)
	}
	for value, want := range map[string]string{
		"LOCAL_EXECUTION_MODEL=lambda":                     `"lambda" is neither "instances" nor "process"`,
		"LOCAL_LAMBDA_CONCURRENCY=0":                       "LOCAL_LAMBDA_CONCURRENCY: 0 is outside",
		"LOCAL_LAMBDA_IDLE_SECONDS=86400":                  "LOCAL_LAMBDA_IDLE_SECONDS: 86400 is outside",
		"LOCAL_RESERVED_CONCURRENCY=allocate":              `"allocate" is not function=count`,
		"LOCAL_RESERVED_CONCURRENCY=allocate=-1":           `"allocate=-1" is not function=count`,
		"LOCAL_RESERVED_CONCURRENCY==3":                    `"=3" is not function=count`,
		"LOCAL_RESERVED_CONCURRENCY=allocate=1,allocate=2": "names allocate twice",
	} {
		name, v, _ := strings.Cut(value, "=")
		if _, err := config.LoadLocal(testkit.Env(map[string]string{name: v})); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", value, err, want)
		}
	}
}
