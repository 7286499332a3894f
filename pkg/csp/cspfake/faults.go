package cspfake

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/sandbox-broker/broker/internal/fakeserve"
)

// Faults is the misbehaviour the fake injects. The zero value is a healthy
// CSP. Requests go through the stages in this order: latency, auth, (list)
// hook, drop, (delete) rate limit, failure, then the real work.
type Faults struct {
	// ListLatency delays every listing request, so each page of a paged
	// listing pays it once.
	ListLatency   time.Duration
	DeleteLatency time.Duration

	// ListDrop and DeleteDrop hijack the connection and close it without
	// writing a response.
	ListDrop   Trigger
	DeleteDrop Trigger

	ListFail   Failure
	DeleteFail Failure

	// ListEmpty answers every listing with no results.
	ListEmpty bool
	// ListLimit, when > 0, lists only the first ListLimit accounts.
	ListLimit int
	// ListFraction, when > 0, lists only that leading fraction (0..1) of
	// the accounts.
	ListFraction float64

	// Paging is how the listing treats _limit and _offset (default
	// PagingHonour). PageCap, required with PagingCap and only with it, is
	// the most entries one page holds whatever _limit asks for.
	Paging  PagingMode
	PageCap int
	// DeletedListLag keeps a deleted account in the listing, as active, for
	// that long after its delete (on the server's clock), as a CSP whose
	// listing lags its deletes does. Its deletes still answer 404.
	DeletedListLag time.Duration

	// DeleteRateLimit, when > 0, admits that many deletes per second from a
	// token bucket of DeleteBurst (default 1); others get 429 + Retry-After.
	DeleteRateLimit float64
	DeleteBurst     int
}

// Trigger decides which requests a fault hits: the next Next requests, then
// a Rate fraction (0..1) of the rest, drawn from the server's seeded RNG.
type Trigger struct {
	Next int
	Rate float64
}

// Failure answers the requests its trigger hits with Status and a body of
// the given kind; a 3xx also carries a Location, as a proxy or a login
// portal redirecting the broker would send.
type Failure struct {
	Trigger
	// UUIDs always fail, whatever the trigger says (deletes only).
	UUIDs []string
	// Status defaults to 500.
	Status int
	Body   BodyKind
}

// BodyKind is the body of an injected failure.
type BodyKind string

const (
	// BodyJSON is a JSON error document (the default).
	BodyJSON BodyKind = "json"
	// BodyHTML is the HTML page a proxy or the CSP license service returns.
	BodyHTML BodyKind = "html"
	// BodyGarbage is binary noise: control bytes and invalid UTF-8.
	BodyGarbage BodyKind = "garbage"
)

// PagingMode is one of the ways a CSP may page its listing; the broker does
// not know which one the real CSP uses (docs/architecture.md §6).
type PagingMode string

const (
	// PagingHonour serves entries [_offset, _offset+_limit).
	PagingHonour PagingMode = "honour"
	// PagingIgnore serves every entry in each response, as the upstream
	// client, which sends neither parameter, expects.
	PagingIgnore PagingMode = "ignore"
	// PagingCap honours both but serves at most PageCap entries per page, so
	// a page shorter than _limit is not the last one.
	PagingCap PagingMode = "cap"
	// PagingIgnoreOffset honours _limit and ignores _offset: every request
	// gets the first page again.
	PagingIgnoreOffset PagingMode = "ignore_offset"
)

func (f Failure) status() int {
	if f.Status == 0 {
		return 500
	}
	return f.Status
}

// Validate reports every out-of-range setting at once.
func (f Faults) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(f.ListLatency >= 0, "list latency must not be negative")
	check(f.DeleteLatency >= 0, "delete latency must not be negative")
	triggers := []struct {
		name string
		t    Trigger
	}{
		{"list drop", f.ListDrop}, {"delete drop", f.DeleteDrop},
		{"list fail", f.ListFail.Trigger}, {"delete fail", f.DeleteFail.Trigger},
	}
	for _, x := range triggers {
		check(x.t.Next >= 0, "%s: next must not be negative", x.name)
		check(x.t.Rate >= 0 && x.t.Rate <= 1, "%s: rate must be between 0 and 1", x.name)
	}
	failures := []struct {
		name string
		f    Failure
	}{{"list fail", f.ListFail}, {"delete fail", f.DeleteFail}}
	for _, x := range failures {
		check(x.f.Status == 0 || (x.f.Status >= 300 && x.f.Status <= 599), "%s: status %d is not a 3xx, 4xx or 5xx", x.name, x.f.Status)
		check(x.f.Body == "" || x.f.Body == BodyJSON || x.f.Body == BodyHTML || x.f.Body == BodyGarbage,
			"%s: body %q is not one of json, html, garbage", x.name, x.f.Body)
	}
	check(len(f.ListFail.UUIDs) == 0, "list fail: UUIDs only apply to deletes")
	check(f.ListLimit >= 0, "list limit must not be negative")
	check(f.ListFraction >= 0 && f.ListFraction <= 1, "list fraction must be between 0 and 1")
	switch f.Paging {
	case "", PagingHonour, PagingIgnore, PagingCap, PagingIgnoreOffset:
	default:
		check(false, "paging %q is not one of honour, ignore, cap, ignore_offset", f.Paging)
	}
	check(f.Paging != PagingCap || f.PageCap > 0, "paging cap needs a page cap of at least 1")
	check(f.PageCap == 0 || f.Paging == PagingCap, "a page cap only applies to paging cap")
	check(f.DeletedListLag >= 0, "deleted list lag must not be negative")
	check(f.DeleteRateLimit >= 0, "delete rate limit must not be negative")
	check(f.DeleteBurst >= 0, "delete burst must not be negative")
	return errors.Join(errs...)
}

// Environment variables read by FaultsFromEnv, for the local stack.
// Durations use Go syntax ("250ms", "8s"); rates and fractions are 0..1.
const (
	EnvLatency          = "FAKE_CSP_LATENCY"      // both list and delete, unless overridden below
	EnvListLatency      = "FAKE_CSP_LIST_LATENCY" // per listing request, so per page
	EnvDeleteLatency    = "FAKE_CSP_DELETE_LATENCY"
	EnvListDropNext     = "FAKE_CSP_LIST_DROP_NEXT"
	EnvListDropRate     = "FAKE_CSP_LIST_DROP_RATE"
	EnvDeleteDropNext   = "FAKE_CSP_DELETE_DROP_NEXT"
	EnvDeleteDropRate   = "FAKE_CSP_DELETE_DROP_RATE"
	EnvListFailNext     = "FAKE_CSP_LIST_FAIL_NEXT"
	EnvListFailRate     = "FAKE_CSP_LIST_FAIL_RATE"
	EnvListFailStatus   = "FAKE_CSP_LIST_FAIL_STATUS"
	EnvListFailBody     = "FAKE_CSP_LIST_FAIL_BODY"
	EnvDeleteFailNext   = "FAKE_CSP_DELETE_FAIL_NEXT"
	EnvDeleteFailRate   = "FAKE_CSP_DELETE_FAIL_RATE"
	EnvDeleteFailStatus = "FAKE_CSP_DELETE_FAIL_STATUS"
	EnvDeleteFailBody   = "FAKE_CSP_DELETE_FAIL_BODY"
	EnvDeleteFailUUIDs  = "FAKE_CSP_DELETE_FAIL_UUIDS" // comma-separated
	EnvListEmpty        = "FAKE_CSP_LIST_EMPTY"
	EnvListLimit        = "FAKE_CSP_LIST_LIMIT"
	EnvListFraction     = "FAKE_CSP_LIST_FRACTION"
	EnvPaging           = "FAKE_CSP_PAGING"            // honour (default), ignore, cap, ignore_offset
	EnvPageCap          = "FAKE_CSP_PAGE_CAP"          // entries per page with FAKE_CSP_PAGING=cap
	EnvDeletedListLag   = "FAKE_CSP_DELETED_LIST_LAG"  // how long a deleted account stays listed as active
	EnvDeleteRateLimit  = "FAKE_CSP_DELETE_RATE_LIMIT" // deletes per second
	EnvDeleteBurst      = "FAKE_CSP_DELETE_BURST"
)

// FaultsFromEnv builds Faults from the FAKE_CSP_* variables; unset or empty
// variables leave the zero value. Every bad variable is reported, by name.
func FaultsFromEnv(getenv func(string) string) (Faults, error) {
	p := fakeserve.NewEnv(getenv)
	var f Faults
	latency := p.Duration(EnvLatency, 0)
	f.ListLatency = p.Duration(EnvListLatency, latency)
	f.DeleteLatency = p.Duration(EnvDeleteLatency, latency)
	f.ListDrop = Trigger{Next: p.Int(EnvListDropNext), Rate: p.Float(EnvListDropRate)}
	f.DeleteDrop = Trigger{Next: p.Int(EnvDeleteDropNext), Rate: p.Float(EnvDeleteDropRate)}
	f.ListFail = Failure{
		Trigger: Trigger{Next: p.Int(EnvListFailNext), Rate: p.Float(EnvListFailRate)},
		Status:  p.Int(EnvListFailStatus),
		Body:    BodyKind(p.Str(EnvListFailBody)),
	}
	f.DeleteFail = Failure{
		Trigger: Trigger{Next: p.Int(EnvDeleteFailNext), Rate: p.Float(EnvDeleteFailRate)},
		Status:  p.Int(EnvDeleteFailStatus),
		Body:    BodyKind(p.Str(EnvDeleteFailBody)),
		UUIDs:   p.List(EnvDeleteFailUUIDs),
	}
	f.ListEmpty = p.Bool(EnvListEmpty)
	f.ListLimit = p.Int(EnvListLimit)
	f.ListFraction = p.Float(EnvListFraction)
	f.Paging = PagingMode(p.Str(EnvPaging))
	f.PageCap = p.Int(EnvPageCap)
	f.DeletedListLag = p.Duration(EnvDeletedListLag, 0)
	f.DeleteRateLimit = p.Float(EnvDeleteRateLimit)
	f.DeleteBurst = p.Int(EnvDeleteBurst)
	if err := errors.Join(p.Err(), f.Validate()); err != nil {
		return Faults{}, fmt.Errorf("cspfake: fault environment: %w", err)
	}
	return f, nil
}

// SetFaults replaces the injected faults, restarts their Next counters and
// refills the delete rate limiter.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("cspfake: %w", err)
	}
	f.DeleteFail.UUIDs = slices.Clone(f.DeleteFail.UUIDs)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	s.bucket.reset(f.DeleteRateLimit, f.DeleteBurst, s.opts.Now())
	return nil
}

// Faults returns the current faults; Next fields count down as they fire.
func (s *Server) Faults() Faults {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.faults
	f.DeleteFail.UUIDs = slices.Clone(f.DeleteFail.UUIDs)
	return f
}

// fires reports whether a trigger hits the current request; the caller
// holds s.mu.
func (s *Server) fires(t *Trigger) bool {
	if t.Next > 0 {
		t.Next--
		return true
	}
	return t.Rate > 0 && s.rng.Float64() < t.Rate
}
