package jobs_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// pageSize is the listing's _limit in these tests, so 25 accounts take several pages.
const pageSize = 10

func smallPages(o *csp.Options) { o.PageSize = pageSize }

// allAvailable fails the test unless every account has an available record that no sync
// has struck.
func (e *jobEnv) allAvailable(t *testing.T, accounts []cspfake.Account) {
	t.Helper()
	for _, a := range accounts {
		if s := e.get(t, sandboxID(a)); s.Status != pool.Available || s.MissedSyncs != 0 {
			t.Fatalf("%s after sync: %+v", a.Name, s)
		}
	}
}

// However the CSP pages (honours _limit and _offset, ignores both and sends everything,
// or caps pages below _limit while more follow), a sync run sees every account.
func TestSyncCompleteUnderEveryPagingMode(t *testing.T) {
	for _, f := range []cspfake.Faults{
		{Paging: cspfake.PagingHonour},
		{Paging: cspfake.PagingIgnore},
		{Paging: cspfake.PagingCap, PageCap: 3},
	} {
		t.Run(string(f.Paging), func(t *testing.T) {
			accounts := cspfake.Generate(25, nil)
			e := newJobEnv(t, envOptions{accounts: accounts, csp: smallPages})
			e.setFaults(t, f)
			sum := e.run(t, "sync")
			wantCounts(t, sum, map[string]int{"listed": 25, "created": 25, "malformed": 0})
			if sum.Outcome != jobs.OutcomeOK || sum.Alarm != "" {
				t.Fatalf("summary %+v", sum)
			}
			e.allAvailable(t, accounts)
			pooltest.Check(t, e.pool)
		})
	}
}

// A listing that cannot be completed (a CSP that honours _limit but answers every
// _offset with the first page, or one past CSP_LIST_MAX_ACCOUNTS) fails the run with its
// reason and an alarm, and marks nothing stale, however often it happens.
func TestSyncRefusesAListingItCannotComplete(t *testing.T) {
	for name, tc := range map[string]struct {
		faults cspfake.Faults
		csp    func(*csp.Options)
		reason string
	}{
		"repeating page": {cspfake.Faults{Paging: cspfake.PagingIgnoreOffset}, smallPages, "repeated page"},
		"too many":       {cspfake.Faults{}, func(o *csp.Options) { smallPages(o); o.MaxAccounts = 20 }, "more than 20 entries"},
	} {
		t.Run(name, func(t *testing.T) {
			accounts := cspfake.Generate(25, nil)
			e := newJobEnv(t, envOptions{accounts: accounts, csp: tc.csp})
			// The pool already holds every account, from a listing that could be read.
			for _, a := range accounts {
				if _, err := e.pool.Create(ctx, asPoolAccount(a), syncJob); err != nil {
					t.Fatal(err)
				}
			}
			e.setFaults(t, tc.faults)
			for range 3 {
				e.clock.Advance(10 * time.Minute)
				sum, err := e.runner.Run(ctx, "sync")
				if err == nil || sum.Outcome != jobs.OutcomeFailed || sum.Alarm != jobs.AlarmSyncListingRefused ||
					!strings.Contains(sum.Reason, tc.reason) || !strings.Contains(sum.Reason, "nothing was synced or marked stale") {
					t.Fatalf("summary %+v, %v", sum, err)
				}
				wantCounts(t, sum, map[string]int{"missed": 0, "marked_stale": 0, "created": 0})
			}
			e.allAvailable(t, accounts)
			pooltest.Check(t, e.pool)
		})
	}
}

// One name of 1 100 bytes among 50 accounts: the entry is skipped, counted and reported
// in the summary, and the other 49 are created.
func TestSyncSkipsAndReportsAMalformedEntry(t *testing.T) {
	accounts := cspfake.Generate(50, nil)
	long := &accounts[17]
	long.Name = strings.Repeat("n", 1100)
	e := newJobEnv(t, envOptions{accounts: accounts})
	sum := e.run(t, "sync")
	wantCounts(t, sum, map[string]int{"listed": 49, "created": 49, "malformed": 1})
	if sum.Outcome != jobs.OutcomeOK || len(sum.Errors) != 1 || !strings.Contains(sum.Errors[0], "name is 1100 bytes") ||
		!strings.Contains(sum.Errors[0], long.UUID()) || strings.Contains(sum.Errors[0], long.Name) {
		t.Fatalf("summary %+v", sum)
	}
	if _, err := e.pool.Get(ctx, sandboxID(*long)); err == nil {
		t.Fatal("the malformed entry was created")
	}
	if n := pooltest.Check(t, e.pool).ByStatus[pool.Available]; n != 49 {
		t.Fatalf("%d available, want 49", n)
	}
	pooltest.Check(t, e.pool)
}

// A listing answered by something that is not the CSP API, or refusing the token, fails
// the sync with the alarm that names the cause; the pool is left as it was.
func TestSyncListingFromAWrongEndpointOrToken(t *testing.T) {
	for name, tc := range map[string]struct {
		csp   func(*csp.Options)
		alarm string
	}{
		"wrong base URL": {func(o *csp.Options) { o.BaseURL += "/wrong" }, jobs.AlarmCSPWrongEndpoint},
		"rejected token": {func(o *csp.Options) { o.Token = "revoked-token" }, jobs.AlarmCSPTokenRejected},
	} {
		t.Run(name, func(t *testing.T) {
			accounts := cspfake.Generate(5, nil)
			e := newJobEnv(t, envOptions{accounts: accounts, csp: tc.csp})
			for _, a := range accounts[:3] {
				if _, err := e.pool.Create(ctx, asPoolAccount(a), syncJob); err != nil {
					t.Fatal(err)
				}
			}
			sum, err := e.runner.Run(ctx, "sync")
			if err == nil || sum.Outcome != jobs.OutcomeFailed || sum.Alarm != tc.alarm {
				t.Fatalf("summary %+v, %v", sum, err)
			}
			e.allAvailable(t, accounts[:3])
			pooltest.Check(t, e.pool)
		})
	}
}

// Slow pages (the fake's list latency, paid per page): with time enough the sync
// completes; when its deadline comes mid-listing, it stops as partial and marks nothing
// stale, since a partial listing would look like accounts disappearing.
func TestSyncWithSlowPages(t *testing.T) {
	t.Parallel()
	accounts := cspfake.Generate(25, nil)
	e := newJobEnv(t, envOptions{accounts: accounts, csp: smallPages})
	e.setFaults(t, cspfake.Faults{ListLatency: 20 * time.Millisecond})
	runCtx := testkit.Patience(t)
	sum, err := e.runner.Run(runCtx, "sync")
	if err != nil || sum.Outcome != jobs.OutcomeOK {
		t.Fatalf("sync with slow pages: %+v %v", sum, err)
	}
	wantCounts(t, sum, map[string]int{"listed": 25, "created": 25})

	// Four requests (three pages and the empty one that ends the listing) of 1.5 s each
	// cannot fit in 5 s: a request starts only while the request timeout (2 s) is left
	// before the 0.5 s kept to finish, so at most two do, however fast the machine. The
	// first has 2.5 s to start: a run on a machine too slow for that lists nothing and
	// proves nothing, so the runs go on until one has started the listing.
	e.setFaults(t, cspfake.Faults{ListLatency: 1500 * time.Millisecond})
	before := len(e.fake.Requests())
	patience := testkit.Patience(t)
	for runs := 0; runs < 3 || len(e.fake.Requests()) == before; runs++ {
		if patience.Err() != nil {
			t.Fatalf("no listing started in %d runs", runs)
		}
		e.clock.Advance(10 * time.Minute)
		runCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
		sum, err := e.runner.Run(runCtx, "sync")
		cancel()
		if err != nil || sum.Outcome != jobs.OutcomePartial {
			t.Fatalf("sync cut mid-listing: %+v %v", sum, err)
		}
		wantCounts(t, sum, map[string]int{"listed": 0, "missed": 0, "marked_stale": 0})
	}
	e.allAvailable(t, accounts)
	pooltest.Check(t, e.pool)
}

// The uuid sync keys a listed account by (csp.Account.UUID) is the one pool.AccountUUID
// gives its external ID, whatever the case of its hex digits: an account listed with
// upper-case digits and later with lower-case ones is one record.
func TestSyncAccountUUIDIsThePoolsOne(t *testing.T) {
	a := cspfake.Generate(1, nil)[0]
	upper := a
	upper.ID = "identity/accounts/" + strings.ToUpper(a.UUID())
	e := newJobEnv(t, envOptions{accounts: []cspfake.Account{upper}})
	listing, err := e.csp.ListAccounts(ctx)
	if err != nil || len(listing.Accounts) != 1 {
		t.Fatalf("listing %+v %v", listing, err)
	}
	if got := listing.Accounts[0]; got.UUID != pool.AccountUUID(got.ExternalID) || got.UUID != a.UUID() {
		t.Fatalf("listed uuid %q, pool.AccountUUID %q", got.UUID, pool.AccountUUID(got.ExternalID))
	}
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 1})

	// The same account under its uuid as sandbox ID (no csp_id), in lower case.
	bare := a
	bare.CSPID = 0
	e.fake.Seed(bare)
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": 0, "uuid_conflicts": 1})
	if s := e.get(t, sandboxID(a)); s.AccountUUID != a.UUID() || s.Status != pool.Available {
		t.Fatalf("record %+v", s)
	}
	if _, err := e.pool.Get(ctx, a.UUID()); err == nil {
		t.Fatal("a second record for one account")
	}
	pooltest.Check(t, e.pool)
}
