package broker

import "time"

// Job is one scheduled background job. The CDK stack makes one EventBridge schedule and one
// function per entry, the local stack runs the same job every Every (scaled), and a test
// checks that functions/<Function> and events/<Function>.json exist for each.
type Job struct {
	Name     string
	Schedule string        // EventBridge schedule expression
	Every    time.Duration // the same schedule as an interval
	Function string        // folder under functions/
	// UsesCSP: the job calls the CSP, so its function needs the CSP settings and token.
	UsesCSP bool
}

// Jobs is the job table (ARCHITECTURE §6).
var Jobs = []Job{
	{Name: "sync", Schedule: "rate(10 minutes)", Every: 10 * time.Minute, Function: "sync", UsesCSP: true},
	{Name: "cleanup", Schedule: "rate(5 minutes)", Every: 5 * time.Minute, Function: "cleanup", UsesCSP: true},
	{Name: "expiry", Schedule: "rate(5 minutes)", Every: 5 * time.Minute, Function: "expiry"},
	{Name: "stale-cleanup", Schedule: "rate(1 day)", Every: 24 * time.Hour, Function: "stale-cleanup"},
	// pool-metrics publishes the pool's counts per status as CloudWatch gauges, the values
	// of the pool-low and deletion_failed alarms and of the dashboard.
	{Name: "pool-metrics", Schedule: "rate(5 minutes)", Every: 5 * time.Minute, Function: "pool-metrics"},
}
