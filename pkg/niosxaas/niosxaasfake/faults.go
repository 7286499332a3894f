package niosxaasfake

import (
	"errors"
	"fmt"
	"time"

	"github.com/sandbox-broker/broker/internal/fakeserve"
)

// Faults is the misbehaviour the fake injects, per endpoint. The zero value is a healthy
// NIOSXaaS. A request goes through its endpoint's stages in this order: latency, drop,
// failure, then authentication and the real work.
type Faults struct {
	SignIn Endpoint
	Switch Endpoint
	List   Endpoint
	Delete Endpoint
}

// Endpoint is the faults of one endpoint.
type Endpoint struct {
	Latency time.Duration
	// Drop hijacks the connection and closes it without writing a response.
	Drop Trigger
	Fail Failure
}

// Trigger decides which requests a fault hits: the next Next requests, then a Rate
// fraction (0..1) of the rest, drawn from the server's seeded RNG.
type Trigger struct {
	Next int
	Rate float64
}

// Failure answers the requests its trigger hits with Status (default 500) and a body of
// the given kind.
type Failure struct {
	Trigger
	// IDs (the last segment of a service id) always fail, whatever the trigger says
	// (deletes only).
	IDs    []string
	Status int
	Body   BodyKind
}

// BodyKind is the body of an injected failure.
type BodyKind string

const (
	// BodyJSON is a JSON error document (the default).
	BodyJSON BodyKind = "json"
	// BodyHTML is the HTML error page a gateway returns.
	BodyHTML BodyKind = "html"
)

func (f Failure) status() int {
	if f.Status == 0 {
		return 500
	}
	return f.Status
}

func (f *Faults) endpoints() []struct {
	name string
	e    *Endpoint
} {
	return []struct {
		name string
		e    *Endpoint
	}{{"sign in", &f.SignIn}, {"switch", &f.Switch}, {"list", &f.List}, {"delete", &f.Delete}}
}

// Validate reports every out-of-range setting at once.
func (f Faults) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	for _, x := range f.endpoints() {
		e := x.e
		check(e.Latency >= 0, "%s latency must not be negative", x.name)
		for _, t := range []struct {
			what string
			t    Trigger
		}{{"drop", e.Drop}, {"fail", e.Fail.Trigger}} {
			check(t.t.Next >= 0, "%s %s: next must not be negative", x.name, t.what)
			check(t.t.Rate >= 0 && t.t.Rate <= 1, "%s %s: rate must be between 0 and 1", x.name, t.what)
		}
		check(e.Fail.Status == 0 || (e.Fail.Status >= 400 && e.Fail.Status <= 599), "%s fail: status %d is not a 4xx or 5xx", x.name, e.Fail.Status)
		check(len(e.Fail.IDs) == 0 || e == &f.Delete, "%s fail: IDs only apply to deletes", x.name)
		check(e.Fail.Body == "" || e.Fail.Body == BodyJSON || e.Fail.Body == BodyHTML, "%s fail: body %q is not one of json, html", x.name, e.Fail.Body)
	}
	return errors.Join(errs...)
}

// Environment variables read by FaultsFromEnv, for the local stack. <EP> is one of
// SIGN_IN, SWITCH, LIST, DELETE. Durations use Go syntax ("250ms", "8s"); rates are 0..1.
//
//	FAKE_NIOSXAAS_LATENCY           latency of every endpoint, unless overridden below
//	FAKE_NIOSXAAS_<EP>_LATENCY      latency of one endpoint
//	FAKE_NIOSXAAS_<EP>_DROP_NEXT    drop the next n requests
//	FAKE_NIOSXAAS_<EP>_DROP_RATE    then drop this fraction of the rest
//	FAKE_NIOSXAAS_<EP>_FAIL_NEXT    fail the next n requests
//	FAKE_NIOSXAAS_<EP>_FAIL_RATE    then fail this fraction of the rest
//	FAKE_NIOSXAAS_<EP>_FAIL_STATUS  status of a failure (default 500)
//	FAKE_NIOSXAAS_<EP>_FAIL_BODY    json (default) or html
//	FAKE_NIOSXAAS_DELETE_FAIL_IDS   service ids (last segment) whose delete always fails, comma-separated
const (
	EnvPrefix  = "FAKE_NIOSXAAS_"
	EnvLatency = EnvPrefix + "LATENCY"
)

var envEndpoints = []string{"SIGN_IN", "SWITCH", "LIST", "DELETE"}

// FaultsFromEnv builds Faults from the FAKE_NIOSXAAS_* variables; unset or empty
// variables leave the zero value. Every bad variable is reported, by name.
func FaultsFromEnv(getenv func(string) string) (Faults, error) {
	p := fakeserve.NewEnv(getenv)
	var f Faults
	latency := p.Duration(EnvLatency, 0)
	for i, x := range f.endpoints() {
		pre := EnvPrefix + envEndpoints[i] + "_"
		*x.e = Endpoint{
			Latency: p.Duration(pre+"LATENCY", latency),
			Drop:    Trigger{Next: p.Int(pre + "DROP_NEXT"), Rate: p.Float(pre + "DROP_RATE")},
			Fail: Failure{
				Trigger: Trigger{Next: p.Int(pre + "FAIL_NEXT"), Rate: p.Float(pre + "FAIL_RATE")},
				Status:  p.Int(pre + "FAIL_STATUS"),
				Body:    BodyKind(p.Str(pre + "FAIL_BODY")),
			},
		}
	}
	f.Delete.Fail.IDs = p.List(EnvPrefix + "DELETE_FAIL_IDS")
	if err := errors.Join(p.Err(), f.Validate()); err != nil {
		return Faults{}, fmt.Errorf("niosxaasfake: fault environment: %w", err)
	}
	return f, nil
}
