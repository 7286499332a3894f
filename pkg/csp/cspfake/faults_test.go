package cspfake

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestFaultsFromEnvEmptyIsHealthy(t *testing.T) {
	f, err := FaultsFromEnv(env(nil))
	if err != nil || !reflect.DeepEqual(f, Faults{}) {
		t.Fatalf("FaultsFromEnv(empty) = %+v, %v; want zero Faults", f, err)
	}
}

func TestFaultsFromEnvReadsEveryVariable(t *testing.T) {
	f, err := FaultsFromEnv(env(map[string]string{
		EnvLatency:          "8s",
		EnvListLatency:      "250ms",
		EnvListDropNext:     "1",
		EnvListDropRate:     "0.05",
		EnvDeleteDropNext:   "2",
		EnvDeleteDropRate:   "0.1",
		EnvListFailNext:     "3",
		EnvListFailRate:     "0.2",
		EnvListFailStatus:   "503",
		EnvListFailBody:     "html",
		EnvDeleteFailNext:   "4",
		EnvDeleteFailRate:   "0.3",
		EnvDeleteFailStatus: "500",
		EnvDeleteFailBody:   "garbage",
		EnvDeleteFailUUIDs:  " a-1, ,b-2 ",
		EnvListEmpty:        "false",
		EnvListLimit:        "7",
		EnvListFraction:     "0.5",
		EnvDeleteRateLimit:  "2.5",
		EnvDeleteBurst:      "5",
		EnvPaging:           "cap",
		EnvPageCap:          "37",
		EnvDeletedListLag:   "3m",
	}))
	if err != nil {
		t.Fatalf("FaultsFromEnv: %v", err)
	}
	want := Faults{
		ListLatency:     250 * time.Millisecond,
		DeleteLatency:   8 * time.Second, // from FAKE_CSP_LATENCY
		ListDrop:        Trigger{Next: 1, Rate: 0.05},
		DeleteDrop:      Trigger{Next: 2, Rate: 0.1},
		ListFail:        Failure{Trigger: Trigger{Next: 3, Rate: 0.2}, Status: 503, Body: BodyHTML},
		DeleteFail:      Failure{Trigger: Trigger{Next: 4, Rate: 0.3}, Status: 500, Body: BodyGarbage, UUIDs: []string{"a-1", "b-2"}},
		ListLimit:       7,
		ListFraction:    0.5,
		DeleteRateLimit: 2.5,
		DeleteBurst:     5,
		Paging:          PagingCap,
		PageCap:         37,
		DeletedListLag:  3 * time.Minute,
	}
	if !reflect.DeepEqual(f, want) {
		t.Fatalf("FaultsFromEnv =\n%+v\nwant\n%+v", f, want)
	}
}

func TestFaultsFromEnvReportsEveryBadVariable(t *testing.T) {
	_, err := FaultsFromEnv(env(map[string]string{
		EnvDeleteLatency:    "slow",
		EnvDeleteFailRate:   "1.5",
		EnvDeleteFailStatus: "200",
		EnvListEmpty:        "yes please",
		EnvListLimit:        "ten",
		EnvListFailBody:     "xml",
		EnvDeleteBurst:      "-1",
		EnvPaging:           "sometimes",
		EnvPageCap:          "many",
		EnvDeletedListLag:   "a while",
	}))
	if err == nil {
		t.Fatal("FaultsFromEnv accepted bad values")
	}
	for _, want := range []string{
		EnvDeleteLatency, EnvListEmpty, EnvListLimit,
		"delete fail: rate must be between 0 and 1", "delete fail: status 200",
		`list fail: body "xml"`, "delete burst must not be negative",
		`paging "sometimes" is not one of`, EnvPageCap, EnvDeletedListLag,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestFaultsValidate(t *testing.T) {
	bad := []Faults{
		{ListLatency: -1},
		{ListDrop: Trigger{Next: -1}},
		{DeleteDrop: Trigger{Rate: 2}},
		{ListFail: Failure{Status: 204}},
		{ListFail: Failure{UUIDs: []string{"x"}}},
		{ListFraction: 1.1},
		{DeleteRateLimit: -1},
		{Paging: "sideways"},
		{Paging: PagingCap},
		{Paging: PagingCap, PageCap: -1},
		{Paging: PagingHonour, PageCap: 5},
		{DeletedListLag: -time.Second},
	}
	for _, f := range bad {
		if err := f.Validate(); err == nil {
			t.Errorf("Validate(%+v) = nil, want an error", f)
		}
	}
	if err := (Faults{DeleteFail: Failure{Status: 429, Body: BodyJSON}, ListFraction: 1, Paging: PagingCap, PageCap: 1}).Validate(); err != nil {
		t.Errorf("Validate of good faults = %v", err)
	}
	if err := (Faults{DeleteFail: Failure{Status: 302}, ListFail: Failure{Status: 308}}).Validate(); err != nil {
		t.Errorf("Validate of redirecting failures = %v", err)
	}
}
