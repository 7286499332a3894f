package config_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/ddblimits"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/config"
)

// DYNAMODB_LIMITS puts the local stack's DynamoDB behind what AWS applies to a new
// on-demand table; each switch turns one limit off or tunes it, and a bad value is named.
func TestLoadLocalDynamoDBLimits(t *testing.T) {
	l, err := config.LoadLocal(testkit.Env(nil))
	if err != nil || l.DynamoDBLimits != nil {
		t.Fatalf("default: %+v %v, want no limits", l.DynamoDBLimits, err)
	}
	l, err = config.LoadLocal(testkit.Env(map[string]string{"DYNAMODB_LIMITS": "true"}))
	aws := ddblimits.AsAWS()
	if err != nil || l.DynamoDBLimits == nil {
		t.Fatalf("on: %v", err)
	}
	if c := *l.DynamoDBLimits; !c.PartitionLimits || c.TableWriteUnits != aws.TableWriteUnits || c.TableReadUnits != aws.TableReadUnits ||
		c.Scale != 1 || !c.Conflicts || c.TransactionTime != ddblimits.DefaultTransactionTime ||
		c.InternalErrorRate != 0 || c.UnavailableRate != 0 || c.Latency != 0 {
		t.Fatalf("on: %+v, want what AWS applies to a new on-demand table", c)
	}
	l, err = config.LoadLocal(testkit.Env(map[string]string{
		"DYNAMODB_LIMITS": "true", "DYNAMODB_LIMITS_PARTITION": "false", "DYNAMODB_LIMITS_TABLE_WRITE_UNITS": "0",
		"DYNAMODB_LIMITS_TABLE_READ_UNITS": "30000", "DYNAMODB_LIMITS_SCALE": "0.1", "DYNAMODB_LIMITS_CONFLICTS": "false",
		"DYNAMODB_LIMITS_TRANSACTION_MS": "50", "DYNAMODB_LIMITS_INTERNAL_ERROR_RATE": "0.02", "DYNAMODB_LIMITS_UNAVAILABLE_RATE": "0.01",
		"DYNAMODB_LIMITS_LATENCY_MS": "30", "DYNAMODB_LIMITS_LATENCY_RATE": "0.5",
	}))
	want := ddblimits.Config{TableReadUnits: 30000, Scale: 0.1, TransactionTime: 50 * time.Millisecond,
		InternalErrorRate: 0.02, UnavailableRate: 0.01, Latency: 30 * time.Millisecond, LatencyRate: 0.5}
	if err != nil || !reflect.DeepEqual(*l.DynamoDBLimits, want) {
		t.Fatalf("switches: %+v %v, want %+v", l.DynamoDBLimits, err, want)
	}
	_, err = config.LoadLocal(testkit.Env(map[string]string{
		"DYNAMODB_LIMITS": "true", "DYNAMODB_LIMITS_SCALE": "0", "DYNAMODB_LIMITS_UNAVAILABLE_RATE": "2", "DYNAMODB_LIMITS_TRANSACTION_MS": "soon",
	}))
	for _, name := range []string{"DYNAMODB_LIMITS_SCALE", "DYNAMODB_LIMITS_UNAVAILABLE_RATE", "DYNAMODB_LIMITS_TRANSACTION_MS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("bad %s: %v", name, err)
		}
	}
}
