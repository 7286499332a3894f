package jobs

import (
	"math/rand/v2"
	"time"
)

// deleteBackoff is the wait after a sandbox's (attempts+1)-th failure: "full jitter", uniform
// in [0, min(cap, base·2^attempts)), base and cap scaled by JOB_INTERVAL_SCALE. The jitter
// spreads a burst of failures (one CSP outage) over the window instead of retrying them
// all at the same moment.
func (r *Runner) deleteBackoff(attempts int) time.Duration {
	ceiling, limit := r.cfg.Scale(r.cfg.CleanupBackoffBase), r.cfg.Scale(r.cfg.CleanupBackoffCap)
	for range attempts {
		if ceiling >= limit {
			break
		}
		ceiling *= 2
	}
	ceiling = min(ceiling, limit)
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}
