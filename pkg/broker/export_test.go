package broker

import (
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// RunMethod is the name of the JobRunner method a job of the table runs ("" when none).
func RunMethod(j Job) string {
	if j.run == nil {
		return ""
	}
	return testkit.FuncName(j.run)
}

// LeaseMargin is how long a job's lease outlasts its run's deadline.
const LeaseMargin = leaseMargin

// SetAfterListing makes every sync of r call f after reading the CSP listing and before
// reading the pool.
func SetAfterListing(r *JobRunner, f func()) { r.afterListing = f }

// SetAfterMatching makes b's bulk retirements call f between their read and their first
// write.
func SetAfterMatching(b *Broker, f func()) { b.afterMatching = f }

// SetAfterPick makes b's allocations call f with each candidate they pick, before the
// claim.
func SetAfterPick(b *Broker, f func(pool.Sandbox)) { b.afterPick = f }

// ObserveCandidateReads makes b's allocations call f with the shard and the result of
// each candidate page they read.
func ObserveCandidateReads(b *Broker, f func(shard int, listed []pool.Sandbox)) {
	b.afterRead = f
}
