package broker

import (
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

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

// SetLabSettingsClock makes b's lab settings cache read the clock now instead of time.Now.
func SetLabSettingsClock(b *Broker, now func() time.Time) { b.labs.now = now }
