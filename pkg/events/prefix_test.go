package events_test

import (
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/events"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// TestOnePrefixDrainingWhileAnotherIsFull: lab-dns is drained by a rush while lab-web
// stays full. The pool-metrics job's signals, read back from the table and as events from
// DynamoDB Local's stream: lab-dns's forecast falls below the lead time first (12
// allocations in the 15-minute window: 0.8 a minute, 18 left, 22.5 minutes), then its
// level below the low-water mark (26 allocations, 4 left), each one pool.prefix_low; a run
// with nothing new is no event; once sync brings 10 more and the rush is out of the window,
// pool.prefix_recovered. lab-web is never low and has no event. Every event matches its
// schema.
func TestOnePrefixDrainingWhileAnotherIsFull(t *testing.T) {
	w := newWorld(t, cspfake.Generate(60, []string{"lab-dns", "lab-web"}))
	w.run(t, "sync")
	w.run(t, "pool-metrics")
	signal := func(prefix string) pool.PrefixSignal {
		t.Helper()
		all, err := w.pool.PrefixSignals(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(all, func(s pool.PrefixSignal) bool { return s.Prefix == prefix })
		if i < 0 {
			t.Fatalf("no signal of %s in %+v", prefix, all)
		}
		return all[i]
	}
	rush := func(from, to int) {
		w.clock.Advance(time.Minute)
		for i := from; i < to; i++ {
			w.allocate(t, fmt.Sprintf("dns-student-%02d", i), "lab-dns", "dns-lab")
		}
		w.clock.Advance(time.Minute)
		w.run(t, "pool-metrics")
	}

	rush(0, 12)
	dns := signal("lab-dns")
	if dns.Available != 18 || dns.PerMinute != 0.8 || math.Abs(dns.MinutesToEmpty-22.5) > 1e-9 || !slices.Equal(dns.Reasons, []string{pool.EmptiesTooSoon}) {
		t.Errorf("lab-dns after 12 allocations: %+v", dns)
	}
	rush(12, 26)
	dns = signal("lab-dns")
	if dns.Available != 4 || !slices.Equal(dns.Reasons, []string{pool.BelowLowWater, pool.EmptiesTooSoon}) {
		t.Errorf("lab-dns after 26 allocations: %+v", dns)
	}
	w.run(t, "pool-metrics") // nothing new
	if web := signal("lab-web"); web.Available != 30 || web.PerMinute != 0 || web.Empties() || web.Low() {
		t.Errorf("lab-web, never allocated: %+v", web)
	}

	w.clock.Advance(20 * time.Minute)
	w.csp.Seed(cspfake.Generate(80, []string{"lab-dns", "lab-web"})[60:]...)
	w.run(t, "sync")
	w.run(t, "pool-metrics")
	if dns = signal("lab-dns"); dns.Available != 14 || dns.Low() {
		t.Errorf("lab-dns after sync brought 10 and the rush left the window: %+v", dns)
	}

	w.drain(t)
	evs := unique(t, w.published(t))
	var got []string
	for _, e := range evs {
		if e.Prefix != nil {
			got = append(got, fmt.Sprintf("%s %s %v", e.Type, e.Prefix.Prefix, e.Prefix.Reasons))
		}
	}
	want := []string{
		fmt.Sprintf("%s lab-dns [%s]", events.PrefixLow, pool.EmptiesTooSoon),
		fmt.Sprintf("%s lab-dns [%s %s]", events.PrefixLow, pool.BelowLowWater, pool.EmptiesTooSoon),
		fmt.Sprintf("%s lab-dns []", events.PrefixRecovered),
	}
	if !slices.Equal(got, want) {
		t.Errorf("prefix events:\n  %q\nwant\n  %q", got, want)
	}
	inOrder(t, evs)
	if n := validate(t, w.eb); n == 0 {
		t.Error("no event to validate")
	}
	pooltest.Check(t, w.pool)
}
