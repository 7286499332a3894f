package csp

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/sandbox-broker/broker/pkg/breaker"
)

const (
	backoffBase = 200 * time.Millisecond
	backoffCap  = 2 * time.Second
)

// call runs one idempotent CSP operation through the breaker, with bounded
// retries. attempt receives a context bounded by both RequestTimeout and
// ctx, and must finish with the response body before returning.
func (c *Client) call(ctx context.Context, op string, attempt func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done, err := c.breaker.Allow()
	if err != nil {
		return err
	}
	result := breaker.Ignored
	// Deferred so a half-open probe slot can never leak.
	defer func() { done(result) }()

	err = c.retry(ctx, op, attempt)
	result = classify(ctx, err)
	return err
}

// classify maps a call's final error onto the breaker's single failure rule.
// Answers that prove the CSP is up (2xx, 4xx, 429) are successes. A
// deadline, ours or the caller's, that expires while the CSP is answering
// is a timeout and a failure; only a caller's cancellation says nothing
// about the CSP.
func classify(ctx context.Context, err error) breaker.Outcome {
	switch {
	case err == nil:
		return breaker.Success
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return breaker.Ignored
	case isFailure(err):
		return breaker.Failure
	}
	return breaker.Success
}

func (c *Client) retry(ctx context.Context, op string, attempt func(context.Context) error) error {
	for n := 1; ; n++ {
		err := c.runAttempt(ctx, attempt)
		if err == nil || n >= c.maxAttempts || !isFailure(err) || ctx.Err() != nil {
			return err
		}
		wait := backoff(n)
		// Sleeping into the caller's deadline would only turn a real error
		// into a context error and waste the caller's remaining time.
		if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) <= wait {
			return err
		}
		c.log.Debug("csp attempt failed, retrying", "op", op, "attempt", n, "backoff", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (c *Client) runAttempt(ctx context.Context, attempt func(context.Context) error) error {
	actx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()
	return attempt(actx)
}

// backoff is "full jitter": uniform in [0, min(cap, base·2^(n-1))), which
// spreads the retries of concurrent callers hit by the same CSP blip.
// n never exceeds maxMaxAttempts, so the shift cannot overflow.
func backoff(n int) time.Duration {
	return rand.N(min(backoffCap, backoffBase<<(n-1)))
}
