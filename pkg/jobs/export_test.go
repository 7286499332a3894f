package jobs

// LeaseMargin is how long a job's lease outlasts its run's deadline.
const LeaseMargin = leaseMargin

// SetAfterListing makes every sync of r call f after reading the CSP listing and before
// reading the pool.
func SetAfterListing(r *Runner, f func()) { r.afterListing = f }
