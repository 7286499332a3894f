package jobs

import (
	"context"
	"fmt"
	"time"
)

// Job is one scheduled background job. Its name is also its function's folder under
// functions/ and its sample events/<Name>.json. The CDK stack makes one EventBridge
// schedule (Schedule) and one function (with Timeout) per entry, and the local stack runs
// the same job every Every (scaled) with the same Timeout.
type Job struct {
	Name string
	// Every is the job's interval: the one source of its schedule and its timeout.
	Every time.Duration
	// UsesCSP: the job calls the CSP, so its function needs the CSP settings and token.
	UsesCSP bool
	// UsesNIOSXaaS: the job runs the NIOSXaaS pre-delete step when NIOSXAAS_ENABLED, so
	// its function alone gets the NIOSXaaS settings and may read their secret.
	UsesNIOSXaaS bool
	// UsesAPIGateway: the job keeps API Gateway's usage plans in step with the tokens
	// secret, so its function alone gets the REST API's id and stage and may read the
	// tokens secret and manage API keys and usage plans. The local stack does not run it:
	// its gateway emulator enforces the clients' limits itself.
	UsesAPIGateway bool
	// work is what one run of the job does, under its lease (Runner.RunWithID).
	work func(*Runner, context.Context, *runState) error
}

// maxRunTime bounds every run: the CSP request timeout must fit many times over, and a
// run must end well before Lambda's 15-minute ceiling.
const maxRunTime = 5 * time.Minute

// Table is the job table (docs/architecture.md §6). Adding a job: README.md, "Add a job";
// `make check` names what is missing.
var Table = []Job{
	{Name: "sync", Every: 10 * time.Minute, UsesCSP: true, work: (*Runner).sync},
	{Name: "cleanup", Every: 5 * time.Minute, UsesCSP: true, UsesNIOSXaaS: true, work: (*Runner).cleanup},
	{Name: "expiry", Every: 5 * time.Minute, work: (*Runner).expire},
	{Name: "stale-cleanup", Every: 24 * time.Hour, work: (*Runner).removeStale},
	// pool-metrics publishes the pool's counts per status as CloudWatch gauges, the values
	// of the pool-low and deletion_failed alarms and of the dashboard.
	{Name: "pool-metrics", Every: 5 * time.Minute, work: (*Runner).publishPoolMetrics},
	// usage-plans gives each client of the tokens secret its API Gateway usage plan
	// (docs/operations.md, "Usage plans per client").
	{Name: "usage-plans", Every: 5 * time.Minute, UsesAPIGateway: true, work: (*Runner).reconcileUsagePlans},
	// reservations sets seats aside from a reservation's lead time, returns them at its
	// end or cancellation, and checks the coverage of the upcoming ones; a minute bounds
	// how late a lead time is honoured (docs/architecture.md §5, "Reservations").
	{Name: "reservations", Every: time.Minute, work: (*Runner).keepReservations},
}

// Named finds a job of the table.
func Named(name string) (Job, bool) {
	for _, j := range Table {
		if j.Name == name {
			return j, true
		}
	}
	return Job{}, false
}

// Schedule is the EventBridge rate expression of Every, in the largest whole unit:
// "rate(10 minutes)", "rate(1 day)".
func (j Job) Schedule() string {
	n, unit := int64(j.Every/time.Minute), "minute"
	switch {
	case j.Every%(24*time.Hour) == 0:
		n, unit = int64(j.Every/(24*time.Hour)), "day"
	case j.Every%time.Hour == 0:
		n, unit = int64(j.Every/time.Hour), "hour"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("rate(%d %s)", n, unit)
}

// Timeout is how long one run may take, in Lambda and locally: under the interval, so a
// run ends before the next one is due, and at most maxRunTime.
func (j Job) Timeout() time.Duration {
	return min(j.Every*9/10, maxRunTime)
}
