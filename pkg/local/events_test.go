package local

import (
	"bufio"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/internal/eventcheck"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/events"
)

// TestLocalStackWritesTheEventsATrackCauses: the stack polls DynamoDB Local's stream with
// the publish-events handler and writes each event to EVENTS_FILE, which the banner
// names: the first sync's six additions, then a student's allocation and release, made
// over HTTP, each once and valid against its schema; the replay route answers from the
// stack's dead-letter queue, empty here.
func TestLocalStackWritesTheEventsATrackCauses(t *testing.T) {
	file := t.TempDir() + "/events.jsonl"
	s, banner, _ := startStack(t, map[string]string{"EVENTS_FILE": file})
	if !strings.Contains(banner, "Events") || !strings.Contains(banner, file) {
		t.Errorf("the banner does not say where the events go:\n%s", banner)
	}
	c := client{t, s.URL}
	h := track(s.TrackToken, "student-7")
	h.Set("X-Instruqt-Track-ID", "dns-lab")
	a := c.do(http.MethodPost, "/v1/allocate", h, nil)
	wantStatus(t, "allocate", a, http.StatusCreated, "")
	var alloc struct {
		SandboxID string `json:"sandbox_id"`
	}
	if err := json.Unmarshal(a.body, &alloc); err != nil {
		t.Fatal(err)
	}
	wantStatus(t, "release", c.do(http.MethodPost, "/v1/sandboxes/"+alloc.SandboxID+"/mark-for-deletion", track(s.TrackToken, "student-7"), nil), http.StatusOK, "")

	var got []events.Envelope
	testkit.Eventually(t, "the events of the seed, the allocation and the release", func() bool {
		got = readEvents(t, file)
		return count(got, events.Added) >= 6 && count(got, events.Released) >= 1
	})
	if count(got, events.Added) != 6 || count(got, events.Allocated) != 1 || count(got, events.Released) != 1 {
		t.Fatalf("events in %s: %d added, %d allocated, %d released; want 6, 1, 1", file,
			count(got, events.Added), count(got, events.Allocated), count(got, events.Released))
	}
	for _, e := range got {
		if e.Detail.Type == events.Allocated && (e.Detail.Sandbox.ID != alloc.SandboxID || e.Detail.Student != "student-7" ||
			e.Detail.Client != TrackClient || e.Detail.Lab != "dns-lab") {
			t.Errorf("allocated: %+v", e.Detail)
		}
		raw, _ := json.Marshal(e)
		if err := eventcheck.Validate(raw); err != nil {
			t.Error(err)
		}
	}

	admin := http.Header{}
	admin.Set("Authorization", "Bearer "+s.AdminToken)
	r := c.do(http.MethodPost, "/v1/admin/events/replay", admin, nil)
	wantStatus(t, "replay", r, http.StatusOK, "")
	var replay wire.EventReplay
	if err := json.Unmarshal(r.body, &replay); err != nil || replay != (wire.EventReplay{}) {
		t.Errorf("replay of an empty dead-letter queue: %s", r.body)
	}
}

func readEvents(t *testing.T, path string) []events.Envelope {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []events.Envelope
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e events.Envelope
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: a line that is no event: %v", path, err)
		}
		out = append(out, e)
	}
	return out
}

func count(evs []events.Envelope, ty events.Type) int {
	n := 0
	for _, e := range evs {
		if e.Detail.Type == ty {
			n++
		}
	}
	return n
}
