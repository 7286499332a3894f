package config

import "time"

// Pool is what every function touching the table needs.
type Pool struct {
	TableName string
	// Endpoint points the SDK at DynamoDB Local or another endpoint; empty means AWS.
	Endpoint string
	Region   string
	// LabDuration is stamped on each allocation as expires_at; Grace is added before expiry.
	LabDuration time.Duration
	Grace       time.Duration
	HistoryTTL  time.Duration
}

// LoadPool reads TABLE_NAME, DYNAMODB_ENDPOINT, AWS_REGION, LAB_DURATION_HOURS,
// GRACE_PERIOD_MINUTES and HISTORY_TTL_DAYS.
func LoadPool(env Env) (Pool, error) {
	r := &reader{env: env}
	p := Pool{
		TableName:   r.required("TABLE_NAME"),
		Endpoint:    r.str("DYNAMODB_ENDPOINT", ""),
		Region:      r.str("AWS_REGION", "us-east-1"),
		LabDuration: r.duration("LAB_DURATION_HOURS", 48, time.Hour, 1, 24*30),
		Grace:       r.duration("GRACE_PERIOD_MINUTES", 30, time.Minute, 0, 24*60),
		HistoryTTL:  r.duration("HISTORY_TTL_DAYS", 30, 24*time.Hour, 1, 3650),
	}
	return p, r.err()
}
