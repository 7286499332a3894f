package config

import (
	"time"

	"github.com/sandbox-broker/broker/internal/ddblimits"
)

// dynamoDBLimits reads DYNAMODB_LIMITS and, when it is true, its switches
// (docs/configuration.md, "The local stack"); nil when the local stack runs without the
// proxy.
func (r *reader) dynamoDBLimits() *ddblimits.Config {
	if !r.bool("DYNAMODB_LIMITS", false) {
		return nil
	}
	return &ddblimits.Config{
		PartitionLimits:   r.bool("DYNAMODB_LIMITS_PARTITION", true),
		TableWriteUnits:   float64(r.int("DYNAMODB_LIMITS_TABLE_WRITE_UNITS", ddblimits.NewTableWriteUnits, 0, 1_000_000)),
		TableReadUnits:    float64(r.int("DYNAMODB_LIMITS_TABLE_READ_UNITS", ddblimits.NewTableReadUnits, 0, 1_000_000)),
		Scale:             r.float("DYNAMODB_LIMITS_SCALE", 1, 0.001, 1),
		Conflicts:         r.bool("DYNAMODB_LIMITS_CONFLICTS", true),
		TransactionTime:   r.duration("DYNAMODB_LIMITS_TRANSACTION_MS", int(ddblimits.DefaultTransactionTime/time.Millisecond), time.Millisecond, 1, 10_000),
		InternalErrorRate: r.float("DYNAMODB_LIMITS_INTERNAL_ERROR_RATE", 0, 0, 1),
		UnavailableRate:   r.float("DYNAMODB_LIMITS_UNAVAILABLE_RATE", 0, 0, 1),
		Latency:           r.duration("DYNAMODB_LIMITS_LATENCY_MS", 0, time.Millisecond, 0, 60_000),
		LatencyRate:       r.float("DYNAMODB_LIMITS_LATENCY_RATE", 1, 0, 1),
	}
}
