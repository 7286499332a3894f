package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

var jobSummary = pool.Actor{Kind: "job", Name: "cleanup", RequestID: "run-1"}

// adminEvent is an admin route's event with query parameters in both maps, as API
// Gateway sends them (the single-value map holds the last value).
func adminEvent(t *testing.T, route string, params map[string]string, q map[string][]string) events.APIGatewayProxyRequest {
	t.Helper()
	ev := event(t, route, nil, params)
	if len(q) > 0 {
		ev.MultiValueQueryStringParameters, ev.QueryStringParameters = q, map[string]string{}
		for k, v := range q {
			ev.QueryStringParameters[k] = v[len(v)-1]
		}
	}
	return ev
}

func qs(kv ...string) map[string][]string {
	q := map[string][]string{}
	for i := 0; i < len(kv); i += 2 {
		q[kv[i]] = append(q[kv[i]], kv[i+1])
	}
	return q
}

// allocated allocates a sandbox to student through the broker and returns its item.
// allocated allocates a sandbox to student as the track client of event ("instruqt").
func allocated(t *testing.T, f *fixture, student string) pool.Sandbox {
	t.Helper()
	a, err := broker.New(f.pool, poolCfg).Allocate(ctx, broker.AllocateRequest{Student: student, Client: "instruqt", RequestID: "req-" + student})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.pool.Get(ctx, a.SandboxID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// failedDeletion allocates, releases and gives up deleting a sandbox.
func failedDeletion(t *testing.T, f *fixture, student string) pool.Sandbox {
	t.Helper()
	s := allocated(t, f, student)
	released, err := broker.New(f.pool, poolCfg).Release(ctx, s.ID, pool.Holder{Client: "instruqt", Student: student}, "req-release")
	if err != nil {
		t.Fatal(err)
	}
	failed, err := f.pool.FailDeletion(ctx, released, "HTTP 500 from the CSP", jobSummary)
	if err != nil {
		t.Fatal(err)
	}
	return failed
}

func staleSince(t *testing.T, f *fixture, since time.Time, n int) {
	t.Helper()
	past := pooltest.Clocked(f.pool, func() time.Time { return since })
	marked := 0
	for s, err := range f.pool.ByStatus(ctx, pool.Available, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if marked == n {
			break
		}
		if _, err := past.MarkStale(ctx, s, pool.Actor{Kind: "job", Name: "sync"}); err != nil {
			t.Fatal(err)
		}
		marked++
	}
}

func TestAdminListPagesAndValidates(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 7)
	for i := range 3 {
		if _, err := f.pool.Create(ctx, pool.Account{ID: fmt.Sprint(2013000 + i), Name: fmt.Sprintf("other-%04d", i),
			ExternalID: fmt.Sprintf("identity/accounts/other-%d", i)}, pool.Actor{Kind: "job", Name: "sync"}); err != nil {
			t.Fatal(err)
		}
	}
	// The one allocation must be a lab- sandbox for the status+prefix case below.
	if _, err := broker.New(f.pool, poolCfg).Allocate(ctx, broker.AllocateRequest{Student: "student-1", NamePrefix: "lab"}); err != nil {
		t.Fatal(err)
	}

	list := func(q map[string][]string) wire.SandboxList {
		t.Helper()
		resp := f.call(t, adminEvent(t, "admin-list-sandboxes", nil, q))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("list %v: %d %s", q, resp.StatusCode, resp.Body)
		}
		return decode[wire.SandboxList](t, resp.Body)
	}
	for _, c := range []struct {
		filter []string
		want   int
	}{{nil, 10}, {[]string{"status", "available"}, 9}, {[]string{"prefix", "other-"}, 3}, {[]string{"status", "allocated", "prefix", "lab"}, 1}} {
		seen := map[string]bool{}
		cursor, pages := "", 0
		for {
			q := qs(append([]string{"limit", "3"}, c.filter...)...)
			if cursor != "" {
				q["cursor"] = []string{cursor}
			}
			page := list(q)
			pages++
			if page.Count != len(page.Sandboxes) || page.Count > 3 {
				t.Fatalf("count %d for %d sandboxes", page.Count, len(page.Sandboxes))
			}
			for _, s := range page.Sandboxes {
				if seen[s.SandboxID] {
					t.Fatalf("%v: %s listed twice", c.filter, s.SandboxID)
				}
				seen[s.SandboxID] = true
			}
			if page.Cursor == nil {
				break
			}
			cursor = *page.Cursor
		}
		if len(seen) != c.want || pages != c.want/3+1 {
			t.Errorf("%v: %d sandboxes in %d pages, want %d", c.filter, len(seen), pages, c.want)
		}
	}
	// The default page is 50; an allocated sandbox shows its owner and lifecycle.
	all := list(nil)
	i := slices.IndexFunc(all.Sandboxes, func(s wire.Sandbox) bool { return s.Status == "allocated" })
	if all.Count != 10 || all.Cursor != nil || i < 0 {
		t.Fatalf("default listing: %+v", all)
	}
	if s := all.Sandboxes[i]; s.AllocatedToTrack == nil || *s.AllocatedToTrack != "student-1" || s.ExpiresAt == nil || s.UpdatedAt == nil || s.DeletionRequestedAt != nil {
		t.Fatalf("allocated sandbox %+v", s)
	}

	first := list(qs("limit", "2", "status", "available"))
	cursor := *first.Cursor
	tampered := []byte(cursor)
	tampered[3] ^= 0x01
	otherTable := pooltest.New(t)
	fill(t, otherTable, "lab", 3)
	foreign, err := otherTable.List(ctx, pool.ListFilter{Status: pool.Available}, 1, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		q    map[string][]string
		code string
	}{
		{"a removed status", qs("status", "removed"), CodeValidation},
		{"an unknown status", qs("status", "AVAILABLE"), CodeValidation},
		{"limit 0", qs("limit", "0"), CodeValidation},
		{"limit 101", qs("limit", "101"), CodeValidation},
		{"a negative limit", qs("limit", "-5"), CodeValidation},
		{"a non-integer limit", qs("limit", "ten"), CodeValidation},
		{"a fractional limit", qs("limit", "1.5"), CodeValidation},
		{"limit twice", qs("limit", "5", "limit", "5"), CodeValidation},
		{"status twice", qs("status", "stale", "status", "available"), CodeValidation},
		{"a mistyped parameter", qs("stauts", "stale"), CodeValidation},
		{"a control character in the prefix", qs("prefix", "lab\x00"), CodeValidation},
		{"a long prefix", qs("prefix", strings.Repeat("p", 129)), CodeValidation},
		{"a tampered cursor", qs("status", "available", "cursor", string(tampered)), CodeInvalidCursor},
		{"another listing's cursor", qs("cursor", cursor), CodeInvalidCursor},
		{"another table's cursor", qs("status", "available", "cursor", foreign.Cursor), CodeInvalidCursor},
		{"garbage", qs("cursor", "not-a-cursor"), CodeInvalidCursor},
		{"a huge cursor", qs("cursor", strings.Repeat("A", 5000)+"."+"AAAA"), CodeInvalidCursor},
	} {
		resp := f.call(t, adminEvent(t, "admin-list-sandboxes", nil, c.q))
		if resp.StatusCode != http.StatusBadRequest || apitest.DecodeError(t, []byte(resp.Body)).Code != c.code {
			t.Errorf("%s: %d %s, want 400 %s", c.name, resp.StatusCode, resp.Body, c.code)
		}
	}
}

func TestAdminInspectShowsHistoryNewestFirst(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 1)
	s := allocated(t, f, "student-1")
	f.call(t, event(t, "mark-for-deletion", student("student-1"), map[string]string{"id": s.ID}))

	resp := f.call(t, adminEvent(t, "admin-get-sandbox", map[string]string{"id": s.ID}, nil))
	d := decode[wire.SandboxDetail](t, resp.Body)
	if resp.StatusCode != http.StatusOK || d.Sandbox == nil || d.Sandbox.Status != "pending_deletion" || d.Sandbox.DeletionRequestedAt == nil {
		t.Fatalf("inspect: %d %s", resp.StatusCode, resp.Body)
	}
	steps := func(d wire.SandboxDetail) string {
		var out []string
		var prev time.Time
		for i, h := range d.History {
			at, err := time.Parse(time.RFC3339, h.At)
			if err != nil || !strings.HasSuffix(h.At, "Z") || len(h.At) != len("2006-01-02T15:04:05.000Z") {
				t.Fatalf("at %q is not RFC 3339 UTC with milliseconds", h.At)
			}
			if i > 0 && at.After(prev) {
				t.Fatalf("history is not newest first: %s", resp.Body)
			}
			prev = at
			out = append(out, fmt.Sprintf("%s>%s", deref(h.From), deref(h.To)))
		}
		return strings.Join(out, " ")
	}
	if got := steps(d); got != "allocated>pending_deletion available>allocated >available" {
		t.Fatalf("history %s", got)
	}
	if h := d.History[0]; deref(h.ActorKind) != "student" || deref(h.Actor) != "student-1" || h.RequestID == nil {
		t.Fatalf("release entry %+v", h)
	}

	// Deleted: the tombstone, with its whole history.
	cur, _ := f.pool.Get(ctx, s.ID)
	if _, err := f.pool.MarkDeleted(ctx, cur, jobSummary); err != nil {
		t.Fatal(err)
	}
	resp = f.call(t, adminEvent(t, "admin-get-sandbox", map[string]string{"id": s.ID}, nil))
	d = decode[wire.SandboxDetail](t, resp.Body)
	if resp.StatusCode != http.StatusOK || d.Sandbox == nil || d.Sandbox.Status != "deleted" || steps(d) != "pending_deletion>deleted allocated>pending_deletion available>allocated >available" {
		t.Fatalf("deleted sandbox: %d %s", resp.StatusCode, resp.Body)
	}

	wantError(t, f.call(t, adminEvent(t, "admin-get-sandbox", map[string]string{"id": "404404"}, nil)), http.StatusNotFound, CodeSandboxNotFound)
	wantError(t, f.call(t, adminEvent(t, "admin-get-sandbox", map[string]string{"id": "a;b"}, nil)), http.StatusBadRequest, CodeValidation)
	wantError(t, f.call(t, adminEvent(t, "admin-get-sandbox", map[string]string{"id": s.ID}, qs("verbose", "1"))), http.StatusBadRequest, CodeValidation)
}

func TestAdminRetryDeletion(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 2)
	failed := failedDeletion(t, f, "student-1")

	ev := adminEvent(t, "admin-retry-deletion", map[string]string{"id": failed.ID}, nil)
	resp := f.call(t, ev)
	s := decode[wire.Sandbox](t, resp.Body)
	if resp.StatusCode != http.StatusOK || s.Status != "pending_deletion" || s.Attempts != 0 || deref(s.LastError) != "HTTP 500 from the CSP" {
		t.Fatalf("retry: %d %s", resp.StatusCode, resp.Body)
	}
	history, err := f.pool.History(ctx, failed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if h := history[0]; h.From != pool.DeletionFailed || h.To != pool.PendingDeletion || h.ActorKind != "admin" || h.Actor != "ops" ||
		h.RequestID != ev.RequestContext.RequestID || h.Reason != "admin-retry-deletion" {
		t.Fatalf("the retry's history entry %+v", h)
	}

	again := wantError(t, f.call(t, ev), http.StatusConflict, CodeWrongStatus)
	if !strings.Contains(again.Message, "pending_deletion") {
		t.Fatalf("the 409 does not say the current status: %s", again.Message)
	}
	wantError(t, f.call(t, adminEvent(t, "admin-retry-deletion", map[string]string{"id": "404404"}, nil)), http.StatusNotFound, CodeSandboxNotFound)
	wantError(t, f.call(t, adminEvent(t, "admin-retry-deletion", map[string]string{"id": "../x"}, nil)), http.StatusBadRequest, CodeValidation)
	pooltest.Check(t, f.pool)
}

var metricLine = regexp.MustCompile(`^broker_pool_[a-z_]+(\{prefix="(?:[^"\\\n]|\\["\\n])*"\})? [0-9]+$`)

func TestAdminStatsAndMetrics(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 6)
	allocated(t, f, "student-1")
	failedDeletion(t, f, "student-2")
	staleSince(t, f, time.Now(), 1)
	// Added after the random picks above, so it is surely still available.
	odd := "we\"i\\rd\nlab" // CSP names are data: a label value must escape them
	if _, err := f.pool.Create(ctx, pool.Account{ID: "2019999", Name: odd + "-0001", ExternalID: "identity/accounts/odd"}, pool.Actor{Kind: "job", Name: "sync"}); err != nil {
		t.Fatal(err)
	}

	resp := f.call(t, adminEvent(t, "admin-stats", nil, nil))
	st := decode[map[string]any](t, resp.Body)
	census := pooltest.Check(t, f.pool)
	want := map[string]any{"total": 7.0, "available": 4.0, "allocated": 1.0, "pending_deletion": 0.0, "stale": 1.0, "deletion_failed": 1.0, "deleted": 0.0, "retired": 0.0}
	for k, v := range want {
		if st[k] != v || float64(census.ByStatus[pool.Status(k)]) != v && k != "total" {
			t.Errorf("stats %s = %v, want %v (census %v)", k, st[k], v, census.ByStatus)
		}
	}
	byPrefix := st["available_by_prefix"].(map[string]any)
	if byPrefix["lab"] != 3.0 || byPrefix[odd] != 1.0 {
		t.Errorf("available_by_prefix %v", byPrefix)
	}

	resp = f.call(t, adminEvent(t, "metrics", nil, nil))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Headers["Content-Type"], "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %v", resp.StatusCode, resp.Headers)
	}
	var samples []string
	for _, l := range strings.Split(strings.TrimSuffix(resp.Body, "\n"), "\n") {
		switch {
		case strings.HasPrefix(l, "# HELP broker_pool_"), strings.HasPrefix(l, "# TYPE broker_pool_") && strings.HasSuffix(l, " gauge"):
		case metricLine.MatchString(l):
			samples = append(samples, l)
		default:
			t.Errorf("not a line of the text format: %q", l)
		}
	}
	for _, w := range []string{"broker_pool_available 4", "broker_pool_allocated 1", "broker_pool_pending_deletion 0", "broker_pool_stale 1",
		"broker_pool_deletion_failed 1", "broker_pool_total 7", `broker_pool_available_by_prefix{prefix="we\"i\\rd\nlab"} 1`} {
		if !slices.Contains(samples, w) {
			t.Errorf("metrics lack %q:\n%s", w, resp.Body)
		}
	}
	if n := strings.Count(resp.Body, "# TYPE "); n != 10 {
		t.Errorf("%d TYPE lines, want one per gauge (10)", n)
	}
	wantError(t, f.call(t, adminEvent(t, "metrics", nil, qs("format", "json"))), http.StatusBadRequest, CodeValidation)
	wantError(t, f.call(t, adminEvent(t, "admin-stats", nil, qs("x", "1"))), http.StatusBadRequest, CodeValidation)
}

func TestAdminTriggersStartTheJobOnce(t *testing.T) {
	f := newFixture(t, config.API{})
	for _, r := range Routes {
		if r.Starts == "" {
			continue
		}
		ev := adminEvent(t, r.Name, nil, nil)
		resp := f.call(t, ev)
		got := decode[wire.JobStarted](t, resp.Body)
		if resp.StatusCode != http.StatusAccepted || got.Job != r.Starts || got.RunID != ev.RequestContext.RequestID {
			t.Fatalf("%s: %d %s", r.Name, resp.StatusCode, resp.Body)
		}
		if !slices.Contains(f.jobs.started, r.Starts+"/"+got.RunID) {
			t.Fatalf("%s: started %v", r.Name, f.jobs.started)
		}

		// A run holding the lease: 409 naming it, and nothing started.
		lease, err := f.pool.AcquireLease(ctx, r.Starts, "run-holding-it", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		before := len(f.jobs.started)
		d := wantError(t, f.call(t, adminEvent(t, r.Name, nil, nil)), http.StatusConflict, CodeJobRunning)
		if !strings.Contains(d.Message, "run-holding-it") || len(f.jobs.started) != before {
			t.Fatalf("%s: %s; started %v", r.Name, d.Message, f.jobs.started)
		}
		if err := f.pool.ReleaseLease(ctx, lease); err != nil {
			t.Fatal(err)
		}
		wantError(t, f.call(t, adminEvent(t, r.Name, nil, qs("wait", "true"))), http.StatusBadRequest, CodeValidation)
	}
	if len(f.jobs.started) != 2 {
		t.Fatalf("started %v, want sync and cleanup once each", f.jobs.started)
	}

	// The invoke fails: a 503 to retry, the cause in the log only.
	f.jobs.err = errors.New("AccessDeniedException: secret internals")
	resp := f.call(t, adminEvent(t, "admin-sync", nil, nil))
	wantError(t, resp, http.StatusServiceUnavailable, CodeServiceUnavailable)
	if strings.Contains(resp.Body, "secret internals") || !strings.Contains(f.logs.String(), "secret internals") {
		t.Fatalf("the cause must go to the log only: %s", resp.Body)
	}
}

func TestAdminJobRuns(t *testing.T) {
	f := newFixture(t, config.API{})
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	for i := range 3 {
		run := pool.RunRecord{Job: "sync", RunID: fmt.Sprintf("run-%d", i), StartedAt: start.Add(time.Duration(i) * time.Minute), DurationMS: 120,
			Outcome: "ok", Counts: map[string]int{"listed": 6}}
		if i == 2 {
			run.Outcome, run.Reason, run.Alarm, run.Errors = "partial", "stopped before the deadline", "sync_shrink_guard", []string{"sandbox 1: boom"}
		}
		if err := f.pool.RecordRun(ctx, run); err != nil {
			t.Fatal(err)
		}
	}
	resp := f.call(t, adminEvent(t, "admin-job-runs", map[string]string{"name": "sync"}, qs("limit", "2")))
	got := decode[wire.JobRuns](t, resp.Body)
	if resp.StatusCode != http.StatusOK || got.Job != "sync" || len(got.Runs) != 2 || got.Runs[0].RunID != "run-2" || got.Runs[1].RunID != "run-1" {
		t.Fatalf("runs: %d %s", resp.StatusCode, resp.Body)
	}
	if r := got.Runs[0]; r.StartedAt != "2026-11-26T09:02:00.000Z" || deref(r.Alarm) != "sync_shrink_guard" || len(r.Errors) != 1 || r.Counts["listed"] != 6 {
		t.Fatalf("run %+v", r)
	}
	if r := got.Runs[1]; r.Reason != nil || r.Errors == nil || !strings.Contains(resp.Body, `"errors":[]`) {
		t.Fatalf("an ok run: %+v in %s", r, resp.Body)
	}
	if all := decode[wire.JobRuns](t, f.call(t, adminEvent(t, "admin-job-runs", map[string]string{"name": "sync"}, nil)).Body); len(all.Runs) != 3 {
		t.Fatalf("default limit: %d runs", len(all.Runs))
	}
	if none := f.call(t, adminEvent(t, "admin-job-runs", map[string]string{"name": "cleanup"}, nil)); !strings.Contains(none.Body, `"runs":[]`) {
		t.Fatalf("a job without runs: %s", none.Body)
	}
	wantError(t, f.call(t, adminEvent(t, "admin-job-runs", map[string]string{"name": "no-such-job"}, nil)), http.StatusNotFound, CodeJobNotFound)
	wantError(t, f.call(t, adminEvent(t, "admin-job-runs", map[string]string{"name": "a b"}, nil)), http.StatusBadRequest, CodeValidation)
	for _, limit := range []string{"0", "101", "x"} {
		wantError(t, f.call(t, adminEvent(t, "admin-job-runs", map[string]string{"name": "sync"}, qs("limit", limit))), http.StatusBadRequest, CodeValidation)
	}
}

// confirmed is the query of a bulk-delete of status that confirms count records as of now.
func confirmed(status string, count int) map[string][]string {
	return qs("status", status, "expected_count", fmt.Sprint(count), "status_before", fmt.Sprint(time.Now().Unix()))
}

func TestAdminBulkDeleteTakesOnlyStaleOrDeletionFailed(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 8)
	failedDeletion(t, f, "student-1")
	allocated(t, f, "student-2")
	released := allocated(t, f, "student-3")
	if _, err := broker.New(f.pool, poolCfg).Release(ctx, released.ID, pool.Holder{Client: "instruqt", Student: "student-3"}, "r"); err != nil {
		t.Fatal(err)
	}
	staleSince(t, f, time.Now(), 2)

	now := fmt.Sprint(time.Now().Unix())
	for _, c := range []struct {
		name string
		q    map[string][]string
		want string
	}{
		{"no status", nil, "required"},
		{"an empty status", qs("status", ""), "required"},
		{"available", qs("status", "available"), "stale or deletion_failed only"},
		{"allocated", confirmed("allocated", 1), "stale or deletion_failed only"},
		{"pending_deletion", confirmed("pending_deletion", 1), "stale or deletion_failed only"},
		{"deleted", qs("status", "deleted"), "stale or deletion_failed only"},
		{"an unknown status", qs("status", "all"), "stale or deletion_failed only"},
		{"two statuses", qs("status", "stale", "status", "deletion_failed"), "more than once"},
		{"a mistyped parameter", qs("stat", "stale"), "Unknown query parameter"},
		{"no count", qs("status", "stale", "status_before", now), "expected_count is required"},
		{"no bound", qs("status", "stale", "expected_count", "2"), "status_before is required"},
		{"a negative count", qs("status", "stale", "expected_count", "-1", "status_before", now), "expected_count must be an integer from 0"},
		{"a count in words", qs("status", "stale", "expected_count", "two", "status_before", now), "expected_count must be an integer"},
		{"a bound after the clock", qs("status", "stale", "expected_count", "2", "status_before", fmt.Sprint(time.Now().Add(time.Hour).Unix())), "status_before must be an integer from 1 to"},
		{"a bound in milliseconds", qs("status", "stale", "expected_count", "2", "status_before", fmt.Sprint(time.Now().UnixMilli())), "status_before must be"},
	} {
		d := wantError(t, f.call(t, adminEvent(t, "admin-bulk-delete", nil, c.q)), http.StatusBadRequest, CodeValidation)
		if !strings.Contains(d.Message, c.want) {
			t.Errorf("%s: message %q lacks %q", c.name, d.Message, c.want)
		}
	}
	before := pooltest.Check(t, f.pool)
	for status, n := range map[string]int{"stale": 2, "deletion_failed": 1} {
		resp := f.call(t, adminEvent(t, "admin-bulk-delete", nil, confirmed(status, n)))
		got := decode[wire.Bulk](t, resp.Body)
		if resp.StatusCode != http.StatusOK || got.Status != "completed" || got.Deleted != n || got.Skipped != 0 {
			t.Fatalf("bulk-delete %s: %d %s", status, resp.StatusCode, resp.Body)
		}
	}
	after := pooltest.Check(t, f.pool)
	for _, s := range []pool.Status{pool.Available, pool.Allocated, pool.PendingDeletion} {
		if after.ByStatus[s] != before.ByStatus[s] {
			t.Errorf("%s: %d before, %d after", s, before.ByStatus[s], after.ByStatus[s])
		}
	}
	if after.ByStatus[pool.Stale]+after.ByStatus[pool.DeletionFailed] != 0 {
		t.Errorf("left behind: %v", after.ByStatus)
	}
}

// The console confirmed 2 stale records; before the click arrives, a CSP outage turns 4
// more stale. A bound as of the confirmation retires the 2 and leaves the 4; a count that
// no longer matches is 409 POOL_CHANGED with both numbers, and retires nothing.
func TestAdminBulkDeleteRetiresOnlyWhatWasConfirmed(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 8)
	staleSince(t, f, time.Now().Add(-time.Hour), 2)
	seenAt := fmt.Sprint(time.Now().Add(-time.Minute).Unix())
	staleSince(t, f, time.Now(), 4)

	resp := f.call(t, adminEvent(t, "admin-bulk-delete", nil, confirmed("stale", 2)))
	d := wantError(t, resp, http.StatusConflict, CodePoolChanged)
	if !strings.Contains(d.Message, "You confirmed 2 stale record(s)") || !strings.Contains(d.Message, "6 match now") || d.RetryAfter != nil {
		t.Fatalf("the 409 lacks the numbers: %+v", d)
	}
	if census := pooltest.Check(t, f.pool); census.ByStatus[pool.Stale] != 6 || census.ByStatus[pool.Retired] != 0 {
		t.Fatalf("a refused call changed the pool: %v", census.ByStatus)
	}

	resp = f.call(t, adminEvent(t, "admin-bulk-delete", nil, qs("status", "stale", "expected_count", "2", "status_before", seenAt)))
	if got := decode[wire.Bulk](t, resp.Body); resp.StatusCode != http.StatusOK || got.Deleted != 2 || got.Status != "completed" {
		t.Fatalf("the 2 confirmed: %d %s", resp.StatusCode, resp.Body)
	}
	if census := pooltest.Check(t, f.pool); census.ByStatus[pool.Stale] != 4 || census.ByStatus[pool.Retired] != 2 {
		t.Fatalf("census %v, want the 4 later ones stale", census.ByStatus)
	}
}

func TestAdminAutoDeleteStale(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 5)
	staleSince(t, f, time.Now().Add(-30*time.Hour), 2)
	staleSince(t, f, time.Now().Add(-2*time.Hour), 1)

	d := wantError(t, f.call(t, adminEvent(t, "admin-auto-delete-stale", nil, qs("grace_period_hours", "1", "expected_count", "2"))),
		http.StatusConflict, CodePoolChanged)
	if !strings.Contains(d.Message, "You confirmed 2 stale record(s)") || !strings.Contains(d.Message, "3 match now") {
		t.Fatalf("the 409 lacks the numbers: %+v", d)
	}
	wantError(t, f.call(t, adminEvent(t, "admin-auto-delete-stale", nil, qs("grace_period_hours", "24"))), http.StatusBadRequest, CodeValidation)
	for _, c := range []struct {
		q             map[string][]string
		hours, delete int
	}{
		{qs("grace_period_hours", "48", "expected_count", "0"), 48, 0},
		{qs("expected_count", "2"), 24, 2},
		{qs("grace_period_hours", "1", "expected_count", "1"), 1, 1},
	} {
		resp := f.call(t, adminEvent(t, "admin-auto-delete-stale", nil, c.q))
		got := decode[wire.Bulk](t, resp.Body)
		if resp.StatusCode != http.StatusOK || got.GracePeriodHours != c.hours || got.Deleted != c.delete || got.Status != "completed" {
			t.Fatalf("%v: %d %s", c.q, resp.StatusCode, resp.Body)
		}
	}
	for _, hours := range []string{"0", "-1", "721", "24.5", "1e3", "a day"} {
		wantError(t, f.call(t, adminEvent(t, "admin-auto-delete-stale", nil, qs("grace_period_hours", hours, "expected_count", "0"))),
			http.StatusBadRequest, CodeValidation)
	}
	if census := pooltest.Check(t, f.pool); census.ByStatus[pool.Available] != 2 || census.ByStatus[pool.Stale] != 0 {
		t.Fatalf("census %v", census.ByStatus)
	}
}

// A bulk call whose function is about to reach its deadline stops in time to answer
// "partial" with what it did, instead of being cut off by Lambda.
func TestAdminBulkCallsAnswerPartialBeforeTheDeadline(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 3)
	staleSince(t, f, time.Now().Add(-48*time.Hour), 3)
	for route, q := range map[string]map[string][]string{"admin-bulk-delete": confirmed("stale", 3), "admin-auto-delete-stale": qs("expected_count", "3")} {
		fn, err := f.api.Function(route)
		if err != nil {
			t.Fatal(err)
		}
		// Less than answerReserve is left: no delete may start.
		deadline, cancel := context.WithTimeout(ctx, answerReserve/2)
		resp, err := fn(deadline, adminEvent(t, route, nil, q))
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		r, _ := RouteByName(route)
		apitest.Check(t, r.Method, r.Path, resp.StatusCode, httpHeader(resp.Headers), []byte(resp.Body))
		if got := decode[wire.Bulk](t, resp.Body); resp.StatusCode != http.StatusOK || got.Status != "partial" || got.Deleted != 0 {
			t.Fatalf("%s near the deadline: %d %s", route, resp.StatusCode, resp.Body)
		}
	}
	if census := pooltest.Check(t, f.pool); census.ByStatus[pool.Stale] != 3 {
		t.Fatalf("census %v", census.ByStatus)
	}
}

func TestAdminRoutesRefuseAnotherScope(t *testing.T) {
	f := newFixture(t, config.API{})
	for _, r := range Routes {
		refused := []string{"track", "public", ""}
		switch r.Scope {
		case auth.Admin:
			refused = append(refused, "metrics")
		case auth.Metrics:
		default:
			continue
		}
		for _, scope := range refused {
			ev := adminEvent(t, r.Name, map[string]string{"id": "1", "name": "sync"}, nil)
			ev.RequestContext.Authorizer[ContextScope] = scope
			wantError(t, f.call(t, ev), http.StatusForbidden, CodeForbidden)
		}
	}
	if len(f.jobs.started) != 0 {
		t.Fatalf("a refused trigger started %v", f.jobs.started)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
