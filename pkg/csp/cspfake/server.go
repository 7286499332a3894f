package cspfake

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
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
