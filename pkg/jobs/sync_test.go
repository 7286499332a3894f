package jobs_test

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/broker/brokertest"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// withState returns copies of accounts with their CSP state set, e.g. "deleted" to make
// them vanish from the listing the way a removed account does.
func withState(accounts []cspfake.Account, state string) []cspfake.Account {
	out := make([]cspfake.Account, len(accounts))
	for i, a := range accounts {
		a.State = state
		out[i] = a
	}
	return out
}

func TestSyncCreatesRefreshesAndLeavesInUseAlone(t *testing.T) {
	accounts := cspfake.Generate(7, []string{"lab"})
	extra := []cspfake.Account{
		{AccountType: "sandbox", State: "suspended", ID: "identity/accounts/aaaaaaaa-0000-4000-8000-000000000001", Name: "lab-off", CSPID: 9_000_001},
		{AccountType: "user", State: "active", ID: "identity/accounts/aaaaaaaa-0000-4000-8000-000000000002", Name: "not-a-sandbox", CSPID: 9_000_002},
	}
	e := newJobEnv(t, envOptions{
		accounts: append(append([]cspfake.Account{}, accounts...), extra...),
		// Pages of 2 make sync read the listing in 5 requests.
		csp: func(o *csp.Options) { o.PageSize = 2 },
	})

	// The pool already knows accounts 1..6: 1 and 2 available, 3 allocated, 4 pending
	// deletion, 5 failed deletion, 6 available but listed with a new name below.
	for _, a := range accounts[1:3] {
		if _, err := e.pool.Create(ctx, asPoolAccount(a), syncJob); err != nil {
			t.Fatal(err)
		}
	}
	e.released(t, accounts[4:6])
	if _, err := e.pool.Create(ctx, asPoolAccount(accounts[3]), syncJob); err != nil {
		t.Fatal(err)
	}
	alloc, err := e.broker.Allocate(ctx, broker.AllocateRequest{Student: "alice", NamePrefix: accounts[3].Name})
	if err != nil || alloc.SandboxID != sandboxID(accounts[3]) {
		t.Fatalf("allocate %s: %+v, %v", accounts[3].Name, alloc, err)
	}
	failed := e.get(t, sandboxID(accounts[5]))
	if _, err := e.pool.FailDeletion(ctx, failed, "HTTP 500", cleanupActor); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pool.Create(ctx, asPoolAccount(accounts[6]), syncJob); err != nil {
		t.Fatal(err)
	}
	before := map[string]pool.Sandbox{}
	for _, a := range accounts[1:] {
		before[sandboxID(a)] = e.get(t, sandboxID(a))
	}

	// The CSP now reports new details for 2 (SFDC account), 3, 4, 5 (names) and 6 (name).
	changed := append([]cspfake.Account{}, accounts...)
	changed[2].SFDCAccountID = "0015g00000NEW002"
	for _, i := range []int{3, 4, 5, 6} {
		changed[i].Name += "-renamed"
	}
	e.fake.Seed(changed...)

	sum := e.run(t, "sync")
	if sum.Outcome != jobs.OutcomeOK || sum.Alarm != "" {
		t.Fatalf("summary %+v", sum)
	}
	wantCounts(t, sum, map[string]int{"listed": 7, "created": 1, "unchanged": 1, "refreshed": 2, "in_use": 3, "missed": 0, "conflicts": 0})
	lists := 0
	for _, r := range e.fake.Requests() {
		if r.Method == http.MethodGet {
			lists++
		}
	}
	// Five pages and the empty one that ends the listing (a short page may be a capped one).
	if lists != 6 {
		t.Errorf("sync made %d listing requests for 9 entries in pages of 2, want 6", lists)
	}

	created := e.get(t, sandboxID(accounts[0]))
	if created.Status != pool.Available || created.Name != accounts[0].Name || created.ExternalID != accounts[0].ID ||
		created.SFDCAccountID != accounts[0].SFDCAccountID || created.CreatedAt != asPoolAccount(accounts[0]).CreatedAt {
		t.Errorf("created %+v", created)
	}
	if got := e.get(t, sandboxID(accounts[1])); !reflect.DeepEqual(got, before[got.ID]) {
		t.Errorf("unchanged sandbox was written: %+v", got)
	}
	if got := e.get(t, sandboxID(accounts[2])); got.SFDCAccountID != "0015g00000NEW002" || got.Rev != before[got.ID].Rev+1 {
		t.Errorf("refresh of the SFDC account: %+v", got)
	}
	if got := e.get(t, sandboxID(accounts[6])); got.Name != changed[6].Name || got.Rev != before[got.ID].Rev+1 {
		t.Errorf("refresh of the name: %+v", got)
	}
	for _, i := range []int{3, 4, 5} {
		if got := e.get(t, sandboxID(accounts[i])); !reflect.DeepEqual(got, before[got.ID]) {
			t.Errorf("sync touched %s sandbox %s:\n was %+v\n now %+v", before[got.ID].Status, got.ID, before[got.ID], got)
		}
	}
	for _, x := range extra {
		if _, err := e.pool.Get(ctx, sandboxID(x)); !errors.Is(err, pool.ErrNotFound) {
			t.Errorf("%s (%s/%s) entered the pool: %v", x.Name, x.AccountType, x.State, err)
		}
	}
	census := pooltest.Check(t, e.pool)
	if census.ByStatus[pool.Available] != 4 {
		t.Errorf("census %+v", census)
	}
}

func TestSyncTwoStrikesMarkStaleAndResurrection(t *testing.T) {
	accounts := cspfake.Generate(10, nil)
	// Query pages of 3 items: sync reads the whole pool, page after page (docs/upstream.md D10).
	e := newJobEnv(t, envOptions{accounts: accounts, poolPages: 3})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 10})

	gone := accounts[7:]
	e.fake.Seed(withState(gone, "deleted")...)
	wantCounts(t, e.run(t, "sync"), map[string]int{"missed": 3, "marked_stale": 0})
	for _, a := range gone {
		if s := e.get(t, sandboxID(a)); s.Status != pool.Available || s.MissedSyncs != 1 {
			t.Fatalf("after one miss: %+v", s)
		}
	}

	// A miss followed by a listing starts the count again: strikes must be consecutive.
	e.fake.Seed(gone[0])
	wantCounts(t, e.run(t, "sync"), map[string]int{"refreshed": 1, "missed": 0, "marked_stale": 2})
	if s := e.get(t, sandboxID(gone[0])); s.Status != pool.Available || s.MissedSyncs != 0 {
		t.Fatalf("listed again after one miss: %+v", s)
	}
	e.fake.Seed(withState(gone[:1], "deleted")...)
	e.clock.Advance(time.Minute)
	wantCounts(t, e.run(t, "sync"), map[string]int{"missed": 1, "marked_stale": 0})
	wantCounts(t, e.run(t, "sync"), map[string]int{"missed": 0, "marked_stale": 1})
	for _, a := range gone {
		s := e.get(t, sandboxID(a))
		if s.Status != pool.Stale || s.StaleSince == 0 || s.StatusAt != s.StaleSince {
			t.Fatalf("after two misses: %+v", s)
		}
	}
	if n := pooltest.Check(t, e.pool).ByStatus[pool.Available]; n != 7 {
		t.Fatalf("%d available, want 7: a stale sandbox must not be allocatable", n)
	}

	// Back in the CSP: stale → available, allocatable again.
	e.fake.Seed(gone...)
	wantCounts(t, e.run(t, "sync"), map[string]int{"unstaled": 3, "unchanged": 7})
	for _, a := range gone {
		if s := e.get(t, sandboxID(a)); s.Status != pool.Available || s.StaleSince != 0 || s.MissedSyncs != 0 {
			t.Fatalf("resurrected: %+v", s)
		}
	}
	if n := pooltest.Check(t, e.pool).ByStatus[pool.Available]; n != 10 {
		t.Fatalf("%d available after resurrection, want 10", n)
	}
	pooltest.Check(t, e.pool)
}

func TestSyncShrinkGuard(t *testing.T) {
	tests := []struct {
		name     string
		faults   cspfake.Faults
		reason   string
		guarded  bool
		wantMiss int
		// lists is whether the listing still shows the renamed account.
		lists bool
	}{
		{name: "empty listing", faults: cspfake.Faults{ListEmpty: true}, guarded: true,
			reason: "the CSP listing is empty; no sandbox marked stale"},
		{name: "listing drops 60%", faults: cspfake.Faults{ListLimit: 4}, guarded: true, lists: true,
			reason: "the CSP listing shows only 4 of the pool's 10 available sandboxes (a drop of 60%, more than the 50% allowed); no sandbox marked stale"},
		{name: "listing drops 50%", faults: cspfake.Faults{ListLimit: 5}, wantMiss: 5, lists: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			accounts := cspfake.Generate(10, nil)
			e := newJobEnv(t, envOptions{accounts: accounts})
			wantCounts(t, e.run(t, "sync"), map[string]int{"created": 10})
			// One listed account changed: a guarded sync still refreshes it.
			renamed := accounts[0]
			renamed.Name = "lab-renamed"
			e.fake.Seed(renamed)

			e.setFaults(t, tt.faults)
			for range 3 {
				sum := e.run(t, "sync")
				if tt.guarded {
					if sum.Reason != tt.reason || sum.Alarm != jobs.AlarmSyncShrinkGuard || sum.Outcome != jobs.OutcomeOK {
						t.Fatalf("guarded sync: outcome %s, alarm %q, reason %q", sum.Outcome, sum.Alarm, sum.Reason)
					}
					wantCounts(t, sum, map[string]int{"missed": 0, "marked_stale": 0})
				} else if sum.Alarm != "" {
					t.Fatalf("sync within the allowed drop raised %q: %s", sum.Alarm, sum.Reason)
				}
			}
			if got := e.get(t, sandboxID(accounts[0])); tt.lists && got.Name != "lab-renamed" {
				t.Fatalf("listed change not refreshed: %+v", got)
			}
			stale := e.count(t, pool.Stale)
			if tt.guarded && stale != 0 {
				t.Fatalf("%d sandboxes marked stale from a distrusted listing", stale)
			}
			if !tt.guarded && stale != tt.wantMiss {
				t.Fatalf("%d stale after a trusted shrinking listing, want %d", stale, tt.wantMiss)
			}
			pooltest.Check(t, e.pool)
		})
	}
}

// TestSyncRacingAllocationsRevertsNone is docs/upstream.md D1: syncs run over and over while 200
// students allocate, each sync trying to refresh every available sandbox (the CSP reports
// a new SFDC account for all of them). No allocation may be undone.
func TestSyncRacingAllocationsRevertsNone(t *testing.T) {
	const n = 200
	accounts := cspfake.Generate(n, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": n})
	changed := make([]cspfake.Account, n)
	for i, a := range accounts {
		a.SFDCAccountID = "0015g00000RACE01"
		changed[i] = a
	}
	e.fake.Seed(changed...)

	var (
		wg       sync.WaitGroup
		done     = make(chan struct{})
		syncs    []jobs.Summary
		syncErrs []error
	)
	wg.Go(func() {
		for {
			sum, err := e.runner.Run(ctx, "sync")
			syncs, syncErrs = append(syncs, sum), append(syncErrs, err)
			select {
			case <-done:
				return
			default:
			}
		}
	})
	results := brokertest.AllocateAll(e.broker, brokertest.Students(n, ""))
	close(done)
	wg.Wait()

	for _, err := range syncErrs {
		if err != nil {
			t.Fatalf("sync: %v", err)
		}
	}
	raced := 0
	for _, s := range syncs {
		raced += s.Counts["conflicts"]
	}
	t.Logf("%d syncs ran during the allocations; %d of their writes lost to a claim", len(syncs), raced)
	holder := brokertest.AssertDistinct(t, results)
	for _, r := range results {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Req.Student, r.Err)
		}
		s := e.get(t, r.Alloc.SandboxID)
		if s.Status != pool.Allocated || s.Owner != r.Req.Student || s.ExpiresAt != r.Alloc.ExpiresAt {
			t.Fatalf("allocation of %s to %s was undone: %+v", s.ID, r.Req.Student, s)
		}
	}
	if len(holder) != n {
		t.Fatalf("%d sandboxes allocated, want %d", len(holder), n)
	}
	// One more sync after the burst touches none of them.
	wantCounts(t, e.run(t, "sync"), map[string]int{"in_use": n, "refreshed": 0, "created": 0})
	census := pooltest.Check(t, e.pool)
	if census.ByStatus[pool.Allocated] != n || census.Owners != n || census.ByStatus[pool.Available] != 0 {
		t.Fatalf("census %+v", census)
	}
}

// TestSyncNeverAdoptsHostileEntries lists, among 10 good accounts, the entries a CSP was
// seen to list (cspfake.Hostile: a 300 KB sfdc_account_id, 64 KB of junk before
// identity/accounts/<uuid>, names a shell acts on). Each is skipped, counted and reported
// without its value; the good ones, listed before and after them, are created; and no
// allocation, however many, gets a hostile one. (Each used to become available, and the
// 300 KB one failed every sync run with DynamoDB's item size limit.)
func TestSyncNeverAdoptsHostileEntries(t *testing.T) {
	good, hostile := cspfake.Generate(10, nil), cspfake.Hostile()
	listed := slices.Concat(good[:5], hostile, good[5:])
	e := newJobEnv(t, envOptions{accounts: listed})
	sum := e.run(t, "sync")
	wantCounts(t, sum, map[string]int{"listed": 10, "created": 10, "malformed": len(hostile), "write_refused": 0})
	if sum.Outcome != jobs.OutcomeOK || sum.Alarm != "" || len(sum.Errors) != len(hostile) {
		t.Fatalf("summary %+v", sum)
	}
	for _, reason := range sum.Errors {
		if len(reason) > 300 || strings.ContainsAny(reason, "$`") || strings.Contains(reason, "AbCdE0015g") || strings.Count(reason, "junk/") > 10 {
			t.Errorf("a reason echoes a hostile value: %q", reason)
		}
	}
	for i := range len(listed) + 1 {
		a, err := e.broker.Allocate(ctx, broker.AllocateRequest{Student: fmt.Sprintf("student-%d", i), NamePrefix: "lab"})
		switch {
		case i < len(good) && (err != nil || strings.Contains(a.Name, "bad")):
			t.Fatalf("allocation %d: %+v, %v; want a good sandbox", i, a, err)
		case i >= len(good) && !errors.Is(err, broker.ErrNoSandbox):
			t.Fatalf("allocation %d: %+v, %v; want ErrNoSandbox: only the 10 good accounts are sandboxes", i, a, err)
		}
	}
	if census := pooltest.Check(t, e.pool); census.ByStatus[pool.Allocated] != len(good) || census.ByStatus[pool.Available] != 0 {
		t.Fatalf("census %+v", census.ByStatus)
	}
}

// TestSyncGoesOnPastARecordDynamoDBRefuses holds a record that an earlier version adopted
// with an sfdc_account_id as long as DynamoDB's 400 KB item limit allows, and that the
// listing no longer shows: its strike would take it past the limit. DynamoDB refuses that
// write; the refusal is the record's, not the run's: it is counted under write_refused
// and reported with the sandbox's ID, and the next missing record still gets its strike.
func TestSyncGoesOnPastARecordDynamoDBRefuses(t *testing.T) {
	accounts := cspfake.Generate(10, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 10})
	account := func(id string, n int, sfdc string) pool.Account {
		return pool.Account{ID: id, Name: "lab-old-" + id, SFDCAccountID: sfdc,
			ExternalID: fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", n)}
	}
	// The longest sfdc_account_id DynamoDB takes in such a record, found by bisection: at
	// it, the record is within a byte of the limit. Each probe is the record's exact twin
	// (its ID, its account, the environment's clock) on a table of its own: an item's size
	// depends on numbers' significant digits (a timestamp, its shard), so a probe of
	// another ID or time may fit by a byte where the record does not.
	fits, tooLong := 300<<10, 400<<10
	for tooLong-fits > 1 {
		mid := (fits + tooLong) / 2
		probe := pooltest.NewWith(t, pool.Options{Now: e.clock.Now})
		_, err := probe.Create(ctx, account("1000001", 1, strings.Repeat("x", mid)), syncJob)
		switch {
		case err == nil:
			fits = mid
		case errors.Is(err, pool.ErrItemRefused):
			tooLong = mid
		default:
			t.Fatal(err)
		}
	}
	full, missing := account("1000001", 1, strings.Repeat("x", fits)), account("1000002", 2, "")
	for _, a := range []pool.Account{full, missing} {
		if _, err := e.pool.Create(ctx, a, syncJob); err != nil {
			t.Fatal(err)
		}
	}
	sum := e.run(t, "sync")
	wantCounts(t, sum, map[string]int{"unchanged": 10, "write_refused": 1, "missed": 1})
	if sum.Outcome != jobs.OutcomeOK || len(sum.Errors) != 1 || !strings.HasPrefix(sum.Errors[0], "sandbox "+full.ID+": ") ||
		strings.Contains(sum.Errors[0], "xxxx") {
		t.Fatalf("summary %+v", sum)
	}
	t.Logf("reported: %s", sum.Errors[0])
	if s := e.get(t, missing.ID); s.MissedSyncs != 1 {
		t.Fatalf("the record after the refused one: %+v, want its strike", s)
	}
	pooltest.Check(t, e.pool)
}
