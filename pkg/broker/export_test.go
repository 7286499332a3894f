package broker

import "github.com/sandbox-broker/broker/internal/testkit"

// RunMethod is the name of the JobRunner method a job of the table runs ("" when none).
func RunMethod(j Job) string {
	if j.run == nil {
		return ""
	}
	return testkit.FuncName(j.run)
}

// SetAfterListing makes every sync of r call f after reading the CSP listing and before
// reading the pool.
func SetAfterListing(r *JobRunner, f func()) { r.afterListing = f }
