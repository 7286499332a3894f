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
