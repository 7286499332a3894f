package broker

import (
	"context"
	"time"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// SetAfterMatching makes b's bulk retirements call f between their read and their first
// write.
func SetAfterMatching(b *Broker, f func()) { b.afterMatching = f }

// SetDrainClock makes b's drain cache read the clock now instead of time.Now.
func SetDrainClock(b *Broker, now func() time.Time) { b.drains.now = now }

// SetAfterDeal makes b's dealer call f with each candidate it deals, before the claim.
func SetAfterDeal(b *Broker, f func(pool.Sandbox)) { b.dealer.afterDeal = f }

// ObserveCandidateReads makes b's dealer call f with the shard and the result of each
// candidate page it reads.
func ObserveCandidateReads(b *Broker, f func(shard int, listed []pool.Sandbox)) {
	read := b.dealer.read
	b.dealer.read = func(ctx context.Context, shard int, prefix string) ([]pool.Sandbox, error) {
		listed, err := read(ctx, shard, prefix)
		f(shard, listed)
		return listed, err
	}
}

// SetLabSettingsClock makes b's lab settings cache read the clock now instead of time.Now.
func SetLabSettingsClock(b *Broker, now func() time.Time) { b.labs.now = now }
