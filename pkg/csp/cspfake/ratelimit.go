package cspfake

import (
	"math"
	"strconv"
	"time"
)

// bucket is the delete rate limiter: rate tokens per second, up to burst.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *bucket) reset(rate float64, burst int, now time.Time) {
	*b = bucket{rate: rate, burst: float64(max(burst, 1)), last: now}
	b.tokens = b.burst
}

// take spends a token, or says how long until one is available.
func (b *bucket) take(now time.Time) (bool, time.Duration) {
	if b.rate <= 0 {
		return true, 0
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(b.burst, b.tokens+elapsed*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// retryAfterSeconds rounds up, so a client that waits as told finds a token.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
