package local

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// adminStack is a local stack whose scheduled jobs do not fire during a test
// (JOB_INTERVAL_SCALE=1: sync every 10 minutes), so every run is one the test starts, with
// the pool of its table at hand. With accounts, the stack uses a fake CSP the test owns
// (as an external CSP), so the test can change its listing and faults as it goes. logs
// holds what the functions and jobs wrote (their log lines and metrics).
type adminStack struct {
	*Stack
	c    client
	pool *pool.Pool
	csp  *cspfake.Server
	logs *testkit.Buffer
}

func startAdminStack(t *testing.T, accounts []cspfake.Account, extra map[string]string) adminStack {
	t.Helper()
	// No stream unless the test reads the events (it names an EVENTS_FILE): the records
	// of a thousand seeds would slow every later table's writes
	// (pool.CreateTableWithoutStream).
	table := pooltest.NewTable(t)
	if extra["EVENTS_FILE"] != "" {
		table = pooltest.NewTableWithStream(t)
	}
	env := map[string]string{"TABLE_NAME": table, "JOB_INTERVAL_SCALE": "1", "LOG_LEVEL": "warn"}
	var fake *cspfake.Server
	if accounts != nil {
		token := randomToken()
		fake = cspfake.Started(t, cspfake.Options{Token: token}, accounts...)
		env["CSP_BASE_URL"], env["CSP_API_TOKEN"] = fake.URL(), token
	}
	for k, v := range extra {
		env[k] = v
	}
	s, _, logs := startStack(t, env)
	return adminStack{Stack: s, c: client{t, s.URL}, pool: pool.New(pooltest.Client(), table, pool.Options{}), csp: fake, logs: logs}
}

func bearer(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

// adminCall calls an admin route with the admin token and decodes a 2xx answer into T.
func adminCall[T any](t *testing.T, s adminStack, method, path string) T {
	t.Helper()
	a := s.c.do(method, path, bearer(s.AdminToken), nil)
	if a.status/100 != 2 {
		t.Fatalf("%s %s: %d %s", method, path, a.status, a.body)
	}
	var v T
	if err := json.Unmarshal(a.body, &v); err != nil {
		t.Fatalf("%s %s: %v: %s", method, path, err, a.body)
	}
	return v
}

type jobRun struct {
	RunID   string         `json:"run_id"`
	Outcome string         `json:"outcome"`
	Reason  *string        `json:"reason"`
	Counts  map[string]int `json:"counts"`
}

// runJob starts job through its admin trigger and waits until the run it answered with
// shows in GET /v1/admin/jobs/{job}.
func runJob(t *testing.T, s adminStack, job string) jobRun {
	t.Helper()
	started := adminCall[map[string]string](t, s, "POST", "/v1/admin/"+job)
	if started["job"] != job || started["run_id"] == "" {
		t.Fatalf("trigger %s: %v", job, started)
	}
	var run jobRun
	testkit.Eventually(t, "run "+started["run_id"]+" of "+job+" in its job's runs", func() bool {
		runs := adminCall[struct{ Runs []jobRun }](t, s, "GET", "/v1/admin/jobs/"+job+"?limit=5")
		i := slices.IndexFunc(runs.Runs, func(r jobRun) bool { return r.RunID == started["run_id"] })
		if i >= 0 {
			run = runs.Runs[i]
		}
		return i >= 0
	})
	return run
}

// allocateFor allocates a sandbox with prefix for student over the track API.
func allocateFor(t *testing.T, s adminStack, student, prefix string) string {
	t.Helper()
	h := track(s.TrackToken, student)
	h.Set(api.HeaderNamePrefix, prefix)
	a := s.c.do("POST", "/v1/allocate", h, nil)
	wantStatus(t, "allocate for "+student, a, http.StatusCreated, "")
	var alloc map[string]any
	if err := json.Unmarshal(a.body, &alloc); err != nil {
		t.Fatal(err)
	}
	return alloc["sandbox_id"].(string)
}

func release(t *testing.T, s adminStack, student, id string) {
	t.Helper()
	wantStatus(t, "release", s.c.do("POST", "/v1/sandboxes/"+id+"/mark-for-deletion", track(s.TrackToken, student), nil), http.StatusOK, "")
}

// Every admin route over HTTP, through the authorizer, on its success and error paths.
func TestAdminRoutesOverHTTP(t *testing.T) {
	s := startAdminStack(t, nil, map[string]string{"SEED_SANDBOXES": "6", "SEED_PREFIXES": "lab"})
	admin := bearer(s.AdminToken)
	id := allocateFor(t, s, "participant-1", "lab")

	stats := adminCall[map[string]any](t, s, "GET", "/v1/admin/stats")
	if stats["total"] != 6.0 || stats["allocated"] != 1.0 || stats["available"] != 5.0 || stats["available_by_prefix"].(map[string]any)["lab"] != 5.0 {
		t.Fatalf("stats %v", stats)
	}
	metrics := s.c.do("GET", "/metrics", admin, nil)
	if metrics.status != http.StatusOK || !strings.HasPrefix(metrics.header.Get("Content-Type"), "text/plain; version=0.0.4") ||
		!strings.Contains(string(metrics.body), "\nbroker_pool_allocated 1\n") || !strings.Contains(string(metrics.body), `broker_pool_available_by_prefix{prefix="lab"} 5`) {
		t.Fatalf("metrics %d %v\n%s", metrics.status, metrics.header, metrics.body)
	}

	page := adminCall[struct {
		Sandboxes []map[string]any
		Count     int
		Cursor    *string
	}](t, s, "GET", "/v1/admin/sandboxes?status=allocated")
	if page.Count != 1 || page.Sandboxes[0]["sandbox_id"] != id || page.Sandboxes[0]["allocated_to_track"] != "participant-1" || page.Cursor != nil {
		t.Fatalf("allocated listing %+v", page)
	}
	detail := adminCall[struct {
		Sandbox map[string]any
		History []map[string]any
	}](t, s, "GET", "/v1/admin/sandboxes/"+id)
	if detail.Sandbox["status"] != "allocated" || len(detail.History) != 2 || detail.History[0]["actor_kind"] != "student" {
		t.Fatalf("detail %+v", detail)
	}

	// Both triggers start a run that records itself under the answered run ID.
	if run := runJob(t, s, "sync"); run.Outcome != "ok" || run.Counts["listed"] != 6 {
		t.Fatalf("sync run %+v", run)
	}
	if run := runJob(t, s, "cleanup"); run.Outcome != "ok" {
		t.Fatalf("cleanup run %+v", run)
	}
	// A run holding the lease: 409 naming it.
	lease, err := s.pool.AcquireLease(context.Background(), "cleanup", "run-in-progress", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	busy := s.c.do("POST", "/v1/admin/cleanup", admin, nil)
	wantStatus(t, "cleanup while running", busy, http.StatusConflict, "JOB_RUNNING")
	if !strings.Contains(apitest.DecodeError(t, busy.body).Message, "run-in-progress") {
		t.Fatalf("the 409 does not name the run: %s", busy.body)
	}
	if err := s.pool.ReleaseLease(context.Background(), lease); err != nil {
		t.Fatal(err)
	}

	now := fmt.Sprint(time.Now().Unix())
	bulk := adminCall[map[string]any](t, s, "POST", "/v1/admin/bulk-delete?status=stale&expected_count=0&status_before="+now)
	stale := adminCall[map[string]any](t, s, "POST", "/v1/admin/auto-delete-stale?grace_period_hours=1&expected_count=0")
	if bulk["status"] != "completed" || bulk["deleted"] != 0.0 || stale["grace_period_hours"] != 1.0 || stale["status"] != "completed" {
		t.Fatalf("bulk %v, stale %v", bulk, stale)
	}

	for _, c := range []struct {
		name, method, path string
		status             int
		code               string
	}{
		{"an unknown status", "GET", "/v1/admin/sandboxes?status=removed", 400, "VALIDATION_ERROR"},
		{"limit out of range", "GET", "/v1/admin/sandboxes?limit=500", 400, "VALIDATION_ERROR"},
		{"limit twice", "GET", "/v1/admin/sandboxes?limit=5&limit=6", 400, "VALIDATION_ERROR"},
		{"a garbage cursor", "GET", "/v1/admin/sandboxes?cursor=abc", 400, "INVALID_CURSOR"},
		{"an unknown sandbox", "GET", "/v1/admin/sandboxes/404404", 404, "SANDBOX_NOT_FOUND"},
		{"a malformed ID", "GET", "/v1/admin/sandboxes/a;b", 400, "VALIDATION_ERROR"},
		{"retry an allocated sandbox", "POST", "/v1/admin/sandboxes/" + id + "/retry-deletion", 409, "WRONG_STATUS"},
		{"retry an unknown sandbox", "POST", "/v1/admin/sandboxes/404404/retry-deletion", 404, "SANDBOX_NOT_FOUND"},
		{"stats with a parameter", "GET", "/v1/admin/stats?fresh=1", 400, "VALIDATION_ERROR"},
		{"runs of an unknown job", "GET", "/v1/admin/jobs/nope", 404, "JOB_NOT_FOUND"},
		{"runs, limit 0", "GET", "/v1/admin/jobs/sync?limit=0", 400, "VALIDATION_ERROR"},
		{"bulk delete without status", "POST", "/v1/admin/bulk-delete", 400, "VALIDATION_ERROR"},
		{"bulk delete without a count", "POST", "/v1/admin/bulk-delete?status=stale&status_before=" + now, 400, "VALIDATION_ERROR"},
		{"bulk delete without a bound", "POST", "/v1/admin/bulk-delete?status=stale&expected_count=0", 400, "VALIDATION_ERROR"},
		{"bulk delete of another count", "POST", "/v1/admin/bulk-delete?status=stale&expected_count=3&status_before=" + now, 409, "POOL_CHANGED"},
		{"auto-delete-stale without a count", "POST", "/v1/admin/auto-delete-stale", 400, "VALIDATION_ERROR"},
		{"auto-delete-stale, 0 hours", "POST", "/v1/admin/auto-delete-stale?grace_period_hours=0&expected_count=0", 400, "VALIDATION_ERROR"},
		{"auto-delete-stale, 721 hours", "POST", "/v1/admin/auto-delete-stale?grace_period_hours=721&expected_count=0", 400, "VALIDATION_ERROR"},
		{"auto-delete-stale of another count", "POST", "/v1/admin/auto-delete-stale?expected_count=1", 409, "POOL_CHANGED"},
		{"metrics with a parameter", "GET", "/metrics?x=1", 400, "VALIDATION_ERROR"},
		{"GET a trigger", "GET", "/v1/admin/sync", 405, "METHOD_NOT_ALLOWED"},
		{"DELETE a sandbox", "DELETE", "/v1/admin/sandboxes/" + id, 405, "METHOD_NOT_ALLOWED"},
		{"a body", "POST", "/v1/admin/sync", 413, "PAYLOAD_TOO_LARGE"},
	} {
		var body []byte
		if c.status == 413 {
			body = bytes.Repeat([]byte("x"), 9<<10)
		}
		wantStatus(t, c.name, s.c.do(c.method, c.path, admin, body), c.status, c.code)
	}
}

// bulk-delete removes database records without a CSP call, so every status but stale and
// deletion_failed is refused, and so is a request without one.
func TestAdminBulkDeleteRefusesLiveStatuses(t *testing.T) {
	s := startAdminStack(t, nil, map[string]string{"SEED_SANDBOXES": "4"})
	id := allocateFor(t, s, "participant-1", "lab")
	other := allocateFor(t, s, "participant-2", "lab")
	release(t, s, "participant-2", other)
	for _, q := range []string{"", "?status=", "?status=available", "?status=allocated", "?status=pending_deletion", "?status=deleted",
		"?status=all", "?status=STALE", "?status=stale&status=allocated", "?statuses=stale"} {
		a := s.c.do("POST", "/v1/admin/bulk-delete"+q, bearer(s.AdminToken), nil)
		wantStatus(t, "bulk-delete"+q, a, http.StatusBadRequest, "VALIDATION_ERROR")
	}
	for _, status := range []string{"stale", "deletion_failed"} {
		if got := adminCall[map[string]any](t, s, "POST", "/v1/admin/bulk-delete?status="+status+"&expected_count=0&status_before="+fmt.Sprint(time.Now().Unix())); got["deleted"] != 0.0 {
			t.Fatalf("bulk-delete %s: %v", status, got)
		}
	}
	census := pooltest.Check(t, s.pool)
	if census.ByStatus[pool.Available] != 2 || census.ByStatus[pool.Allocated] != 1 || census.ByStatus[pool.PendingDeletion] != 1 {
		t.Fatalf("records were deleted: %v", census.ByStatus)
	}
	if _, err := s.pool.Get(context.Background(), id); err != nil {
		t.Fatalf("the allocated sandbox: %v", err)
	}
}

// The operator confirms the 2 stale sandboxes the stats show, as of the answer's Date;
// before the click arrives, the CSP stops listing more and two syncs make the available
// ones among them stale. The confirmed count with a later bound is 409 POOL_CHANGED and
// retires nothing; with the bound of the confirmation, the 2 confirmed ones are retired and
// the later ones stay.
func TestAdminBulkDeleteRetiresWhatTheOperatorConfirmed(t *testing.T) {
	s, _ := startMixedStack(t, 12, 5)
	seen := s.c.do("GET", "/v1/admin/stats", bearer(s.AdminToken), nil)
	var stats map[string]any
	if err := json.Unmarshal(seen.body, &stats); err != nil || stats["stale"] != 2.0 {
		t.Fatalf("stats %s %v", seen.body, err)
	}
	seenAt, err := http.ParseTime(seen.header.Get("Date"))
	if err != nil {
		t.Fatalf("the stats answer's Date: %v", err)
	}
	// The outage comes in a later second than the one the count was read in (the bound
	// is to the second).
	for time.Now().Unix() <= seenAt.Unix() {
		time.Sleep(20 * time.Millisecond)
	}
	if err := s.csp.SetFaults(cspfake.Faults{ListLimit: 12 - 6}); err != nil {
		t.Fatal(err)
	}
	runJob(t, s, "sync")
	run := runJob(t, s, "sync")
	later := run.Counts["marked_stale"]
	if later == 0 {
		t.Fatalf("the outage's second sync marked nothing stale: %+v", run)
	}

	moved := s.c.do("POST", fmt.Sprintf("/v1/admin/bulk-delete?status=stale&expected_count=2&status_before=%d", time.Now().Unix()), bearer(s.AdminToken), nil)
	wantStatus(t, "2 confirmed, more stale now", moved, http.StatusConflict, "POOL_CHANGED")
	if d := apitest.DecodeError(t, moved.body); !strings.Contains(d.Message, "You confirmed 2 stale record(s)") ||
		!strings.Contains(d.Message, fmt.Sprintf("%d match now", 2+later)) {
		t.Fatalf("the 409 lacks the numbers: %s", moved.body)
	}
	if census := pooltest.Check(t, s.pool); census.ByStatus[pool.Stale] != 2+later || census.ByStatus[pool.Retired] != 0 {
		t.Fatalf("a refused call changed the pool: %v", census.ByStatus)
	}

	done := adminCall[map[string]any](t, s, "POST", fmt.Sprintf("/v1/admin/bulk-delete?status=stale&expected_count=2&status_before=%d", seenAt.Unix()))
	if done["status"] != "completed" || done["deleted"] != 2.0 || done["skipped"] != 0.0 {
		t.Fatalf("the 2 confirmed: %v", done)
	}
	census := pooltest.Check(t, s.pool)
	if census.ByStatus[pool.Stale] != later || census.ByStatus[pool.Retired] != 2 {
		t.Fatalf("census %v, want the 2 confirmed retired and the %d later ones stale", census.ByStatus, later)
	}
	for sb, err := range s.pool.ByStatus(context.Background(), pool.Stale, 0) {
		if err != nil {
			t.Fatal(err)
		}
		if sb.StaleSince <= seenAt.Unix() {
			t.Errorf("%s, stale since %d, was confirmed and is still stale", sb.ID, sb.StaleSince)
		}
	}
}

// A track token gets 403 and no token 401 on every admin route of the table.
func TestEveryAdminRouteRefusesTrackAndMissingTokens(t *testing.T) {
	s := startAdminStack(t, nil, map[string]string{"SEED_SANDBOXES": "2"})
	routes := 0
	for _, r := range api.Routes {
		if r.Scope != auth.Admin && r.Scope != auth.Metrics {
			continue
		}
		routes++
		path := strings.NewReplacer("{id}", "3000001", "{name}", "sync").Replace(r.Path)
		wantStatus(t, r.Name+" with a track token", s.c.do(r.Method, path, bearer(s.TrackToken), nil), http.StatusForbidden, "FORBIDDEN")
		wantStatus(t, r.Name+" without a token", s.c.do(r.Method, path, nil, nil), http.StatusUnauthorized, "UNAUTHORIZED")
		wantStatus(t, r.Name+" with an unknown token", s.c.do(r.Method, path, bearer("not-a-configured-token-0123456789"), nil), http.StatusUnauthorized, "UNAUTHORIZED")
		if a := s.c.do(r.Method, path, bearer(s.AdminToken), nil); a.status == http.StatusUnauthorized || a.status == http.StatusForbidden {
			t.Errorf("%s: the admin token got %d", r.Name, a.status)
		}
	}
	if routes < 10 {
		t.Fatalf("only %d admin routes in the table", routes)
	}
	// Only the admin token's triggers started runs: besides the stack's first sync, at most
	// one run of each job is recorded (fewer while they are still running).
	for job, most := range map[string]int{"sync": 2, "cleanup": 1} {
		if runs := adminCall[struct{ Runs []jobRun }](t, s, "GET", "/v1/admin/jobs/"+job); len(runs.Runs) > most {
			t.Errorf("%s: %d runs, want at most %d", job, len(runs.Runs), most)
		}
	}
}

// Paging with limit 37 through a pool of 1 000 returns each sandbox exactly once; a
// tampered, another listing's or another table's cursor is a 400 INVALID_CURSOR.
func TestAdminListPagesThroughAThousandSandboxes(t *testing.T) {
	s := startAdminStack(t, nil, map[string]string{"SEED_SANDBOXES": "1000", "SEED_PREFIXES": "lab,other"})
	type page struct {
		Sandboxes []struct {
			ID   string `json:"sandbox_id"`
			Name string `json:"name"`
		}
		Count  int
		Cursor *string
	}
	pageThrough := func(filter string) (map[string]bool, []string) {
		seen, cursors := map[string]bool{}, []string{}
		path := "/v1/admin/sandboxes?limit=37" + filter
		for {
			p := adminCall[page](t, s, "GET", path)
			if p.Count != len(p.Sandboxes) || (p.Cursor != nil && p.Count != 37) {
				t.Fatalf("a page of %d with count %d (cursor %v)", len(p.Sandboxes), p.Count, p.Cursor)
			}
			for _, sb := range p.Sandboxes {
				if seen[sb.ID] {
					t.Fatalf("%s listed twice", sb.ID)
				}
				seen[sb.ID] = true
			}
			if p.Cursor == nil {
				return seen, cursors
			}
			cursors = append(cursors, *p.Cursor)
			path = "/v1/admin/sandboxes?limit=37" + filter + "&cursor=" + url.QueryEscape(*p.Cursor)
		}
	}
	all, cursors := pageThrough("")
	if len(all) != 1000 || len(cursors) != 1000/37 {
		t.Fatalf("%d sandboxes in %d pages", len(all), len(cursors)+1)
	}
	if other, _ := pageThrough("&prefix=other-"); len(other) != 500 {
		t.Fatalf("prefix other-: %d sandboxes", len(other))
	}

	mid := cursors[len(cursors)/2]
	tampered := []byte(mid)
	tampered[len(tampered)/3] ^= 0x02
	foreignPool := pooltest.New(t)
	for i := range 2 {
		if _, err := foreignPool.Create(context.Background(), pool.Account{ID: fmt.Sprint(i + 1), Name: fmt.Sprintf("lab-%04d", i), ExternalID: fmt.Sprintf("identity/accounts/x%d", i)},
			pool.Actor{Kind: "job", Name: "sync"}); err != nil {
			t.Fatal(err)
		}
	}
	foreign, err := foreignPool.List(context.Background(), pool.ListFilter{}, 1, "")
	if err != nil || foreign.Cursor == "" {
		t.Fatalf("foreign cursor: %v", err)
	}
	for name, q := range map[string]string{
		"tampered":        "?limit=37&cursor=" + url.QueryEscape(string(tampered)),
		"another listing": "?limit=37&status=available&cursor=" + url.QueryEscape(mid),
		"another table":   "?limit=37&cursor=" + url.QueryEscape(foreign.Cursor),
		"truncated":       "?limit=37&cursor=" + url.QueryEscape(mid[:len(mid)-4]),
	} {
		wantStatus(t, name+" cursor", s.c.do("GET", "/v1/admin/sandboxes"+q, bearer(s.AdminToken), nil), http.StatusBadRequest, "INVALID_CURSOR")
	}
}

// startMixedStack starts an admin stack over n generated accounts (prefixes lab and
// other) plus two "gone" ones, allocates a lab sandbox to each of students students,
// releases the first three, runs cleanup with the CSP refusing the first one's delete (one
// attempt allowed: it ends deletion_failed, the other two deleted), then stops listing the
// gone accounts until two syncs have made them stale. It returns the stack and the IDs
// allocated, in student order.
func startMixedStack(t *testing.T, n, students int) (adminStack, []string) {
	t.Helper()
	accounts := cspfake.Generate(n, []string{"lab", "other"})
	for i := range 2 {
		accounts = append(accounts, cspfake.Account{AccountType: "sandbox", State: "active", ID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", i),
			Name: fmt.Sprintf("gone-%04d", i), CSPID: int64(4_000_000 + i)})
	}
	// The tests hide part of the listing, and which sandboxes are available in that part
	// depends on the random picks of allocation: the sync's shrink guard (proved in
	// pkg/jobs) is off, so whether a sync marks them stale never depends on the picks.
	s := startAdminStack(t, accounts, map[string]string{"CLEANUP_MAX_ATTEMPTS": "1", "SYNC_MAX_SHRINK_FRACTION": "1"})

	var ids []string
	for i := range students {
		ids = append(ids, allocateFor(t, s, fmt.Sprintf("student-%d", i), "lab"))
	}
	for i, id := range ids[:3] {
		release(t, s, fmt.Sprintf("student-%d", i), id)
	}
	refused, err := s.pool.Get(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.csp.SetFaults(cspfake.Faults{DeleteFail: cspfake.Failure{UUIDs: []string{pool.AccountUUID(refused.ExternalID)}}}); err != nil {
		t.Fatal(err)
	}
	if run := runJob(t, s, "cleanup"); run.Counts["deleted"] != 2 || run.Counts["deletion_failed"] != 1 {
		t.Fatalf("cleanup %+v", run)
	}
	// The two deleted accounts left the listing; listing n-2 of the n left hides the two
	// gone ones, which come last: two syncs make them stale.
	if err := s.csp.SetFaults(cspfake.Faults{ListLimit: n - 2}); err != nil {
		t.Fatal(err)
	}
	runJob(t, s, "sync")
	if run := runJob(t, s, "sync"); run.Counts["marked_stale"] != 2 {
		t.Fatalf("second sync %+v", run)
	}
	return s, ids
}

// After a mixed workload (allocations, releases, a delete the CSP refuses until the
// sandbox is deletion_failed, stale marking), the stats and the gauges agree with a full
// read of the table.
func TestAdminStatsAgreeWithTheTable(t *testing.T) {
	s, _ := startMixedStack(t, 20, 6)

	census := pooltest.Check(t, s.pool)
	stats := adminCall[map[string]any](t, s, "GET", "/v1/admin/stats")
	metrics := string(s.c.do("GET", "/metrics", bearer(s.AdminToken), nil).body)
	total := 0
	for _, st := range pool.Statuses {
		n := census.ByStatus[st]
		if !st.Tombstone() {
			total += n
		}
		if stats[string(st)] != float64(n) || !strings.Contains(metrics, fmt.Sprintf("\nbroker_pool_%s %d\n", st, n)) {
			t.Errorf("%s: stats %v, census %d\n%s", st, stats[string(st)], n, metrics)
		}
	}
	if stats["total"] != float64(total) || !strings.Contains(metrics, fmt.Sprintf("\nbroker_pool_total %d\n", total)) {
		t.Errorf("total: stats %v, census %d", stats["total"], total)
	}
	want := map[pool.Status]int{pool.Available: 14, pool.Allocated: 3, pool.PendingDeletion: 0, pool.Stale: 2, pool.DeletionFailed: 1}
	for st, n := range want {
		if census.ByStatus[st] != n {
			t.Errorf("census %s = %d, want %d (%v)", st, census.ByStatus[st], n, census.ByStatus)
		}
	}
	// Available by prefix, against the available sandboxes the table holds.
	byPrefix := map[string]float64{}
	for sb, err := range s.pool.ByStatus(context.Background(), pool.Available, 0) {
		if err != nil {
			t.Fatal(err)
		}
		byPrefix[pool.NamePrefix(sb.Name)]++
	}
	got := stats["available_by_prefix"].(map[string]any)
	if len(got) != len(byPrefix) {
		t.Errorf("available_by_prefix %v, table %v", got, byPrefix)
	}
	for prefix, n := range byPrefix {
		if got[prefix] != n || !strings.Contains(metrics, fmt.Sprintf("broker_pool_available_by_prefix{prefix=%q} %d\n", prefix, int(n))) {
			t.Errorf("prefix %s: stats %v, table %v", prefix, got[prefix], n)
		}
	}
}

// One sandbox through allocate → release → failed deletes → deletion_failed → retry →
// deleted: its history shows every step, in order, with who did it.
func TestAdminHistoryOfOneSandbox(t *testing.T) {
	s := startAdminStack(t, cspfake.Generate(3, []string{"lab"}), map[string]string{
		"CLEANUP_MAX_ATTEMPTS": "2", "CLEANUP_BACKOFF_BASE_SECONDS": "1", "CLEANUP_BACKOFF_CAP_SECONDS": "1",
	})
	id := allocateFor(t, s, "student-h", "lab")
	release(t, s, "student-h", id)
	sb, err := s.pool.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.csp.SetFaults(cspfake.Faults{DeleteFail: cspfake.Failure{UUIDs: []string{sb.ExternalID[strings.LastIndex(sb.ExternalID, "/")+1:]}, Status: 503}}); err != nil {
		t.Fatal(err)
	}

	// Cleanup until the sandbox is given up on: a failed attempt, then (once its backoff
	// of at most a second has passed) the last one.
	var cleanupRuns []string
	testkit.Eventually(t, "a cleanup run that gives the sandbox up (deletion_failed)", func() bool {
		run := runJob(t, s, "cleanup")
		if run.Counts["failed"]+run.Counts["deletion_failed"] > 0 {
			cleanupRuns = append(cleanupRuns, run.RunID)
		}
		return run.Counts["deletion_failed"] == 1
	})
	if err := s.csp.SetFaults(cspfake.Faults{}); err != nil {
		t.Fatal(err)
	}
	retry := s.c.do("POST", "/v1/admin/sandboxes/"+id+"/retry-deletion", bearer(s.AdminToken), nil)
	wantStatus(t, "retry", retry, http.StatusOK, "")
	final := runJob(t, s, "cleanup")
	if final.Counts["deleted"] != 1 {
		t.Fatalf("final cleanup %+v", final)
	}

	detail := adminCall[struct {
		Sandbox *map[string]any
		History []struct {
			From      *string `json:"from"`
			To        *string `json:"to"`
			ActorKind *string `json:"actor_kind"`
			Actor     *string `json:"actor"`
			RequestID *string `json:"request_id"`
		}
	}](t, s, "GET", "/v1/admin/sandboxes/"+id)
	if detail.Sandbox == nil || (*detail.Sandbox)["status"] != "deleted" {
		t.Fatalf("the deleted sandbox is not a tombstone: %v", detail.Sandbox)
	}
	var steps []string
	for i := len(detail.History) - 1; i >= 0; i-- { // oldest first
		h := detail.History[i]
		steps = append(steps, fmt.Sprintf("%s>%s by %s %s", str(h.From), str(h.To), str(h.ActorKind), str(h.Actor)))
	}
	want := []string{
		">available by job sync",
		"available>allocated by student student-h",
		"allocated>pending_deletion by student student-h",
		"pending_deletion>pending_deletion by job cleanup",
		"pending_deletion>deletion_failed by job cleanup",
		"deletion_failed>pending_deletion by admin " + AdminClient,
		"pending_deletion>deleted by job cleanup",
	}
	if !slices.Equal(steps, want) {
		t.Fatalf("history, oldest first:\n  %s\nwant:\n  %s", strings.Join(steps, "\n  "), strings.Join(want, "\n  "))
	}
	// The job entries carry the run IDs the triggers answered with; the admin entry the
	// retry's request ID.
	n := len(detail.History)
	if str(detail.History[n-4].RequestID) != cleanupRuns[0] || str(detail.History[n-5].RequestID) != cleanupRuns[1] ||
		str(detail.History[1].RequestID) != retry.header.Get(api.HeaderRequestID) || str(detail.History[0].RequestID) != final.RunID {
		t.Fatalf("request IDs do not match the runs %v / %s / retry %s", cleanupRuns, final.RunID, retry.header.Get(api.HeaderRequestID))
	}
}

func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
