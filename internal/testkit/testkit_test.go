package testkit_test

import (
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
)

// Thaw moves the wall clock and leaves the monotonic reading: comparisons on the
// monotonic reading see no time pass, the wall clock sees all of it, and a later Advance
// moves both.
func TestThawMovesTheWallClockOnly(t *testing.T) {
	c := testkit.NewMonotonicClock()
	before := c.Now()
	c.Thaw(time.Hour)
	after := c.Now()
	if after.Sub(before) != 0 || after.After(before) || after.Round(0).Sub(before.Round(0)) != time.Hour {
		t.Fatalf("thawed: monotonic %s, wall %s; want 0 and 1h", after.Sub(before), after.Round(0).Sub(before.Round(0)))
	}
	c.Advance(time.Minute)
	if d := c.Now().Sub(before); d != time.Minute {
		t.Fatalf("advanced after the thaw: monotonic %s, want 1m", d)
	}
}

// A clock without a monotonic reading cannot thaw: the panic says so, rather than a test
// proving nothing.
func TestThawNeedsAMonotonicReading(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Thaw of a clock without a monotonic reading did not panic")
		}
	}()
	testkit.NewClock(time.Unix(1_800_000_000, 0)).Thaw(time.Hour)
}
