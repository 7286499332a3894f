package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// The profile routes: PUT validates like configuration and saves; GET lists; the lab's
// allocation stamps its terms (admin inspect shows them) and its 409 carries the
// profile's message; DELETE removes it, and a second DELETE is 404 PROFILE_NOT_FOUND.
func TestProfileRoutes(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 1)
	for body, want := range map[string]string{
		``:                                     "The body must be a profile",
		`{"lab":"x","extra":1}`:                "The body must be a profile",
		`{}`:                                   "needs a lab, a prefix or both",
		`{"lab":"x","lab_duration_minutes":5}`: "lab_duration_minutes must be from 10",
		`{"lab":"x","student_limit":99}`:       "student_limit must be from 1 to 20",
		`{"lab":"` + strings.Repeat("x", 129) + `"}`: "lab must be at most 128",
	} {
		ev := adminEvent(t, "admin-put-profile", nil, nil)
		ev.Body = body
		if d := wantError(t, f.call(t, ev), http.StatusBadRequest, CodeValidation); !strings.Contains(d.Message, want) {
			t.Errorf("PUT %s: %q, want it to say %q", body, d.Message, want)
		}
	}
	ev := adminEvent(t, "admin-put-profile", nil, nil)
	ev.Body = `{"lab":"dns-basics","prefix":"lab","lab_duration_minutes":120,"no_sandbox_message":"The DNS workshop is full"}`
	put := f.call(t, ev)
	if p := decode[wire.Profile](t, put.Body); put.StatusCode != http.StatusOK || p.LabDurationMinutes != 120 || *p.UpdatedBy != "ops" {
		t.Fatalf("PUT profile: %d %s", put.StatusCode, put.Body)
	}
	if l := decode[wire.Profiles](t, f.call(t, adminEvent(t, "admin-list-profiles", nil, nil)).Body); len(l.Profiles) != 1 || l.Profiles[0].Lab != "dns-basics" {
		t.Fatalf("GET profiles: %+v", l)
	}
	got := decode[allocationBody](t, f.call(t, event(t, "allocate", student("s1"), nil)).Body)
	if got.ExpiresAt-got.AllocatedAt != 7200 {
		t.Fatalf("allocated for %d s, want the profile's 2 h", got.ExpiresAt-got.AllocatedAt)
	}
	detail := decode[wire.SandboxDetail](t, f.call(t, adminEvent(t, "admin-get-sandbox", map[string]string{"id": got.SandboxID}, nil)).Body)
	if detail.Sandbox.Profile == nil || *detail.Sandbox.Profile != `lab="dns-basics" prefix="lab"` || detail.Sandbox.MaxExpiresAt == nil {
		t.Fatalf("inspect shows profile %v, max_expires_at %v", detail.Sandbox.Profile, detail.Sandbox.MaxExpiresAt)
	}
	if d := wantError(t, f.call(t, event(t, "allocate", student("s2"), nil)), http.StatusConflict, CodeNoSandboxes); d.Message != "The DNS workshop is full" || d.RetryAfter == nil {
		t.Fatalf("the lab's 409: %+v", d)
	}
	wantError(t, f.call(t, adminEvent(t, "admin-delete-profile", nil, nil)), http.StatusBadRequest, CodeValidation)
	del := f.call(t, adminEvent(t, "admin-delete-profile", nil, qs("lab", "dns-basics", "prefix", "lab")))
	if k := decode[wire.ProfileKey](t, del.Body); del.StatusCode != http.StatusOK || k.Lab != "dns-basics" || k.Prefix != "lab" {
		t.Fatalf("DELETE profile: %d %s", del.StatusCode, del.Body)
	}
	wantError(t, f.call(t, adminEvent(t, "admin-delete-profile", nil, qs("lab", "dns-basics", "prefix", "lab"))), http.StatusNotFound, CodeProfileNotFound)
	pooltest.Check(t, f.pool)
}

// The reservation routes: the dry run gives the numbers; a reservation the pool cannot
// cover is refused with them (409 RESERVATION_UNCOVERABLE) and created with force=true;
// GET lists it; DELETE cancels it, and an unknown ID is 404.
func TestReservationRoutes(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 3)
	starts, ends := "1900000000", "1900010800"
	capacity := f.call(t, adminEvent(t, "admin-capacity", nil, qs("prefix", "lab", "seats", "5", "starts_at", starts, "ends_at", ends)))
	if c := decode[wire.Capacity](t, capacity.Body); capacity.StatusCode != http.StatusOK || c.Available != 3 || c.Shortfall != 2 || c.Coverable {
		t.Fatalf("capacity: %d %s", capacity.StatusCode, capacity.Body)
	}
	wantError(t, f.call(t, adminEvent(t, "admin-capacity", nil, qs("seats", "5"))), http.StatusBadRequest, CodeValidation)
	ev := adminEvent(t, "admin-create-reservation", nil, nil)
	ev.Body = `{"lab":"dns-basics","prefix":"lab","seats":5,"starts_at":` + starts + `,"ends_at":` + ends + `,"lead_minutes":30,"overflow":true}`
	d := wantError(t, f.call(t, ev), http.StatusConflict, CodeReservationUncoverable)
	for _, want := range []string{"5 seats", "3 available", "2 short", "force=true"} {
		if !strings.Contains(d.Message, want) {
			t.Errorf("refusal %q does not say %q", d.Message, want)
		}
	}
	ev = adminEvent(t, "admin-create-reservation", nil, qs("force", "true"))
	ev.Body = `{"lab":"dns-basics","prefix":"lab","seats":5,"starts_at":` + starts + `,"ends_at":` + ends + `,"lead_minutes":30,"overflow":true}`
	created := f.call(t, ev)
	rc := decode[wire.ReservationCreated](t, created.Body)
	if created.StatusCode != http.StatusCreated || rc.Reservation.State != "scheduled" || rc.Capacity.Shortfall != 2 {
		t.Fatalf("forced: %d %s", created.StatusCode, created.Body)
	}
	if l := decode[wire.Reservations](t, f.call(t, adminEvent(t, "admin-list-reservations", nil, nil)).Body); len(l.Reservations) != 1 || l.Reservations[0].LeadMinutes != 30 {
		t.Fatalf("list: %+v", l)
	}
	cancelled := f.call(t, adminEvent(t, "admin-cancel-reservation", map[string]string{"id": rc.Reservation.ID}, nil))
	if r := decode[wire.Reservation](t, cancelled.Body); cancelled.StatusCode != http.StatusOK || r.State != "cancelled" {
		t.Fatalf("cancel: %d %s", cancelled.StatusCode, cancelled.Body)
	}
	wantError(t, f.call(t, adminEvent(t, "admin-cancel-reservation", map[string]string{"id": "123"}, nil)), http.StatusNotFound, CodeReservationNotFound)
	pooltest.Check(t, f.pool)
}
