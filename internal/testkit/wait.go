package testkit

import (
	"context"
	"testing"
	"time"
)

// reportReserve is kept back from the test binary's -timeout, so a wait that runs out
// fails its test with its own message and output instead of the binary's timeout panic.
const reportReserve = 30 * time.Second

// Patience is the context of a wait for something that must happen however busy the
// machine is (a server getting ready, a process exiting, a call arriving): it has no
// deadline of its own, only the test binary's -timeout less reportReserve. A fixed limit
// would make the verdict depend on the machine's speed; this one only catches a hang.
func Patience(t *testing.T) context.Context {
	ctx := t.Context()
	deadline, ok := t.Deadline()
	if !ok {
		return ctx
	}
	ctx, cancel := context.WithDeadline(ctx, deadline.Add(-reportReserve))
	t.Cleanup(cancel)
	return ctx
}

// Eventually polls cond until it holds, first every millisecond, then less often (up to
// every 50 ms, for a cond that makes calls); the test fails, naming what it waited for,
// when Patience runs out.
func Eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	ctx := Patience(t)
	for pause := time.Millisecond; !cond(); pause = min(2*pause, 50*time.Millisecond) {
		select {
		case <-ctx.Done():
			t.Fatalf("still waiting for %s when the test binary's timeout was near", what)
		case <-time.After(pause):
		}
	}
}

// DeadlineOnly is a context that reports deadline but never ends. Code that must stop
// before a deadline on its own (not sleep into it and be cut off) keeps going past it
// under this context, whatever the machine's speed: a test sees that in what the code did,
// without timing it.
func DeadlineOnly(deadline time.Time) context.Context {
	return deadlineOnly{context.Background(), deadline}
}

type deadlineOnly struct {
	context.Context
	deadline time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.deadline, true }
