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
	now            func() time.Time
	drains         *drainCache
	dealer         *dealer
}

// New returns a Broker with the lab duration and grace from configuration.
func New(p *pool.Pool, cfg config.Pool) *Broker {
	return &Broker{pool: p, labDuration: cfg.LabDuration, grace: cfg.Grace,
		labExtension: cfg.LabExtension, maxLabDuration: cfg.MaxLabDuration, now: time.Now,
		drains: &drainCache{pool: p}, dealer: newDealer(p)}
}

// WithClock returns a copy of b that reads time from now (tests of time boundaries).
func (b *Broker) WithClock(now func() time.Time) *Broker {
	c := *b
	c.now = now
	return &c
}
