package csp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/breaker"
	"github.com/sandbox-broker/broker/pkg/csp"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
)

func TestListAccountsPagesToTheEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		accounts, pageSize int
		wantOffsets        []int
	}{
		// Only an empty page ends the listing: a short one may be a capped page.
		{250, 100, []int{0, 100, 200, 250}},
		{200, 100, []int{0, 100, 200}},
		{0, 100, []int{0}},
		{3, 1, []int{0, 1, 2, 3}},
		{1500, 1000, []int{0, 1000, 1500}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d accounts by %d", tt.accounts, tt.pageSize), func(t *testing.T) {
			seeded := cspfake.Generate(tt.accounts, []string{"lab", "demo"})
			s := startFake(t, cspfake.Options{}, seeded...)
			c := newClient(t, s.URL(), func(o *csp.Options) { o.PageSize = tt.pageSize })

			l, err := c.ListAccounts(context.Background())
			if err != nil {
				t.Fatalf("ListAccounts: %v", err)
			}
			got := l.Accounts
			if len(got) != len(seeded) {
				t.Fatalf("got %d accounts, want %d", len(got), len(seeded))
			}
			for i := range seeded {
				if want := expectedAccount(t, seeded[i]); !sameAccount(got[i], want) {
					t.Fatalf("account %d = %+v, want %+v", i, got[i], want)
				}
			}
			reqs := s.Requests()
			if len(reqs) != len(tt.wantOffsets) || l.Requests != len(reqs) {
				t.Fatalf("server saw %d requests, want %d", len(reqs), len(tt.wantOffsets))
			}
			for i, off := range tt.wantOffsets {
				want := fmt.Sprintf("_limit=%d&_offset=%d", tt.pageSize, off)
				if reqs[i].Method != http.MethodGet || reqs[i].Path != "/v2/current_user/accounts" || reqs[i].Query != want {
					t.Fatalf("request %d = %s %s?%s, want GET /v2/current_user/accounts?%s", i, reqs[i].Method, reqs[i].Path, reqs[i].Query, want)
				}
			}
		})
	}
}

func TestListAccountsFixtureFilteringAndMapping(t *testing.T) {
	t.Parallel()
	fixture, err := cspfake.LoadFixture("../../testdata/csp/accounts.json")
	if err != nil {
		t.Fatal(err)
	}
	s := startFake(t, cspfake.Options{}, fixture...)
	c := newClient(t, s.URL(), func(o *csp.Options) { o.PageSize = 3 })

	l, err := c.ListAccounts(context.Background())
	if err != nil {
		t.Fatalf("ListAccounts: %v", err)
	}
	got := l.Accounts
	const id = "identity/accounts/"
	want := []csp.Account{
		{SandboxID: "2012345", HasCSPID: true, UUID: "6f1c2a4e-9b1d-4c8e-a6f2-3d5e7b9c1a01", ExternalID: id + "6f1c2a4e-9b1d-4c8e-a6f2-3d5e7b9c1a01", Name: "lab-adventure-0001",
			CreatedAt: time.Date(2025, 10, 6, 9, 15, 42, 123456000, time.UTC), SFDCAccountID: "0015g00000AbCdE1"},
		{SandboxID: "2012346", HasCSPID: true, UUID: "7a2d3b5f-0c2e-4d9f-b7a3-4e6f8c0d2b02", ExternalID: id + "7a2d3b5f-0c2e-4d9f-b7a3-4e6f8c0d2b02", Name: "lab-adventure-0002",
			CreatedAt: time.Date(2025, 10, 6, 9, 16, 3, 0, time.UTC), SFDCAccountID: "0015g00000AbCdE2"},
		// No csp_id: the full id stands in for it.
		{SandboxID: "8b3e4c6a-1d3f-4e0a-88b4-5f7a9d1e3c03", UUID: "8b3e4c6a-1d3f-4e0a-88b4-5f7a9d1e3c03", ExternalID: id + "8b3e4c6a-1d3f-4e0a-88b4-5f7a9d1e3c03",
			Name: "lab-legacy-0003", CreatedAt: time.Date(2025, 10, 6, 9, 17, 10, 0, time.UTC)},
		// csp_id as a string, created_at unparsable, sfdc_account_id null.
		{SandboxID: "2012348", HasCSPID: true, UUID: "9c4f5d7b-2e4a-4f1b-99c5-6a8b0e2f4d04", ExternalID: id + "9c4f5d7b-2e4a-4f1b-99c5-6a8b0e2f4d04", Name: "lab-adventure-0004"},
		// name null.
		{SandboxID: "2012349", HasCSPID: true, UUID: "ad5a6e8c-3f5b-4a2c-8ad6-7b9c1f3a5e05", ExternalID: id + "ad5a6e8c-3f5b-4a2c-8ad6-7b9c1f3a5e05", Name: "sandbox-2012349",
			CreatedAt: time.Date(2025, 10, 7, 11, 0, 0, 500000000, time.UTC), SFDCAccountID: "0015g00000AbCdE5"},
		// Left out: a suspended sandbox, a customer account, and csp_id "n/a".
	}
	if len(got) != len(want) || l.Filtered != 2 || l.Malformed != 1 {
		t.Fatalf("got %d accounts %+v (filtered %d, malformed %d), want %d (2, 1)", len(got), got, l.Filtered, l.Malformed, len(want))
	}
	for i := range want {
		if !sameAccount(got[i], want[i]) {
			t.Errorf("account %d = %+v\nwant          %+v", i, got[i], want[i])
		}
	}
}

func TestListAccountsSkipsOddEntriesWithoutFailing(t *testing.T) {
	t.Parallel()
	raw := func(s string) cspfake.Account { return cspfake.Account{Raw: json.RawMessage(s)} }
	const active = `"account_type":"sandbox","state":"active"`
	id := func(n int) string { return fmt.Sprintf("identity/accounts/00000000-0000-4000-8000-%012d", n) }
	s := startFake(t, cspfake.Options{},
		raw(`null`), raw(`42`), raw(`"text"`), raw(`[]`), raw(`{}`),
		raw(`{`+active+`}`),
		raw(`{`+active+`,"id":null,"csp_id":7}`),
		raw(`{`+active+`,"id":"identity/accounts/","csp_id":8}`),
		raw(`{`+active+`,"id":"`+id(1)+`","csp_id":12.5}`),
		raw(`{`+active+`,"id":"`+id(2)+`","csp_id":-3}`),
		raw(`{`+active+`,"id":"`+id(3)+`","csp_id":"99999999999999999999999"}`),
		raw(`{`+active+`,"id":"`+id(4)+`","csp_id":{}}`),
		raw(`{`+active+`,"id":"`+id(5)+`","csp_id":true}`),
		raw(`{"account_type":5,"state":"active","id":"`+id(6)+`","csp_id":9}`),
		raw(`{"account_type":"sandbox","state":null,"id":"`+id(7)+`","csp_id":10}`),
		raw(`{`+active+`,"id":"`+id(8)+`","csp_id":" 77 ","name":123,"created_at":1759742142,"sfdc_account_id":false}`),
		raw(`{`+active+`,"id":"`+strings.ToUpper(id(9)[len("identity/accounts/"):])+`","csp_id":null,"name":"  ","created_at":null}`),
		raw(`{`+active+`,"id":"identity/accounts/ABCDEF01-0000-4000-8000-00000000000A","csp_id":null,"name":"  ","created_at":null}`),
	)
	c := newClient(t, s.URL(), nil)
	l, err := c.ListAccounts(context.Background())
	if err != nil {
		t.Fatalf("ListAccounts: %v", err)
	}
	const upper = "ABCDEF01-0000-4000-8000-00000000000A"
	want := []csp.Account{
		{SandboxID: "77", HasCSPID: true, UUID: id(8)[len("identity/accounts/"):], ExternalID: id(8), Name: "123"},
		// An upper-case uuid: the key is lower-cased, the id kept.
		{SandboxID: upper, UUID: strings.ToLower(upper), ExternalID: "identity/accounts/" + upper, Name: "sandbox-" + upper},
	}
	got := l.Accounts
	if len(got) != len(want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for i := range want {
		if !sameAccount(got[i], want[i]) {
			t.Errorf("account %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// Malformed: not objects (4), no id (2), an empty id segment (1), a bad
	// csp_id (5), a bare uuid for an id (1). Filtered: {} and the two entries of
	// other types or states.
	if l.Malformed != 13 || l.Filtered != 3 || len(l.MalformedSamples) != 5 {
		t.Fatalf("malformed %d (samples %q), filtered %d; want 13 (5 samples), 3", l.Malformed, l.MalformedSamples, l.Filtered)
	}
}

// TestListAccountsSkipsHostileEntries serves, among good accounts, the entries a CSP was
// seen to list (cspfake.Hostile), over real HTTP: the listing keeps the good accounts,
// counts every hostile one as malformed, and no reason echoes a hostile value.
func TestListAccountsSkipsHostileEntries(t *testing.T) {
	t.Parallel()
	good, hostile := cspfake.Generate(6, nil), cspfake.Hostile()
	s := startFake(t, cspfake.Options{}, slices.Concat(good[:3], hostile, good[3:])...)
	c := newClient(t, s.URL(), func(o *csp.Options) { o.PageSize = 4 })
	l, err := c.ListAccounts(context.Background())
	if err != nil {
		t.Fatalf("ListAccounts: %v", err)
	}
	if len(l.Accounts) != len(good) || l.Malformed != len(hostile) || len(l.MalformedSamples) != len(hostile) {
		t.Fatalf("got %d accounts, %d malformed (%q); want %d, %d", len(l.Accounts), l.Malformed, l.MalformedSamples, len(good), len(hostile))
	}
	for i, a := range l.Accounts {
		if a.Name != good[i].Name {
			t.Fatalf("account %d is %q, want %q", i, a.Name, good[i].Name)
		}
	}
	for _, sample := range l.MalformedSamples {
		if len(sample) > 200 || strings.ContainsAny(sample, "$`") || strings.Contains(sample, "AbCdE0015g") {
			t.Errorf("the reason echoes a hostile value: %q", sample)
		}
	}
}

func TestListAccountsDeduplicatesAcrossPages(t *testing.T) {
	t.Parallel()
	seeded := cspfake.Generate(150, nil)
	// The same csp_id turning up again on a later page, as offset paging does
	// when an account is created between two page requests.
	seeded[120].CSPID = seeded[10].CSPID
	s := startFake(t, cspfake.Options{}, seeded...)
	c := newClient(t, s.URL(), func(o *csp.Options) { o.PageSize = 100 })

	l, err := c.ListAccounts(context.Background())
	if err != nil {
		t.Fatalf("ListAccounts: %v", err)
	}
	got := l.Accounts
	if len(got) != 149 || l.Duplicates != 1 {
		t.Fatalf("got %d accounts, want 149", len(got))
	}
	seen := map[string]string{}
	for _, a := range got {
		if prev, dup := seen[a.SandboxID]; dup {
			t.Fatalf("sandbox %s listed twice (%s and %s)", a.SandboxID, prev, a.ExternalID)
		}
		seen[a.SandboxID] = a.ExternalID
	}
	if seen[got[10].SandboxID] != seeded[10].ID {
		t.Fatalf("the first occurrence should win")
	}
}

func TestListAccountsRetriesServerErrorsThenSucceeds(t *testing.T) {
	t.Parallel()
	s := startFake(t, cspfake.Options{}, cspfake.Generate(30, nil)...)
	setFaults(t, s, cspfake.Faults{ListFail: cspfake.Failure{Trigger: cspfake.Trigger{Next: 2}, Status: 503, Body: cspfake.BodyHTML}})
	c := newClient(t, s.URL(), nil)

	l, err := c.ListAccounts(context.Background())
	if err != nil {
		t.Fatalf("ListAccounts: %v", err)
	}
	if len(l.Accounts) != 30 {
		t.Fatalf("got %d accounts, want 30", len(l.Accounts))
	}
	var statuses []int
	for _, r := range s.Requests() {
		statuses = append(statuses, r.Status)
	}
	if fmt.Sprint(statuses) != "[503 503 200 200]" {
		t.Fatalf("statuses = %v, want [503 503 200 200]", statuses)
	}
	if got := c.BreakerState(); got != breaker.Closed {
		t.Fatalf("breaker = %s, want closed", got)
	}
}

func TestListAccountsFailsWholeOnPersistentError(t *testing.T) {
	t.Parallel()
	s := startFake(t, cspfake.Options{}, cspfake.Generate(30, nil)...)
	setFaults(t, s, cspfake.Faults{ListFail: cspfake.Failure{Trigger: cspfake.Trigger{Rate: 1}, Status: 502, Body: cspfake.BodyHTML}})
	c := newClient(t, s.URL(), func(o *csp.Options) { o.MaxAttempts = 2 })

	got, err := c.ListAccounts(context.Background())
	if got.Accounts != nil {
		t.Fatalf("got %d accounts alongside an error; a failed listing must return none", len(got.Accounts))
	}
	he, ok := errors.AsType[*csp.HTTPError](err)
	if !ok || he.Status != 502 || !strings.Contains(he.Body, "unable to get licenses") || strings.Contains(he.Body, "<html") {
		t.Fatalf("err = %v, want HTTPError 502 with a sanitised snippet", err)
	}
	if !csp.IsTransient(err) {
		t.Fatal("a 502 must be transient")
	}
	if n := len(s.Requests()); n != 2 {
		t.Fatalf("server saw %d requests, want 2 (MaxAttempts)", n)
	}
}

func TestListAccountsFaultyListings(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults cspfake.Faults
		want   int
	}{
		{"empty", cspfake.Faults{ListEmpty: true}, 0},
		{"first K", cspfake.Faults{ListLimit: 7}, 7},
		{"fraction", cspfake.Faults{ListFraction: 0.25}, 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startFake(t, cspfake.Options{}, cspfake.Generate(240, nil)...)
			setFaults(t, s, tt.faults)
			c := newClient(t, s.URL(), nil)
			got, err := c.ListAccounts(context.Background())
			if err != nil || len(got.Accounts) != tt.want {
				t.Fatalf("ListAccounts = %d accounts, %v; want %d, nil", len(got.Accounts), err, tt.want)
			}
		})
	}
}

func TestListAccountsMalformedPages(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		body    string
		wantErr bool
	}{
		{"no results field", `{"error":"license service down"}`, true},
		{"results not a list", `{"results":{"id":"x"}}`, true},
		{"truncated json", `{"results":[{"id":"identity/accounts/a"`, true},
		{"results null", `{"results":null}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hits atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				_, _ = w.Write([]byte(tt.body))
			}))
			t.Cleanup(srv.Close)
			c := newClient(t, srv.URL, func(o *csp.Options) { o.MaxAttempts = 2 })

			got, err := c.ListAccounts(context.Background())
			if !tt.wantErr {
				if err != nil || len(got.Accounts) != 0 {
					t.Fatalf("ListAccounts = %v, %v; want no accounts, no error", got, err)
				}
				return
			}
			if !errors.Is(err, csp.ErrMalformedResponse) || !csp.IsTransient(err) {
				t.Fatalf("err = %v, want a transient ErrMalformedResponse", err)
			}
			if hits.Load() != 2 {
				t.Fatalf("server hit %d times, want 2: malformed answers are retried", hits.Load())
			}
		})
	}
}

func TestListAccountsDroppedConnectionRetried(t *testing.T) {
	t.Parallel()
	s := startFake(t, cspfake.Options{}, cspfake.Generate(5, nil)...)
	setFaults(t, s, cspfake.Faults{ListDrop: cspfake.Trigger{Next: 2}})
	c := newClient(t, s.URL(), nil)

	got, err := c.ListAccounts(context.Background())
	if err != nil || len(got.Accounts) != 5 {
		t.Fatalf("ListAccounts = %d accounts, %v; want 5, nil", len(got.Accounts), err)
	}
	if f := s.Faults(); f.ListDrop.Next != 0 {
		t.Fatalf("%d drops left unused: the client did not get through them", f.ListDrop.Next)
	}
}
