package csp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
)

// queriesOf is the _limit/_offset query of every listing request s received.
func queriesOf(s *cspfake.Server) []string {
	var out []string
	for _, r := range s.Requests() {
		out = append(out, r.Query)
	}
	return out
}

func pageQueries(limit int, offsets ...int) []string {
	var out []string
	for _, o := range offsets {
		out = append(out, fmt.Sprintf("_limit=%d&_offset=%d", limit, o))
	}
	return out
}

func TestListAccountsCompleteHoweverTheCSPPages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		faults      cspfake.Faults
		wantQueries []string
	}{
		{"honours paging", cspfake.Faults{Paging: cspfake.PagingHonour}, pageQueries(100, 0, 100, 200, 250)},
		// Everything at once; the repeat at offset 250 is told from an
		// ignored _offset by one probe with _limit=1.
		{"ignores paging", cspfake.Faults{Paging: cspfake.PagingIgnore},
			append(pageQueries(100, 0, 250), "_limit=1&_offset=0")},
		// 37 per page although 100 were asked for: six short pages are not
		// the end, only the empty one is.
		{"caps pages at 37", cspfake.Faults{Paging: cspfake.PagingCap, PageCap: 37},
			pageQueries(100, 0, 37, 74, 111, 148, 185, 222, 250)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			seeded := cspfake.Generate(250, []string{"lab", "demo"})
			s := startFake(t, cspfake.Options{}, seeded...)
			setFaults(t, s, tt.faults)
			c := newClient(t, s.URL(), func(o *csp.Options) { o.PageSize = 100 })

			l, err := c.ListAccounts(context.Background())
			if err != nil {
				t.Fatalf("ListAccounts: %v", err)
			}
			if len(l.Accounts) != len(seeded) {
				t.Fatalf("got %d accounts, want %d", len(l.Accounts), len(seeded))
			}
			for i := range seeded {
				if want := expectedAccount(t, seeded[i]); !sameAccount(l.Accounts[i], want) {
					t.Fatalf("account %d = %+v, want %+v", i, l.Accounts[i], want)
				}
			}
			if got := queriesOf(s); strings.Join(got, " ") != strings.Join(tt.wantQueries, " ") || l.Requests != len(got) {
				t.Fatalf("requests (%d counted) = %v, want %v", l.Requests, got, tt.wantQueries)
			}
			if l.Duplicates != 0 || l.Malformed != 0 {
				t.Fatalf("duplicates %d, malformed %d; want none", l.Duplicates, l.Malformed)
			}
		})
	}
}

// A CSP that ignores paging, whose listing grows between the first page and
// the second request: still one whole listing, not a repeated page.
func TestListAccountsIgnoredPagingWhileTheListingChanges(t *testing.T) {
	t.Parallel()
	seeded := cspfake.Generate(251, nil)
	s := startFake(t, cspfake.Options{}, seeded[:250]...)
	setFaults(t, s, cspfake.Faults{Paging: cspfake.PagingIgnore})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.PageSize = 100 })
	hold := s.HoldListing(1)

	type result struct {
		l   csp.Listing
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := c.ListAccounts(context.Background())
		done <- result{l, err}
	}()
	<-hold.Reached()
	s.Seed(seeded[250])
	hold.Release()
	r := <-done
	if r.err != nil || len(r.l.Accounts) != 250 {
		t.Fatalf("ListAccounts = %d accounts, %v; want the 250 of the first answer", len(r.l.Accounts), r.err)
	}
	if got := fmt.Sprint(queriesOf(s)); got != "[_limit=100&_offset=0 _limit=100&_offset=250 _limit=1&_offset=0]" {
		t.Fatalf("requests = %s", got)
	}
}

// A CSP that ignores paging and holds one account: the probe cannot ask for
// fewer, so it asks for more.
func TestListAccountsSingleAccountThatIgnoresPaging(t *testing.T) {
	t.Parallel()
	s := startFake(t, cspfake.Options{}, cspfake.Generate(1, nil)...)
	setFaults(t, s, cspfake.Faults{Paging: cspfake.PagingIgnore})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.PageSize = 1 })
	l, err := c.ListAccounts(context.Background())
	if err != nil || len(l.Accounts) != 1 {
		t.Fatalf("ListAccounts = %+v, %v; want the one account", l, err)
	}
	if got := fmt.Sprint(queriesOf(s)); got != "[_limit=1&_offset=0 _limit=1&_offset=1 _limit=2&_offset=0]" {
		t.Fatalf("requests = %s", got)
	}
}

// Honouring _limit but not _offset looks like ignoring paging on the second
// page; the probe tells it apart and the listing fails instead of
// returning the first page as if it were everything.
func TestListAccountsFailsWhenTheCSPIgnoresOnlyOffset(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ accounts, pageSize int }{{250, 100}, {3, 1}} {
		t.Run(fmt.Sprintf("%d by %d", tt.accounts, tt.pageSize), func(t *testing.T) {
			t.Parallel()
			s := startFake(t, cspfake.Options{}, cspfake.Generate(tt.accounts, nil)...)
			setFaults(t, s, cspfake.Faults{Paging: cspfake.PagingIgnoreOffset})
			c := newClient(t, s.URL(), func(o *csp.Options) { o.PageSize = tt.pageSize })
			ctx := testkit.Patience(t)

			l, err := c.ListAccounts(ctx)
			if !errors.Is(err, csp.ErrPageRepeated) || !strings.Contains(err.Error(), "honours _limit but answers every _offset with the first page") {
				t.Fatalf("ListAccounts = %v, want ErrPageRepeated naming the ignored _offset", err)
			}
			if l.Accounts != nil || csp.IsTransient(err) {
				t.Fatalf("got %d accounts, transient %v: a failed listing returns none and is not retried", len(l.Accounts), csp.IsTransient(err))
			}
			if n := len(s.Requests()); n != 3 {
				t.Fatalf("server saw %d requests, want 3 (two pages and the probe)", n)
			}
		})
	}
}

// pagedCSP serves two entries per request, starting at the offset serve
// picks from the offset asked for and the number of the request (from 1).
func pagedCSP(t *testing.T, serve func(offset int, n int32) int, hits *atomic.Int32) string {
	t.Helper()
	accounts := cspfake.Generate(100, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		offset, _ := strconv.Atoi(r.URL.Query().Get("_offset"))
		from := serve(offset, hits.Add(1))
		body, _ := json.Marshal(map[string]any{"results": accounts[from : from+2]})
		_, _ = w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestListAccountsFailsOnARepeatedPageWithoutLooping(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		serve func(offset int, n int32) int
		want  string
	}{
		{"the previous page again", func(offset int, _ int32) int { return min(offset, 2) },
			"offset 4): the page repeats the previous one"},
		{"the first page again", func(offset int, n int32) int {
			if n == 3 {
				return 0
			}
			return offset
		}, "offset 4): the page starts over with the first entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var hits atomic.Int32
			c := newClient(t, pagedCSP(t, tt.serve, &hits), func(o *csp.Options) { o.PageSize = 2 })
			ctx := testkit.Patience(t)

			l, err := c.ListAccounts(ctx)
			if !errors.Is(err, csp.ErrPageRepeated) || !strings.Contains(err.Error(), tt.want) || l.Accounts != nil {
				t.Fatalf("ListAccounts = %d accounts, %v; want none and ErrPageRepeated: %q", len(l.Accounts), err, tt.want)
			}
			if hits.Load() != 3 {
				t.Fatalf("server hit %d times, want 3", hits.Load())
			}
		})
	}
}

func TestListAccountsBoundedByMaxAccounts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		accounts int
		paging   cspfake.PagingMode
		wantErr  bool
	}{
		{"at the limit", 120, cspfake.PagingHonour, false},
		{"over the limit, paged", 121, cspfake.PagingHonour, true},
		{"over the limit, all at once", 121, cspfake.PagingIgnore, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := startFake(t, cspfake.Options{}, cspfake.Generate(tt.accounts, nil)...)
			setFaults(t, s, cspfake.Faults{Paging: tt.paging})
			c := newClient(t, s.URL(), func(o *csp.Options) { o.PageSize = 50; o.MaxAccounts = 120 })
			l, err := c.ListAccounts(context.Background())
			if !tt.wantErr {
				if err != nil || len(l.Accounts) != tt.accounts {
					t.Fatalf("ListAccounts = %d accounts, %v; want %d", len(l.Accounts), err, tt.accounts)
				}
				return
			}
			if !errors.Is(err, csp.ErrTooManyAccounts) || !strings.Contains(err.Error(), "more than 120 entries") || csp.IsTransient(err) {
				t.Fatalf("ListAccounts = %v, want a non-transient ErrTooManyAccounts naming the limit", err)
			}
			if l.Accounts != nil {
				t.Fatalf("got %d accounts alongside the error", len(l.Accounts))
			}
			if c.BreakerState() != breaker.Closed {
				t.Fatal("an over-long listing is not a CSP failure")
			}
		})
	}
}

// A CSP serving ever new entries, page after page, is stopped by the bound.
func TestListAccountsEndlessListingStopsAtTheBound(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		body := fmt.Sprintf(`{"results":[{"account_type":"sandbox","state":"active","id":"identity/accounts/00000000-0000-4000-8000-%012d","csp_id":%d}]}`, n, n)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	c := newClient(t, srv.URL, func(o *csp.Options) { o.MaxAccounts = 30 })
	if _, err := c.ListAccounts(context.Background()); !errors.Is(err, csp.ErrTooManyAccounts) {
		t.Fatalf("ListAccounts = %v, want ErrTooManyAccounts", err)
	}
	if hits.Load() != 31 {
		t.Fatalf("server hit %d times, want 31", hits.Load())
	}
}

func TestListAccountsReportsMalformedEntries(t *testing.T) {
	t.Parallel()
	const id = "identity/accounts/"
	tests := []struct {
		name   string
		modify func(*cspfake.Account)
		reason string
	}{
		{"1 100-byte name", func(a *cspfake.Account) { a.Name = strings.Repeat("n", 1100) }, "name is 1100 bytes (at most 256)"},
		{"control character in the name", func(a *cspfake.Account) { a.Name = "lab-\x1b[31m-0007" }, "name is not a letter or digit first"},
		{"command substitution in the name", func(a *cspfake.Account) { a.Name = "lab-a-bad-$(touch x)" }, "name is not a letter or digit first"},
		{"backquotes in the name", func(a *cspfake.Account) { a.Name = "lab-`id`" }, "name is not a letter or digit first"},
		{"a space in the name", func(a *cspfake.Account) { a.Name = "lab a" }, "name is not a letter or digit first"},
		{"a name that reads as an option", func(a *cspfake.Account) { a.Name = "-rf" }, "name is not a letter or digit first"},
		{"a glob in the name", func(a *cspfake.Account) { a.Name = "lab-*" }, "name is not a letter or digit first"},
		{"65-byte sfdc_account_id", func(a *cspfake.Account) { a.SFDCAccountID = strings.Repeat("0", 65) }, "sfdc_account_id is 65 bytes (at most 64)"},
		{"300 KB sfdc_account_id", func(a *cspfake.Account) { a.SFDCAccountID = strings.Repeat("0", 300<<10) }, "sfdc_account_id is 307200 bytes (at most 64)"},
		{"shell in the sfdc_account_id", func(a *cspfake.Account) { a.SFDCAccountID = "001;reboot" }, "sfdc_account_id is not a letter or digit first"},
		{"id that is not a uuid", func(a *cspfake.Account) { a.ID = id + "not-a-uuid" }, "is not identity/accounts/<uuid>"},
		{"uuid one digit short", func(a *cspfake.Account) { a.ID = a.ID[:len(a.ID)-1] }, "is not identity/accounts/<uuid>"},
		{"a bare uuid", func(a *cspfake.Account) { a.ID = a.UUID() }, "is not identity/accounts/<uuid>"},
		{"64 KB of junk before the account id", func(a *cspfake.Account) { a.ID = strings.Repeat("junk/", 64<<10/5) + a.ID },
			"bytes) is not identity/accounts/<uuid>"},
		{"another path before the uuid", func(a *cspfake.Account) { a.ID = "identity/users/" + a.UUID() }, "is not identity/accounts/<uuid>"},
		{"csp_id zero", func(a *cspfake.Account) {
			a.Raw = json.RawMessage(`{"account_type":"sandbox","state":"active","id":"` + a.ID + `","csp_id":0}`)
		}, "is not a positive integer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			seeded := cspfake.Generate(50, nil)
			tt.modify(&seeded[17])
			s := startFake(t, cspfake.Options{}, seeded...)
			c := newClient(t, s.URL(), func(o *csp.Options) { o.PageSize = 20 })

			l, err := c.ListAccounts(context.Background())
			if err != nil {
				t.Fatalf("ListAccounts: %v", err)
			}
			if len(l.Accounts) != 49 || l.Malformed != 1 || len(l.MalformedSamples) != 1 {
				t.Fatalf("got %d accounts, %d malformed (%q); want 49, 1", len(l.Accounts), l.Malformed, l.MalformedSamples)
			}
			if got := l.MalformedSamples[0]; !strings.HasPrefix(got, "entry 17: ") || !strings.Contains(got, tt.reason) {
				t.Fatalf("sample = %q, want entry 17 and %q", got, tt.reason)
			}
			if sample := l.MalformedSamples[0]; strings.Contains(sample, "nnnnnnnn") || strings.ContainsAny(sample, "$`*;") ||
				strings.Contains(sample, "00000000000") || len(sample) > 200 {
				t.Fatalf("the sample quotes a field or a whole id: %q", sample)
			}
			for _, a := range l.Accounts {
				if a.ExternalID == seeded[17].ID {
					t.Fatalf("the malformed entry was kept: %+v", a)
				}
			}
		})
	}
}

// The fake serves an account first without csp_id, then with one; both
// listings name it by the same UUID.
func TestListAccountsSameUUIDWithAndWithoutCSPID(t *testing.T) {
	t.Parallel()
	a := cspfake.Generate(1, nil)[0]
	withoutID := a
	withoutID.CSPID = 0
	s := startFake(t, cspfake.Options{}, withoutID)
	c := newClient(t, s.URL(), nil)

	first, err := c.ListAccounts(context.Background())
	if err != nil || len(first.Accounts) != 1 {
		t.Fatalf("first ListAccounts = %+v, %v", first, err)
	}
	s.Seed(a)
	second, err := c.ListAccounts(context.Background())
	if err != nil || len(second.Accounts) != 1 {
		t.Fatalf("second ListAccounts = %+v, %v", second, err)
	}
	f, g := first.Accounts[0], second.Accounts[0]
	if f.HasCSPID || f.SandboxID != a.UUID() || !g.HasCSPID || g.SandboxID != strconv.FormatInt(a.CSPID, 10) {
		t.Fatalf("first %+v, second %+v: want the uuid, then the csp_id, as SandboxID", f, g)
	}
	if f.UUID != a.UUID() || g.UUID != f.UUID {
		t.Fatalf("UUIDs %q and %q, want both %q", f.UUID, g.UUID, a.UUID())
	}
}

// The number of requests a listing of 10 000 accounts costs in honour mode
// with the default page size: 100 full pages and the empty one.
func TestListAccountsTenThousandAccountsRequests(t *testing.T) {
	t.Parallel()
	s := startFake(t, cspfake.Options{}, cspfake.Generate(10_000, nil)...)
	c := newClient(t, s.URL(), nil)
	l, err := c.ListAccounts(context.Background())
	if err != nil || len(l.Accounts) != 10_000 {
		t.Fatalf("ListAccounts = %d accounts, %v", len(l.Accounts), err)
	}
	if l.Requests != 101 || len(s.Requests()) != 101 {
		t.Fatalf("%d requests counted, %d served; want 101", l.Requests, len(s.Requests()))
	}
}

// The listing pays the fake's latency once per page, and a hold between two
// pages lets a delete land mid-listing.
func TestListAccountsSeesADeleteMadeBetweenTwoPages(t *testing.T) {
	t.Parallel()
	seeded := cspfake.Generate(6, nil)
	s := startFake(t, cspfake.Options{}, seeded...)
	setFaults(t, s, cspfake.Faults{ListLatency: 5 * time.Millisecond})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.PageSize = 3 })
	hold := s.HoldListing(1)

	done := make(chan csp.Listing, 1)
	go func() {
		l, _ := c.ListAccounts(context.Background())
		done <- l
	}()
	<-hold.Reached()
	if err := c.DeleteAccount(context.Background(), seeded[4].ID); err != nil {
		t.Fatalf("DeleteAccount during the hold: %v", err)
	}
	hold.Release()
	l := <-done
	var names []string
	for _, a := range l.Accounts {
		names = append(names, a.Name)
	}
	if got := fmt.Sprint(names); got != "[lab-0001 lab-0002 lab-0003 lab-0004 lab-0006]" {
		t.Fatalf("listing = %s, want lab-0005 missing: deleted between the two pages", got)
	}
}
