package broker

import (
	"time"

	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// Broker runs the use cases against one pool.
type Broker struct {
	pool        *pool.Pool
	labDuration time.Duration
	grace       time.Duration
	// labExtension and maxLabDuration bound Extend.
	labExtension   time.Duration
	maxLabDuration time.Duration
	// studentLimit is how many live allocations a student holds at most (owner slots).
	studentLimit int
	labs         *labSettingsCache
	// afterPick, when set, is called with each candidate an allocation picks, before its
	// claim (tests).
	afterPick func(pool.Sandbox)
	// afterRead, when set, is called with the shard and the result of each candidate page
	// an allocation reads (tests).
	afterRead func(shard int, listed []pool.Sandbox)
	// afterMatching, when set, is called between a bulk retirement's read and its first
	// write (tests).
	afterMatching func()
}

// New returns a Broker with the lab duration and grace from configuration.
func New(p *pool.Pool, cfg config.Pool) *Broker {
	return &Broker{pool: p, labDuration: cfg.LabDuration, grace: cfg.Grace,
		labExtension: cfg.LabExtension, maxLabDuration: cfg.MaxLabDuration,
		// A configuration built in code (tests) may leave it zero: a student always has one.
		studentLimit: max(cfg.StudentMaxLiveAllocations, 1), labs: &labSettingsCache{pool: p}}
}

// now is the pool's clock (pool.Options.Now), so the broker and the pool it writes to
// never disagree about the time.
func (b *Broker) now() time.Time { return b.pool.Now() }
