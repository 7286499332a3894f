package jobs

import "github.com/sandbox-broker/broker/internal/testkit"

// WorkMethod is the name of the Runner method a job of the table runs ("" when none).
func WorkMethod(j Job) string {
	if j.work == nil {
		return ""
	}
	return testkit.FuncName(j.work)
}

// LeaseMargin is how long a job's lease outlasts its run's deadline.
const LeaseMargin = leaseMargin

// SetAfterListing makes every sync of r call f after reading the CSP listing and before
// reading the pool.
func SetAfterListing(r *Runner, f func()) { r.afterListing = f }
