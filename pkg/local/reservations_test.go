package local

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/eventcheck"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/events"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// The workshop day of docs/operations.md over HTTP, through the gateway, the authorizer
// and the functions in Lambda's instance model, with the jobs run as the stack's schedule
// runs them (runScheduled). The same outcomes are proved in process in pkg/broker
// (reservations_test.go, profiles_test.go); here they are proved through what AWS runs.

// pin makes the stack's clock read at until the test pins it again.
func (c *clock) pin(at time.Time) { c.pinned.Store(&at) }

// invokeScheduled invokes job's function as its schedule does (Lambda's asynchronous
// invoke of a scheduled event, the run under the job's lease) and returns the run's
// summary. A run skipped because a scheduled run of the same job held the lease is invoked
// again.
func invokeScheduled(ctx context.Context, s *Stack, job string) (jobs.Summary, error) {
	j, ok := s.scheduled[job]
	if !ok {
		return jobs.Summary{}, fmt.Errorf("the stack runs no job %s", job)
	}
	for {
		sum, err := j.fn.invokeQueued(ctx, scheduledEvent, j.scale)
		if err != nil || sum.Outcome != jobs.OutcomeSkipped {
			return sum, err
		}
		select {
		case <-ctx.Done():
			return sum, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func runScheduled(t *testing.T, s *Stack, job string) jobs.Summary {
	t.Helper()
	sum, err := invokeScheduled(testkit.Patience(t), s, job)
	if err != nil {
		t.Fatalf("%s: %v (%+v)", job, err, sum)
	}
	return sum
}

// holdSeats runs the reservations job, as its schedule does, on reservation id, holding
// from its lead time: the job (this run, or a scheduled one before it) sets its seats
// aside, covered.
func holdSeats(t *testing.T, s adminStack, id string, seats int) {
	t.Helper()
	runScheduled(t, s.Stack, "reservations")
	if r := reservationByID(t, s, id); r.SetAside != seats || r.Coverage != pool.CoverageOK {
		t.Fatalf("the reservation at its lead time: %+v; want its %d seats set aside, covered", r, seats)
	}
	pooltest.Check(t, s.pool)
}

// adminSend calls an admin route with body as JSON.
func adminSend(s adminStack, method, path string, body any) answer {
	s.c.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		s.c.t.Fatal(err)
	}
	return s.c.do(method, path, bearer(s.AdminToken), b)
}

// reserve creates r through the admin API, which must accept it.
func reserve(t *testing.T, s adminStack, r wire.Reservation) wire.ReservationCreated {
	t.Helper()
	a := adminSend(s, http.MethodPost, "/v1/admin/reservations", r)
	wantStatus(t, "create reservation", a, http.StatusCreated, "")
	var created wire.ReservationCreated
	if err := json.Unmarshal(a.body, &created); err != nil {
		t.Fatal(err)
	}
	return created
}

// reservationByID reads reservation id from GET /v1/admin/reservations.
func reservationByID(t *testing.T, s adminStack, id string) wire.Reservation {
	t.Helper()
	all := adminCall[wire.Reservations](t, s, http.MethodGet, "/v1/admin/reservations")
	i := slices.IndexFunc(all.Reservations, func(r wire.Reservation) bool { return r.ID == id })
	if i < 0 {
		t.Fatalf("reservation %s is not listed: %+v", id, all)
	}
	return all.Reservations[i]
}

// setAside counts the sandboxes still set aside for reservation id (its AvailableIndex
// partition), and those of outcomes that carry its mark.
func setAside(t *testing.T, s adminStack, id string, out []outcome) (held, claimed int) {
	t.Helper()
	r, err := s.pool.Reservation(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if held, err = s.pool.CountSetAside(t.Context(), r, ""); err != nil {
		t.Fatal(err)
	}
	for _, o := range out {
		if o.sandbox != "" && markOf(t, s, o.sandbox) == id {
			claimed++
		}
	}
	return held, claimed
}

// markOf is the reservation a sandbox was set aside for ("" for the general pool's).
func markOf(t *testing.T, s adminStack, id string) string {
	t.Helper()
	sb, err := s.pool.Get(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return sb.Reservation
}

// workshopAt is a reservation of seats of "lab" for dns-lab starting 10 minutes after now,
// for three hours, set aside from 30 minutes before its start: the reservations job holds
// seats for it from its first run.
func workshopAt(now time.Time, seats int, overflow bool) wire.Reservation {
	return wire.Reservation{Lab: "dns-lab", Prefix: "lab", Seats: seats, StartsAt: now.Add(10 * time.Minute).Unix(),
		EndsAt: now.Add(3*time.Hour + 10*time.Minute).Unix(), LeadMinutes: 30, Overflow: overflow}
}

func students(lab string, n int) []arrival {
	out := make([]arrival, n)
	for i := range out {
		out[i] = arrival{student: fmt.Sprintf("%s-student-%d", lab, i), lab: lab}
	}
	return out
}

// 150 seats of "lab" are set aside for dns-lab; then dns-lab's 150 students and k8s-lab's
// 250 rush the pool of 250 together, over HTTP, each lab named by the X-Instruqt-Track-ID
// its Instruqt scripts send. Every dns-lab student gets a sandbox set aside for it;
// k8s-lab gets exactly the other 100 and 150 answer 409 NO_SANDBOXES_AVAILABLE; nobody
// gets two; the reservation counts its 150 seats used, none left set aside.
//
// The workshop day's numbers (300 seats, 500 others, a pool of 500) halved: those 800
// allocations through the instances took 65 s alone on the 2 shared cores and 216 s in a
// run of the whole package (TestFiveHundredStudentBurstThroughInstances: 36 s and 89 s),
// too much of make test's budget for what the half proves the same way.
func TestReservationHoldsAgainstAnotherLabsRushOverHTTP(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "") // as in TestFiveHundredStudentBurstThroughInstances
	const seats, others, general = 150, 250, 100
	s := startAdminStack(t, nil, map[string]string{"SEED_SANDBOXES": fmt.Sprint(seats + general), "SEED_PREFIXES": "lab"})
	created := reserve(t, s, workshopAt(time.Now(), seats, false))
	if c := created.Capacity; !c.Coverable || c.Available != seats+general {
		t.Fatalf("the capacity check of %d seats of %d: %+v", seats, seats+general, c)
	}
	id := created.Reservation.ID
	holdSeats(t, s, id, seats)

	out := rush(t, s.Stack, append(students("dns-lab", seats), students("k8s-lab", others)...), nil)
	reportRush(t, s.Stack, out)
	dns, k8s := finalStatuses(out[:seats]), finalStatuses(out[seats:])
	if dns[http.StatusCreated]+dns[http.StatusOK] != seats {
		t.Fatalf("dns-lab's final answers %v; want all %d served", dns, seats)
	}
	if k8s[http.StatusCreated]+k8s[http.StatusOK] != general || k8s[http.StatusConflict] != others-general {
		t.Fatalf("k8s-lab's final answers %v; want %d served and %d refused", k8s, general, others-general)
	}
	for _, o := range out[seats:] {
		if o.final == http.StatusConflict && o.code != api.CodeNoSandboxes {
			t.Fatalf("a k8s-lab student's 409 is %s", o.code)
		}
	}
	if n := distinctSandboxes(t, out); n != seats+general {
		t.Fatalf("%d sandboxes given, want %d", n, seats+general)
	}
	held, claimed := setAside(t, s, id, out[:seats])
	if _, k8sFromIt := setAside(t, s, id, out[seats:]); held != 0 || claimed != seats || k8sFromIt != 0 {
		t.Fatalf("%d still set aside, dns-lab claimed %d of the set-aside, k8s-lab %d; want 0, %d, 0", held, claimed, k8sFromIt, seats)
	}
	if r := reservationByID(t, s, id); r.SetAside != seats || r.State != string(pool.ReservationScheduled) {
		t.Fatalf("the reservation after the rush: %+v; want its %d seats counted, used", r, seats)
	}
	pooltest.Check(t, s.pool)
}

// A 2-hour lab's profile and a 48-hour lab's, over the admin API: their students'
// allocations (made over HTTP, each lab named by its X-Instruqt-Track-ID) expire on time
// under the expiry job as the stack runs it, the stack's clock pinned a second before and
// at each due moment (expires_at plus the grace): the 2-hour lab's at its, while the
// 48-hour lab's stay allocated until theirs.
func TestProfileLabDurationsExpireOnTimeOverHTTP(t *testing.T) {
	const grace = 30 * time.Minute
	s := startAdminStack(t, nil, map[string]string{"SEED_SANDBOXES": "8", "SEED_PREFIXES": "lab", "GRACE_PERIOD_MINUTES": "30"})
	for _, p := range []wire.Profile{{Lab: "short-lab", LabDurationMinutes: 120}, {Lab: "long-lab", LabDurationMinutes: 48 * 60}} {
		wantStatus(t, "put profile "+p.Lab, adminSend(s, http.MethodPut, "/v1/admin/profiles", p), http.StatusOK, "")
	}
	allocatedAt := time.Now().Truncate(time.Second)
	s.clock.pin(allocatedAt)
	labs := map[string]time.Duration{"short-lab": 2 * time.Hour, "long-lab": 48 * time.Hour}
	byLab := map[string][]string{}
	for lab, duration := range labs {
		for i := range 3 {
			h := track(s.TrackToken, fmt.Sprintf("%s-student-%d", lab, i))
			h.Set(api.HeaderTrackName, lab)
			h.Set(api.HeaderNamePrefix, "lab")
			a := s.c.do(http.MethodPost, "/v1/allocate", h, nil)
			wantStatus(t, "allocate for "+lab, a, http.StatusCreated, "")
			var alloc struct {
				SandboxID   string `json:"sandbox_id"`
				AllocatedAt int64  `json:"allocated_at"`
				ExpiresAt   int64  `json:"expires_at"`
			}
			if err := json.Unmarshal(a.body, &alloc); err != nil {
				t.Fatal(err)
			}
			if alloc.AllocatedAt != allocatedAt.Unix() || alloc.ExpiresAt != allocatedAt.Add(duration).Unix() {
				t.Fatalf("%s's allocation: allocated_at %d, expires_at %d; want %d and %s later", lab, alloc.AllocatedAt, alloc.ExpiresAt,
					allocatedAt.Unix(), duration)
			}
			byLab[lab] = append(byLab[lab], alloc.SandboxID)
		}
	}
	statuses := func(lab string) map[string]int {
		by := map[string]int{}
		for _, id := range byLab[lab] {
			d := adminCall[struct{ Sandbox wire.Sandbox }](t, s, http.MethodGet, "/v1/admin/sandboxes/"+id)
			by[d.Sandbox.Status]++
		}
		return by
	}
	expireAt := func(at time.Time, want int) {
		t.Helper()
		s.clock.pin(at)
		if sum := runScheduled(t, s.Stack, "expiry"); sum.Outcome != jobs.OutcomeOK || sum.Counts["expired"] != want {
			t.Fatalf("expiry at allocation + %s: %+v; want %d expired", at.Sub(allocatedAt), sum, want)
		}
	}
	for _, step := range []struct {
		lab string
		// longAllocated is how many of the 48-hour lab's are still allocated once lab's
		// allocations are due.
		longAllocated int
	}{{"short-lab", 3}, {"long-lab", 0}} {
		due := allocatedAt.Add(labs[step.lab] + grace)
		expireAt(due.Add(-time.Second), 0)
		expireAt(due, 3)
		short, long := statuses("short-lab"), statuses("long-lab")
		if short[string(pool.PendingDeletion)] != 3 || long[string(pool.Allocated)] != step.longAllocated || long[string(pool.PendingDeletion)] != 3-step.longAllocated {
			t.Fatalf("once %s is due: short-lab %v, long-lab %v", step.lab, short, long)
		}
		pooltest.Check(t, s.pool)
	}
}

// The capacity check over HTTP refuses 25 seats of a pool of 20 with the numbers, creates
// 15; the reservations job sets them aside; then the CSP stops listing 12 of the 20 and
// two syncs strike them: the reservation loses the set-asides among them, the job sets
// aside what the general pool has left and finds it 7 seats short: it raises
// reservation_uncoverable (its run's alarm over the admin API, the JobAlarm metric in the
// function's output), records the shortfall on the reservation, and the stack's events
// carry one reservation.uncoverable.
func TestReservationTheShrunkPoolCannotCoverRaisesItsAlarmOverHTTP(t *testing.T) {
	const accounts, listed, seats = 20, 8, 15
	eventsFile := filepath.Join(t.TempDir(), "events.jsonl")
	s := startAdminStack(t, cspfake.Generate(accounts, []string{"lab"}), map[string]string{"SYNC_MAX_SHRINK_FRACTION": "1", "EVENTS_FILE": eventsFile})
	work := workshopAt(time.Now(), 25, false)

	c := adminCall[wire.Capacity](t, s, http.MethodGet, fmt.Sprintf("/v1/admin/capacity?prefix=lab&seats=25&starts_at=%d&ends_at=%d&lead_minutes=30",
		work.StartsAt, work.EndsAt))
	if c.Coverable || c.Available != accounts || c.Shortfall != 25-accounts {
		t.Fatalf("the dry run of 25 seats of %d: %+v", accounts, c)
	}
	refused := adminSend(s, http.MethodPost, "/v1/admin/reservations", work)
	wantStatus(t, "25 seats of 20", refused, http.StatusConflict, api.CodeReservationUncoverable)
	msg := apitest.DecodeError(t, refused.body).Message
	for _, numbers := range []string{`25 seats of prefix "lab"`, "20 available", "0 promised to other reservations", "0 pending deletion", "5 short", "force=true"} {
		if !strings.Contains(msg, numbers) {
			t.Errorf("the refusal does not say %q: %s", numbers, msg)
		}
	}
	if all := adminCall[wire.Reservations](t, s, http.MethodGet, "/v1/admin/reservations"); len(all.Reservations) != 0 {
		t.Fatalf("a refused reservation was stored: %+v", all)
	}

	work.Seats = seats
	id := reserve(t, s, work).Reservation.ID
	holdSeats(t, s, id, seats)
	if err := s.csp.SetFaults(cspfake.Faults{ListLimit: listed}); err != nil {
		t.Fatal(err)
	}
	runJob(t, s, "sync")
	if run := runJob(t, s, "sync"); run.Counts["marked_stale"] != accounts-listed {
		t.Fatalf("the second sync of the shrunk listing: %+v", run)
	}
	pooltest.Check(t, s.pool)

	sum := runScheduled(t, s.Stack, "reservations")
	short := fmt.Sprintf("reservation %s is %d seats short", id, seats-listed)
	if sum.Alarm != jobs.AlarmReservationUncoverable || sum.Counts["short"] != 1 || !slices.Contains(sum.Errors, short) {
		t.Fatalf("the reservations job on the shrunk pool: %+v; want %s with %q", sum, jobs.AlarmReservationUncoverable, short)
	}
	if r := reservationByID(t, s, id); r.Coverage != pool.CoverageShort || r.Shortfall != seats-listed || r.SetAside != listed {
		t.Fatalf("the reservation on the shrunk pool: %+v; want short by %d, %d set aside", r, seats-listed, listed)
	}
	runs := adminCall[wire.JobRuns](t, s, http.MethodGet, "/v1/admin/jobs/reservations?limit=5")
	if i := slices.IndexFunc(runs.Runs, func(r wire.JobRun) bool { return r.RunID == sum.RunID }); i < 0 ||
		runs.Runs[i].Alarm == nil || *runs.Runs[i].Alarm != jobs.AlarmReservationUncoverable {
		t.Fatalf("run %s of the reservations job over the admin API: %+v", sum.RunID, runs)
	}
	alarms := 0
	for _, line := range s.logs.JSONLines(t) {
		if line["Alarm"] == jobs.AlarmReservationUncoverable && line["Job"] == "reservations" && line["JobAlarm"] == 1.0 {
			alarms++
		}
	}
	if alarms == 0 {
		t.Fatalf("no JobAlarm metric of %s in the functions' output", jobs.AlarmReservationUncoverable)
	}

	var uncoverable []events.Envelope
	testkit.Eventually(t, "reservation.uncoverable in "+eventsFile, func() bool {
		uncoverable = slices.DeleteFunc(readEvents(t, eventsFile), func(e events.Envelope) bool { return e.Detail.Type != events.ReservationUncoverable })
		return len(uncoverable) > 0
	})
	if len(uncoverable) != 1 {
		t.Fatalf("%d reservation.uncoverable events, want 1", len(uncoverable))
	}
	e := uncoverable[0].Detail
	if e.Reservation == nil || e.Reservation.ID != id || e.Reservation.Shortfall != seats-listed || e.Reservation.Seats != seats || e.Lab != "dns-lab" {
		t.Fatalf("the event: %+v (reservation %+v)", e, e.Reservation)
	}
	raw, _ := json.Marshal(uncoverable[0])
	if err := eventcheck.Validate(raw); err != nil {
		t.Error(err)
	}
	pooltest.Check(t, s.pool)
}

// 40 seats of a pool of 60 are set aside for dns-lab, with overflow, and its 40 students
// rush. The first 20 allocations run; the other 20 are held as their instances take them,
// before the handler runs, until the reservation has been cancelled over the admin API and
// the reservations job has run. Every student gets a
// sandbox of its own: those served before the cancellation from the set-aside, the others
// from the general pool, into which the job returned what was left. The reservation has
// ended with nothing set aside, and it counts exactly the set-asides its students took.
func TestCancelMidRushOverHTTP(t *testing.T) {
	t.Setenv("AWS_CA_BUNDLE", "")
	const seats, general, first = 40, 20, 20
	s := startAdminStack(t, nil, map[string]string{"SEED_SANDBOXES": fmt.Sprint(seats + general), "SEED_PREFIXES": "lab"})
	id := reserve(t, s, workshopAt(time.Now(), seats, true)).Reservation.ID
	holdSeats(t, s, id, seats)

	// The cancellation comes once every student has its answer or waits at the hold: a
	// first allocation answered 503 waits there with its retry.
	var mu sync.Mutex
	var invoked, waiting int
	var answered, beforeCancel []int
	cancel, release := make(chan struct{}), make(chan struct{})
	cancelWhenAllWait := func() {
		if len(answered)+waiting == seats && beforeCancel == nil {
			beforeCancel = slices.Clone(answered)
			close(cancel)
		}
	}
	onInvoke(s.lambda, func(function string, _ int) {
		if function != "allocate" {
			return
		}
		mu.Lock()
		invoked++
		hold := invoked > first
		if hold {
			waiting++
			cancelWhenAllWait()
		}
		mu.Unlock()
		if hold {
			<-release
		}
	})
	midRush := make(chan jobs.Summary, 1)
	go func() {
		defer close(release)
		<-cancel
		a, err := s.c.send(http.MethodDelete, "/v1/admin/reservations/"+id, bearer(s.AdminToken), nil)
		if err != nil || a.status != http.StatusOK || !strings.Contains(string(a.body), `"state":"cancelled"`) {
			t.Errorf("cancel mid-rush: %v %d %s", err, a.status, a.body)
		}
		sum, err := invokeScheduled(testkit.Patience(t), s.Stack, "reservations")
		if err != nil {
			t.Errorf("the reservations job mid-rush: %v", err)
		}
		midRush <- sum
	}()
	out := rush(t, s.Stack, students("dns-lab", seats), func(i int) {
		mu.Lock()
		defer mu.Unlock()
		answered = append(answered, i)
		cancelWhenAllWait()
	})
	reportRush(t, s.Stack, out)
	job := <-midRush
	if final := finalStatuses(out); final[http.StatusCreated]+final[http.StatusOK] != seats || distinctSandboxes(t, out) != seats {
		t.Fatalf("final answers %v; want every student served, each its own sandbox", final)
	}
	served := map[int]bool{}
	for _, i := range beforeCancel {
		served[i] = true
	}
	for i, o := range out {
		// A replay (200) answers a claim that committed before its 503: from either.
		if mark := markOf(t, s, o.sandbox); served[i] && mark != id || !served[i] && o.final == http.StatusCreated && mark != "" {
			t.Fatalf("student %d (served before the cancellation: %t) got %s from %q", i, served[i], o.sandbox, mark)
		}
	}
	// The run mid-rush ends it, unless the index showed it a return late: then the next.
	testkit.Eventually(t, "the reservations job to end the cancelled reservation", func() bool {
		if reservationByID(t, s, id).State == string(pool.ReservationEnded) {
			return true
		}
		runScheduled(t, s.Stack, "reservations")
		return false
	})
	held, claimed := setAside(t, s, id, out)
	if r := reservationByID(t, s, id); held != 0 || r.SetAside != claimed || claimed < len(beforeCancel) {
		t.Fatalf("after the job: %+v, %d still set aside, %d of the students' sandboxes from it (%d served before the cancellation); "+
			"want ended, none set aside, set_aside counting the claimed", r, held, claimed, len(beforeCancel))
	}
	t.Logf("cancelled after %d answers, %d allocations waiting; the job's run: %s, counts %v", len(beforeCancel), seats-len(beforeCancel), job.Outcome, job.Counts)
	pooltest.Check(t, s.pool)
}
