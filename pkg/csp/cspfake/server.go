// Package cspfake is an in-process fake of the ENG CSP API: the account
// listing and the sandbox delete, with the auth header, paging and the
// failure modes seen upstream (5xx bursts, HTML bodies, dropped
// connections, slow deletes, rate limiting) injectable at run time. Tests
// and the local stack use it over real HTTP on 127.0.0.1.
package cspfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/internal/fakeserve"
)

// Options configures a Server.
type Options struct {
	// Token is the only credential accepted, as "Authorization: Token <Token>".
	// Required.
	Token string
	// Addr must be a loopback IP and port (default "127.0.0.1:0", any port).
	Addr string
	// DefaultPageSize applies when _limit is absent (default 100);
	// MaxPageSize clamps larger _limit values (default 1000).
	DefaultPageSize int
	MaxPageSize     int
	// DeleteStatus answers a successful delete: 200 (default) or 204.
	DeleteStatus int
	// RandSeed seeds the RNG behind fault rates (default 1), so a run's
	// faults can be replayed.
	RandSeed uint64
	// Now replaces the clock of the records and the delete rate limiter.
	// Injected latency always uses real time.
	Now func() time.Time
}

// basePath mirrors the real API root (https://csp.infoblox.com/v2), so a
// client that drops the base URL's path fails against the fake too.
const basePath = "/v2"

// Request is one request the fake received. Status is 0 while it is in
// flight and for dropped connections.
type Request struct {
	Method string
	Path   string
	Query  string
	At     time.Time
	Status int
}

// DeleteRecord is one authorised delete request and its outcome (Status 0:
// the connection was dropped).
type DeleteRecord struct {
	UUID   string
	At     time.Time
	Status int
}

// Server is a fake CSP. Apart from Start and Close, which must not race
// each other, its methods are safe for concurrent use.
type Server struct {
	opts Options
	srv  *http.Server
	run  fakeserve.Server

	mu       sync.Mutex
	accounts []*entry
	byUUID   map[string]*entry
	faults   Faults
	rng      *rand.Rand
	bucket   bucket
	requests []Request
	deletes  []DeleteRecord
	listSeq  int
	listHook func(context.Context, ListCall)
}

type entry struct {
	raw       []byte
	deleted   bool
	deletedAt time.Time
}

// listed reports whether the entry is in a listing served at now.
func (e *entry) listed(now time.Time, lag time.Duration) bool {
	return !e.deleted || now.Before(e.deletedAt.Add(lag))
}

// New returns a stopped server; Start checks the options and listens.
func New(opts Options) *Server {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.DefaultPageSize == 0 {
		opts.DefaultPageSize = 100
	}
	if opts.MaxPageSize == 0 {
		opts.MaxPageSize = 1000
	}
	if opts.DeleteStatus == 0 {
		opts.DeleteStatus = http.StatusOK
	}
	if opts.RandSeed == 0 {
		opts.RandSeed = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:   opts,
		byUUID: map[string]*entry{},
		rng:    rand.New(rand.NewPCG(opts.RandSeed, opts.RandSeed)),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+basePath+"/current_user/accounts", s.list)
	mux.HandleFunc("DELETE "+basePath+"/sandbox/accounts/{uuid}", s.delete)
	s.srv = &http.Server{Handler: s.record(mux), ReadHeaderTimeout: 10 * time.Second}
	return s
}

// Start validates the options and serves in the background until Close.
func (s *Server) Start() error {
	if s.run.Started() {
		return errors.New("cspfake: already started")
	}
	if err := s.validate(); err != nil {
		return err
	}
	if err := s.run.Start(s.srv, s.opts.Addr); err != nil {
		return fmt.Errorf("cspfake: listen: %w", err)
	}
	return nil
}

func (s *Server) validate() error {
	var errs []error
	if s.opts.Token == "" {
		errs = append(errs, errors.New("token is empty"))
	}
	host, _, err := net.SplitHostPort(s.opts.Addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		errs = append(errs, fmt.Errorf("address %q is not a loopback IP and port", s.opts.Addr))
	}
	if s.opts.DefaultPageSize < 1 || s.opts.MaxPageSize < s.opts.DefaultPageSize {
		errs = append(errs, fmt.Errorf("page sizes: want 1 <= default (%d) <= max (%d)", s.opts.DefaultPageSize, s.opts.MaxPageSize))
	}
	if s.opts.DeleteStatus != http.StatusOK && s.opts.DeleteStatus != http.StatusNoContent {
		errs = append(errs, fmt.Errorf("delete status %d: want 200 or 204", s.opts.DeleteStatus))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cspfake: %w", err)
	}
	return nil
}

// URL is the API root to use as the client's base URL, ending in /v2.
func (s *Server) URL() string { return s.run.URL() + basePath }

// Close stops the server and closes every connection, in-flight requests
// included.
func (s *Server) Close() error {
	return s.run.Close()
}

// Seed adds accounts in listing order. An account whose uuid is already
// known replaces it and is no longer deleted.
func (s *Server) Seed(accounts ...Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range accounts {
		raw := []byte(a.Raw)
		if len(raw) == 0 {
			// Account has only string and integer fields: Marshal cannot fail.
			raw, _ = json.Marshal(a)
		}
		uuid := a.UUID()
		if e := s.byUUID[uuid]; e != nil {
			// Replacing is how a test lists an account first without csp_id
			// and then with one.
			e.raw, e.deleted, e.deletedAt = raw, false, time.Time{}
			continue
		}
		e := &entry{raw: raw}
		s.accounts = append(s.accounts, e)
		if uuid != "" {
			s.byUUID[uuid] = e
		}
	}
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

// Requests returns every request received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Deletes returns every authorised delete request so far, in order.
func (s *Server) Deletes() []DeleteRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deletes)
}

// AcceptedDeletes returns when each delete got past the rate limiter
// (whatever happened next), so a test can compute the rate a caller
// achieved.
func (s *Server) AcceptedDeletes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for _, d := range s.deletes {
		if d.Status != 0 && d.Status != http.StatusTooManyRequests {
			out = append(out, d.At)
		}
	}
	return out
}

// Deleted reports whether the account with this uuid was deleted.
func (s *Server) Deleted(uuid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byUUID[uuid]
	return e != nil && e.deleted
}

// ListCall is a listing request about to be served: Seq counts the
// authorised listing requests since Start, from 0.
type ListCall struct {
	Seq, Limit, Offset int
}

// SetListHook installs h (nil removes it). The fake calls it before it
// decides each authorised listing request, outside its lock and with the
// request's context, so a hook may block to hold a listing between two of
// its pages; what the page holds is decided after h returns, so deletes made
// meanwhile show in it.
func (s *Server) SetListHook(h func(context.Context, ListCall)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listHook = h
}

// Hold is a listing request held by HoldListing.
type Hold struct {
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

// Reached is closed once the held request has arrived and is waiting.
func (h *Hold) Reached() <-chan struct{} { return h.reached }

// Release lets the held request, and every later one, through. It may be
// called more than once.
func (h *Hold) Release() { h.once.Do(func() { close(h.release) }) }

// HoldListing holds the n-th (from 0) listing request received after this
// call until Release, or until its client goes away. It replaces any list
// hook.
func (s *Server) HoldListing(n int) *Hold {
	h := &Hold{reached: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	target := s.listSeq + n
	s.listHook = func(ctx context.Context, c ListCall) {
		if c.Seq != target {
			return
		}
		close(h.reached)
		select {
		case <-h.release:
		case <-ctx.Done():
		}
	}
	return h
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

// bucket is the delete rate limiter: rate tokens per second, up to burst.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *bucket) reset(rate float64, burst int, now time.Time) {
	*b = bucket{rate: rate, burst: float64(max(burst, 1)), last: now}
	b.tokens = b.burst
}

// take spends a token, or says how long until one is available.
func (b *bucket) take(now time.Time) (bool, time.Duration) {
	if b.rate <= 0 {
		return true, 0
	}
	if elapsed := now.Sub(b.last).Seconds(); elapsed > 0 {
		b.tokens = math.Min(b.burst, b.tokens+elapsed*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// retryAfterSeconds rounds up, so a client that waits as told finds a token.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
