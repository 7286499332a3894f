package events_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/events"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// TestAReservationThePoolCannotCoverIsAnEvent: dns-lab reserves 25 seats of a pool of
// 30, six hours ahead. The reservations job's first verdict (covered) is no event; the
// CSP stops listing 10 accounts and two syncs make them stale, so the job finds the
// reservation 5 seats short: one reservation.uncoverable, from DynamoDB Local's stream,
// with the shortfall; a run with nothing new is no event; once the CSP lists them again
// and sync brings them back, one reservation.covered. Both match their schemas.
func TestAReservationThePoolCannotCoverIsAnEvent(t *testing.T) {
	accounts := cspfake.Generate(30, nil)
	w := newWorld(t, accounts)
	w.run(t, "sync")
	start := w.clock.Now().Add(6 * time.Hour)
	r, err := w.pool.CreateReservation(ctx, pool.Reservation{Lab: "dns-lab", Client: "instruqt", Prefix: "lab", Seats: 25,
		StartsAt: start.Unix(), EndsAt: start.Add(3 * time.Hour).Unix(), LeadSeconds: 1800}, pool.Actor{Kind: "admin", Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	w.run(t, "reservations")

	w.faults(t, cspfake.Faults{ListLimit: 20})
	w.run(t, "sync")
	w.run(t, "sync")
	w.run(t, "reservations")
	w.run(t, "reservations") // nothing new
	w.faults(t, cspfake.Faults{})
	w.run(t, "sync")
	w.run(t, "reservations")

	w.drain(t)
	var got []string
	for _, e := range unique(t, w.published(t)) {
		if e.Reservation != nil {
			got = append(got, fmt.Sprintf("%s %s %s/%s short %d of %d", e.Type, e.Reservation.ID, e.Lab, e.Client, e.Reservation.Shortfall, e.Reservation.Seats))
		}
	}
	want := []string{
		fmt.Sprintf("%s %s dns-lab/instruqt short 5 of 25", events.ReservationUncoverable, r.ID),
		fmt.Sprintf("%s %s dns-lab/instruqt short 0 of 25", events.ReservationCovered, r.ID),
	}
	if !slices.Equal(got, want) {
		t.Errorf("reservation events:\n  %q\nwant\n  %q", got, want)
	}
	if n := validate(t, w.eb); n == 0 {
		t.Error("no event to validate")
	}
	pooltest.Check(t, w.pool)
}
