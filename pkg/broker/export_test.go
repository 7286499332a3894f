package broker

// SetAfterListing makes every sync of r call f after reading the CSP listing and before
// reading the pool.
func SetAfterListing(r *JobRunner, f func()) { r.afterListing = f }
