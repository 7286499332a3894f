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
	drains       *drainCache
	labs         *labSettingsCache
	dealer       *dealer
	// afterMatching, when set, is called between a bulk retirement's read and its first
	// write (tests).
	afterMatching func()
}

// New returns a Broker with the lab duration and grace from configuration.
func New(p *pool.Pool, cfg config.Pool) *Broker {
	return &Broker{pool: p, labDuration: cfg.LabDuration, grace: cfg.Grace,
		labExtension: cfg.LabExtension, maxLabDuration: cfg.MaxLabDuration,
		// A configuration built in code (tests) may leave it zero: a student always has one.
		studentLimit: max(cfg.StudentMaxLiveAllocations, 1),
		drains:       &drainCache{pool: p}, labs: &labSettingsCache{pool: p}, dealer: newDealer(p)}
}

// now is the pool's clock (pool.Options.Now), so the broker and the pool it writes to
// never disagree about the time.
func (b *Broker) now() time.Time { return b.pool.Now() }
