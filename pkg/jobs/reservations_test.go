package jobs_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// The reservations job: an accepted reservation is coverable a day ahead (no alarm); the
// pool shrinks under it (sync strikes sandboxes) and the next run, still ahead of the
// lead time, raises reservation_uncoverable naming the reservation and its shortfall and
// records it on the reservation (the item change the stream carries); at the lead time
// it sets aside what there is and stays short.
func TestReservationsJobAlarmsAheadOfTime(t *testing.T) {
	e := newJobEnv(t, envOptions{accounts: cspfake.Generate(30, nil)})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 30})
	start := e.clock.Now().Add(6 * time.Hour)
	r, err := e.pool.CreateReservation(ctx, pool.Reservation{Lab: "dns-lab", Seats: 25, StartsAt: start.Unix(),
		EndsAt: start.Add(3 * time.Hour).Unix(), LeadSeconds: 1800}, pool.Actor{Kind: "admin", Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	sum := e.run(t, "reservations")
	if sum.Alarm != "" || sum.Counts["short"] != 0 {
		t.Fatalf("a coverable reservation: %+v", sum)
	}
	shrunk := 0
	for s, err := range e.pool.ByStatus(ctx, pool.Available, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if shrunk < 10 {
			if _, err := e.pool.MarkStale(ctx, s, pool.Actor{Kind: "job", Name: "sync"}); err != nil {
				t.Fatal(err)
			}
			shrunk++
		}
	}
	sum = e.run(t, "reservations")
	if sum.Alarm != jobs.AlarmReservationUncoverable || len(sum.Errors) != 1 || !strings.Contains(sum.Errors[0], r.ID+" is 5 seats short") {
		t.Fatalf("after the pool shrank to 20: %+v", sum)
	}
	if cur, _ := e.pool.Reservation(ctx, r.ID); cur.Coverage != pool.CoverageShort || cur.Shortfall != 5 {
		t.Fatalf("the reservation records %q short %d", cur.Coverage, cur.Shortfall)
	}
	e.clock.Advance(5*time.Hour + 31*time.Minute)
	sum = e.run(t, "reservations")
	wantCounts(t, sum, map[string]int{"set_aside": 20, "short": 1})
	if sum.Alarm != jobs.AlarmReservationUncoverable {
		t.Fatalf("at the lead time, 5 short: %+v", sum)
	}
	pooltest.Check(t, e.pool)
}
