package cspfake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
)

func TestPagingModes(t *testing.T) {
	s := start(t, Options{}, Generate(12, nil)...)
	all := fmt.Sprint(listNames(t, s, ""))
	tests := []struct {
		faults Faults
		query  string
		want   string
	}{
		{Faults{Paging: PagingHonour}, "?_limit=2&_offset=4", "[lab-0005 lab-0006]"},
		{Faults{Paging: PagingIgnore}, "?_limit=2&_offset=4", all},
		{Faults{Paging: PagingIgnore}, "?_limit=1&_offset=50", all},
		{Faults{Paging: PagingCap, PageCap: 3}, "?_limit=10&_offset=4", "[lab-0005 lab-0006 lab-0007]"},
		{Faults{Paging: PagingCap, PageCap: 3}, "?_limit=2&_offset=10", "[lab-0011 lab-0012]"},
		{Faults{Paging: PagingIgnoreOffset}, "?_limit=2&_offset=6", "[lab-0001 lab-0002]"},
	}
	for _, tt := range tests {
		if err := s.SetFaults(tt.faults); err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(listNames(t, s, tt.query)); got != tt.want {
			t.Errorf("%s list%s = %s, want %s", tt.faults.Paging, tt.query, got, tt.want)
		}
	}
	if all != "[lab-0001 lab-0002 lab-0003 lab-0004 lab-0005 lab-0006 lab-0007 lab-0008 lab-0009 lab-0010 lab-0011 lab-0012]" {
		t.Fatalf("default page = %s, want all twelve", all)
	}
}

func TestDeletedListLagKeepsDeletedAccountsListed(t *testing.T) {
	clock := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	accounts := Generate(3, nil)
	s := start(t, Options{Now: clock.Now}, accounts...)
	if err := s.SetFaults(Faults{DeletedListLag: 5 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+accounts[1].UUID(), "Token "+token); resp.StatusCode != http.StatusOK {
		t.Fatalf("delete: %d", resp.StatusCode)
	}
	if got := fmt.Sprint(listNames(t, s, "")); got != "[lab-0001 lab-0002 lab-0003]" {
		t.Fatalf("right after the delete the listing = %s, want it still listing lab-0002", got)
	}
	// Deleted it is, though: a second delete finds nothing.
	if resp, _ := do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+accounts[1].UUID(), "Token "+token); resp.StatusCode != http.StatusNotFound || !s.Deleted(accounts[1].UUID()) {
		t.Fatalf("second delete during the lag: %d, want 404", resp.StatusCode)
	}
	clock.Advance(5*time.Minute - time.Second)
	if got := fmt.Sprint(listNames(t, s, "")); got != "[lab-0001 lab-0002 lab-0003]" {
		t.Fatalf("within the lag the listing = %s, want lab-0002 still there", got)
	}
	clock.Advance(time.Second)
	if got := fmt.Sprint(listNames(t, s, "")); got != "[lab-0001 lab-0003]" {
		t.Fatalf("after the lag the listing = %s, want lab-0002 gone", got)
	}
}

func TestSeedReplacesAnAccountListedWithoutCSPID(t *testing.T) {
	a := Generate(1, nil)[0]
	withoutID := a
	withoutID.CSPID = 0
	s := start(t, Options{}, withoutID)
	_, body := do(t, http.MethodGet, s.URL()+"/current_user/accounts", "Token "+token)
	if want := `"csp_id"`; strings.Contains(body, want) {
		t.Fatalf("first listing %s holds %s", body, want)
	}
	s.Seed(a)
	_, body = do(t, http.MethodGet, s.URL()+"/current_user/accounts", "Token "+token)
	if want := fmt.Sprintf(`"csp_id":%d`, a.CSPID); !strings.Contains(body, want) || len(listNames(t, s, "")) != 1 {
		t.Fatalf("second listing %s, want the one account with %s", body, want)
	}
}

func TestListHookSeesEveryAuthorisedListingRequest(t *testing.T) {
	s := start(t, Options{}, Generate(5, nil)...)
	var calls []ListCall
	s.SetListHook(func(_ context.Context, c ListCall) { calls = append(calls, c) })
	listNames(t, s, "?_limit=2")
	listNames(t, s, "?_limit=3&_offset=2")
	do(t, http.MethodGet, s.URL()+"/current_user/accounts", "Token wrong") // refused before the hook
	s.SetListHook(nil)
	listNames(t, s, "")
	if got := fmt.Sprint(calls); got != "[{0 2 0} {1 3 2}]" {
		t.Fatalf("hook calls = %s, want [{0 2 0} {1 3 2}]", got)
	}
}

// A held page is served only after Release, and reflects a delete made while
// it was held: the interleaving "page read, account deleted, next page read".
func TestHoldListingHoldsBetweenTwoPages(t *testing.T) {
	accounts := Generate(4, nil)
	s := start(t, Options{}, accounts...)
	listNames(t, s, "") // before the hold: not counted
	hold := s.HoldListing(1)

	if got := fmt.Sprint(listNames(t, s, "?_limit=2")); got != "[lab-0001 lab-0002]" {
		t.Fatalf("page 0 = %s", got)
	}
	page1 := make(chan string, 1)
	go func() {
		page1 <- listBody(s, "?_limit=2&_offset=2")
	}()
	<-hold.Reached()
	select {
	case got := <-page1:
		t.Fatalf("page 1 served while held: %v", got)
	default:
	}
	if resp, _ := do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+accounts[2].UUID(), "Token "+token); resp.StatusCode != http.StatusOK {
		t.Fatalf("delete during the hold: %d", resp.StatusCode)
	}
	hold.Release()
	hold.Release() // harmless
	if got, want := <-page1, `{"results":[`+mustJSON(t, accounts[3])+`]}`; got != want {
		t.Fatalf("page 1 after the release = %s, want [lab-0004]: the delete made during the hold shows", got)
	}
	if got := fmt.Sprint(listNames(t, s, "?_limit=2&_offset=2")); got != "[lab-0004]" {
		t.Fatalf("a later page = %s: only the n-th request is held", got)
	}
}

func TestHoldListingLetsGoWhenTheClientDoes(t *testing.T) {
	s := start(t, Options{}, Generate(2, nil)...)
	hold := s.HoldListing(0)
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL()+"/current_user/accounts", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Token "+token)
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		done <- err
	}()
	<-hold.Reached()
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled held request got an answer")
	}
	// The handler returned without a release: Close would hang otherwise.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// listBody lists from another goroutine than the test's, so it reports
// failures in the body it returns instead of calling t.Fatal.
func listBody(s *Server, query string) string {
	req, err := http.NewRequest(http.MethodGet, s.URL()+"/current_user/accounts"+query, nil)
	if err != nil {
		return err.Error()
	}
	req.Header.Set("Authorization", "Token "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

func mustJSON(t *testing.T, a Account) string {
	t.Helper()
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
