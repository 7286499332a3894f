package local

import (
	"sync"
	"time"

	"github.com/sandbox-broker/broker/pkg/api"
)

// tokenBucket is API Gateway's throttle algorithm: it starts full with Burst tokens,
// refills at Rate per second up to Burst, and each request takes one or is throttled.
type tokenBucket struct {
	limit  api.Throttle
	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newTokenBucket(limit api.Throttle, now time.Time) *tokenBucket {
	return &tokenBucket{limit: limit, tokens: float64(limit.Burst), last: now}
}

// take reports whether a request at now may pass, and if so spends its token.
func (b *tokenBucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = min(float64(b.limit.Burst), b.tokens+elapsed*float64(b.limit.Rate))
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
