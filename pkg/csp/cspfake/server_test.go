package cspfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/internal/testkit"
)

const token = "fake-token"

func start(t *testing.T, opts Options, accounts ...Account) *Server {
	t.Helper()
	if opts.Token == "" {
		opts.Token = token
	}
	return Started(t, opts, accounts...)
}

// do sends one request with the given Authorization value ("" for none).
func do(t *testing.T, method, url, auth string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func listNames(t *testing.T, s *Server, query string) []string {
	t.Helper()
	resp, body := do(t, http.MethodGet, s.URL()+"/current_user/accounts"+query, "Token "+token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list%s: %d %s", query, resp.StatusCode, body)
	}
	var page struct {
		Results []struct {
			Name string `json:"name"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatalf("list body %q: %v", body, err)
	}
	names := []string{}
	for _, r := range page.Results {
		names = append(names, r.Name)
	}
	return names
}

func TestStartValidatesOptions(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		want string
	}{
		{Options{}, "token is empty"},
		{Options{Token: "t", Addr: "0.0.0.0:0"}, "not a loopback IP"},
		{Options{Token: "t", Addr: "localhost:0"}, "not a loopback IP"},
		{Options{Token: "t", DeleteStatus: 202}, "delete status 202"},
		{Options{Token: "t", DefaultPageSize: 50, MaxPageSize: 10}, "page sizes"},
	} {
		s := New(tt.opts)
		err := s.Start()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			_ = s.Close()
			t.Errorf("Start(%+v) = %v, want an error mentioning %q", tt.opts, err, tt.want)
		}
	}
}

func TestURLIsLoopbackWithAPIRoot(t *testing.T) {
	s := start(t, Options{})
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") || !strings.HasSuffix(s.URL(), "/v2") {
		t.Fatalf("URL() = %q, want http://127.0.0.1:<port>/v2", s.URL())
	}
	if err := s.Start(); err == nil {
		t.Fatal("a second Start succeeded")
	}
}

func TestAuthorizationMustBeTokenScheme(t *testing.T) {
	s := start(t, Options{}, Generate(2, nil)...)
	for _, auth := range []string{"", "Bearer " + token, "Token wrong", "token " + token, "Token  " + token} {
		resp, _ := do(t, http.MethodGet, s.URL()+"/current_user/accounts", auth)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("Authorization %q: status %d, want 401", auth, resp.StatusCode)
		}
		resp, _ = do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/x", auth)
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("delete with Authorization %q: status %d, want 401", auth, resp.StatusCode)
		}
	}
	if len(s.Deletes()) != 0 {
		t.Fatal("unauthorised deletes were recorded")
	}
	if got := listNames(t, s, ""); len(got) != 2 {
		t.Fatalf("authorised list returned %v", got)
	}
}

func TestPaging(t *testing.T) {
	s := start(t, Options{DefaultPageSize: 3, MaxPageSize: 5}, Generate(12, nil)...)
	tests := []struct {
		query string
		want  string
	}{
		{"", "[lab-0001 lab-0002 lab-0003]"},
		{"?_limit=2&_offset=4", "[lab-0005 lab-0006]"},
		{"?_limit=100", "[lab-0001 lab-0002 lab-0003 lab-0004 lab-0005]"}, // clamped to max
		{"?_offset=10", "[lab-0011 lab-0012]"},
		{"?_offset=50", "[]"},
	}
	for _, tt := range tests {
		if got := fmt.Sprint(listNames(t, s, tt.query)); got != tt.want {
			t.Errorf("list%s = %s, want %s", tt.query, got, tt.want)
		}
	}
	for _, q := range []string{"?_limit=0", "?_limit=-1", "?_limit=x", "?_offset=-1", "?_offset=1.5"} {
		if resp, _ := do(t, http.MethodGet, s.URL()+"/current_user/accounts"+q, "Token "+token); resp.StatusCode != http.StatusBadRequest {
			t.Errorf("list%s: status %d, want 400", q, resp.StatusCode)
		}
	}
}

func TestDeleteRecordsAndHidesAccounts(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	accounts := Generate(3, nil)
	s := start(t, Options{Now: c.Now}, accounts...)

	resp, _ := do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+accounts[1].UUID(), "Token "+token)
	if resp.StatusCode != http.StatusOK || !s.Deleted(accounts[1].UUID()) || s.Deleted(accounts[0].UUID()) {
		t.Fatalf("delete: status %d, deleted flags wrong", resp.StatusCode)
	}
	if got := fmt.Sprint(listNames(t, s, "")); got != "[lab-0001 lab-0003]" {
		t.Fatalf("list after delete = %s", got)
	}
	c.Advance(time.Second)
	resp, _ = do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+accounts[1].UUID(), "Token "+token)
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("second delete: status %d, want 404", resp.StatusCode)
	}
	want := []DeleteRecord{
		{UUID: accounts[1].UUID(), At: c.Now().Add(-time.Second), Status: 200},
		{UUID: accounts[1].UUID(), At: c.Now(), Status: 404},
	}
	if got := s.Deletes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Deletes() = %v, want %v", got, want)
	}
	// Seeding the account again brings it back.
	s.Seed(accounts[1])
	if s.Deleted(accounts[1].UUID()) || len(listNames(t, s, "")) != 3 {
		t.Fatal("re-seeding did not restore the account")
	}
}

func TestDeleteRateLimitTokenBucket(t *testing.T) {
	c := testkit.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	s := start(t, Options{Now: c.Now}, Generate(100, nil)...)
	if err := s.SetFaults(Faults{DeleteRateLimit: 4, DeleteBurst: 3}); err != nil {
		t.Fatal(err)
	}
	del := func(i int) *http.Response {
		resp, _ := do(t, http.MethodDelete, fmt.Sprintf("%s/sandbox/accounts/u-%d", s.URL(), i), "Token "+token)
		return resp
	}
	// The burst goes through at once, then one delete per 250ms of fake time.
	var statuses []int
	for i := range 5 {
		statuses = append(statuses, del(i).StatusCode)
	}
	if fmt.Sprint(statuses) != "[404 404 404 429 429]" {
		t.Fatalf("burst statuses = %v", statuses)
	}
	if ra := del(9).Header.Get("Retry-After"); ra != "1" {
		t.Fatalf("Retry-After = %q, want 1 (250ms rounded up)", ra)
	}
	// Ten seconds of callers hammering every 50ms.
	for i := range 200 {
		c.Advance(50 * time.Millisecond)
		del(100 + i)
	}
	accepted := s.AcceptedDeletes()
	if len(accepted) != 3+40 {
		t.Fatalf("accepted %d deletes, want 43 (burst 3 + 4/s over 10s)", len(accepted))
	}
	// After the burst, admissions are spaced exactly 1/rate apart.
	for i := 3; i < len(accepted); i++ {
		if gap := accepted[i].Sub(accepted[i-1]); gap != 250*time.Millisecond {
			t.Fatalf("gap between accepted deletes %d and %d = %s, want 250ms", i-1, i, gap)
		}
	}
}

func TestFaultsAreSeededAndReplayable(t *testing.T) {
	pattern := func(seed uint64) string {
		s := start(t, Options{RandSeed: seed})
		if err := s.SetFaults(Faults{DeleteFail: Failure{Trigger: Trigger{Rate: 0.5}, Status: 503}}); err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		for i := range 40 {
			resp, _ := do(t, http.MethodDelete, fmt.Sprintf("%s/sandbox/accounts/u-%d", s.URL(), i), "Token "+token)
			b.WriteString(map[int]string{503: "x", 404: "."}[resp.StatusCode])
		}
		return b.String()
	}
	a, b, other := pattern(7), pattern(7), pattern(8)
	if a != b {
		t.Fatalf("same seed, different faults:\n%s\n%s", a, b)
	}
	if a == other {
		t.Fatalf("different seeds gave the same faults %s", a)
	}
	if n := strings.Count(a, "x"); n < 8 || n > 32 {
		t.Fatalf("a rate of 0.5 failed %d of 40", n)
	}
}

func TestNextFaultsCountDownAndUUIDFaultsStick(t *testing.T) {
	accounts := Generate(2, nil)
	s := start(t, Options{}, accounts...)
	if err := s.SetFaults(Faults{
		ListFail:   Failure{Trigger: Trigger{Next: 2}, Status: 500},
		DeleteFail: Failure{UUIDs: []string{accounts[0].UUID()}, Status: 502, Body: BodyHTML},
	}); err != nil {
		t.Fatal(err)
	}
	var statuses []int
	for range 3 {
		resp, _ := do(t, http.MethodGet, s.URL()+"/current_user/accounts", "Token "+token)
		statuses = append(statuses, resp.StatusCode)
	}
	if fmt.Sprint(statuses) != "[500 500 200]" || s.Faults().ListFail.Next != 0 {
		t.Fatalf("list statuses = %v, remaining %d", statuses, s.Faults().ListFail.Next)
	}
	for range 2 {
		resp, body := do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+accounts[0].UUID(), "Token "+token)
		if resp.StatusCode != 502 || !strings.Contains(body, "unable to get licenses") || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("delete of the failing uuid: %d %q", resp.StatusCode, body)
		}
	}
	if resp, _ := do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+accounts[1].UUID(), "Token "+token); resp.StatusCode != 200 {
		t.Fatalf("delete of another uuid: %d", resp.StatusCode)
	}
}

func TestDropClosesWithoutResponse(t *testing.T) {
	s := start(t, Options{}, Generate(1, nil)...)
	if err := s.SetFaults(Faults{ListDrop: Trigger{Next: 1}}); err != nil {
		t.Fatal(err)
	}
	// A fresh connection, so the transport cannot quietly replay the GET.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	req, _ := http.NewRequest(http.MethodGet, s.URL()+"/current_user/accounts", nil)
	req.Header.Set("Authorization", "Token "+token)
	resp, err := client.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("dropped request got a response: %d", resp.StatusCode)
	}
	if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "EOF") {
		t.Fatalf("dropped request error = %v, want EOF", err)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0].Status != 0 {
		t.Fatalf("requests = %+v, want one with status 0", reqs)
	}
}

func TestListLatencyAndCloseDoNotHang(t *testing.T) {
	s := New(Options{Token: token})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetFaults(Faults{ListLatency: time.Hour}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, s.URL()+"/current_user/accounts", nil)
		req.Header.Set("Authorization", "Token "+token)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	testkit.Eventually(t, "the request to reach the server", func() bool { return len(s.Requests()) > 0 })
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	select {
	case <-done:
	case <-testkit.Patience(t).Done():
		t.Fatal("Close hung on a request of an hour")
	}
	if err := <-errc; err == nil {
		t.Fatal("the slow request completed despite Close")
	}
}

// The fake serves the hostile entries verbatim, whole (the listing is the test of a
// client that must skip them), and a delete still finds each by its uuid.
func TestHostileEntriesAreServedWhole(t *testing.T) {
	hostile := Hostile()
	s := start(t, Options{}, hostile...)
	resp, body := do(t, http.MethodGet, s.URL()+"/current_user/accounts?_limit=100", "Token "+token)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d", resp.StatusCode)
	}
	var page struct{ Results []Account }
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(page.Results, hostile) {
		t.Fatal("the listing does not hold the hostile entries as seeded")
	}
	want := map[string]func(Account) bool{
		"a 300 KB sfdc_account_id":         func(a Account) bool { return len(a.SFDCAccountID) >= 300<<10-15 },
		"64 KB before identity/accounts/":  func(a Account) bool { return strings.Index(a.ID, "identity/accounts/") >= 64<<10-5 },
		"a command substitution in a name": func(a Account) bool { return strings.Contains(a.Name, "$(touch ") },
	}
	for what, is := range want {
		if !slices.ContainsFunc(hostile, is) {
			t.Errorf("no hostile entry has %s", what)
		}
	}
	for _, a := range hostile {
		if resp, _ := do(t, http.MethodDelete, s.URL()+"/sandbox/accounts/"+a.UUID(), "Token "+token); resp.StatusCode != http.StatusOK {
			t.Fatalf("delete of %s: %d", a.UUID(), resp.StatusCode)
		}
	}
}
