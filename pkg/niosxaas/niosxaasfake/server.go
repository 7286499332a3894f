package niosxaasfake

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/internal/fakeserve"
)

// Options configures a Server.
type Options struct {
	// Email and Password are the only credentials accepted. Required.
	Email, Password string
	// Addr must be a loopback IP and port (default "127.0.0.1:0", any port).
	Addr string
	// TokenTTL is the lifetime written into every issued jwt's exp (default 1h).
	TokenTTL time.Duration
	// OmitExp issues jwts without an exp claim, as a server that does not say.
	OmitExp bool
	// BeforeSignIn, if set, runs at the start of every sign-in request, so a test can
	// hold a sign-in in flight.
	BeforeSignIn func()
	// RandSeed seeds the RNG behind fault rates (default 1).
	RandSeed uint64
	// Now replaces the clock of token expiry. Injected latency always uses real time.
	Now func() time.Time
}

// Service is one universal service of an account.
type Service struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Counters are the calls the fake answered, whatever the answer.
type Counters struct {
	SignIns int
	// Per account external id.
	Switches, Lists, Deletes map[string]int
}

// Server is a fake NIOSXaaS. Apart from Start and Close, which must not race each other,
// its methods are safe for concurrent use.
type Server struct {
	opts Options
	srv  *http.Server
	run  fakeserve.Server

	mu       sync.Mutex
	accounts map[string][]Service
	tokens   map[string]token
	faults   Faults
	rng      *mrand.Rand
	counters Counters
}

// token is an issued jwt: a user session (account empty) or one scoped to an account.
type token struct {
	account string
	expires time.Time
}

// New returns a stopped server; Start checks the options and listens.
func New(opts Options) *Server {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.RandSeed == 0 {
		opts.RandSeed = 1
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{
		opts:     opts,
		accounts: map[string][]Service{},
		tokens:   map[string]token{},
		rng:      mrand.New(mrand.NewPCG(opts.RandSeed, opts.RandSeed)),
		counters: newCounters(),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v2/session/users/sign_in", s.signIn)
	mux.HandleFunc("POST /v2/session/account_switch", s.accountSwitch)
	mux.HandleFunc("GET "+servicesPath, s.list)
	mux.HandleFunc("DELETE "+servicesPath+"/{id}", s.delete)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	return s
}

const servicesPath = "/api/universalinfra/v1/universalservices"

func newCounters() Counters {
	return Counters{Switches: map[string]int{}, Lists: map[string]int{}, Deletes: map[string]int{}}
}

// Start validates the options and serves in the background until Close.
func (s *Server) Start() error {
	if s.run.Started() {
		return errors.New("niosxaasfake: already started")
	}
	var errs []error
	if s.opts.Email == "" || s.opts.Password == "" {
		errs = append(errs, errors.New("email and password are required"))
	}
	host, _, err := net.SplitHostPort(s.opts.Addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		errs = append(errs, fmt.Errorf("address %q is not a loopback IP and port", s.opts.Addr))
	}
	if s.opts.TokenTTL < 0 {
		errs = append(errs, errors.New("token TTL must not be negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("niosxaasfake: %w", err)
	}
	if err := s.run.Start(s.srv, s.opts.Addr); err != nil {
		return fmt.Errorf("niosxaasfake: listen: %w", err)
	}
	return nil
}

// URL is the base URL to give the client.
func (s *Server) URL() string { return s.run.URL() }

// Close stops the server and closes every connection, in-flight requests included.
func (s *Server) Close() error {
	return s.run.Close()
}

// Seed sets the services of the account with this external id (identity/accounts/<uuid>).
// An account never seeded exists with no services, so the local stack needs no seeding.
func (s *Server) Seed(externalID string, services ...Service) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[externalID] = slices.Clone(services)
}

// Services returns the services the account still has.
func (s *Server) Services(externalID string) []Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.accounts[externalID])
}

// SetFaults replaces the injected faults and restarts their Next counters.
func (s *Server) SetFaults(f Faults) error {
	if err := f.Validate(); err != nil {
		return fmt.Errorf("niosxaasfake: %w", err)
	}
	f.Delete.Fail.IDs = slices.Clone(f.Delete.Fail.IDs)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
	return nil
}

// RevokeSessions makes every jwt issued so far answer 401, as a password change or a
// server-side logout would.
func (s *Server) RevokeSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.tokens)
}

// Counters returns a copy of the call counters.
func (s *Server) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counters
	c.Switches, c.Lists, c.Deletes = maps.Clone(c.Switches), maps.Clone(c.Lists), maps.Clone(c.Deletes)
	return c
}

// issue mints a jwt-shaped token: a real header and exp claim, a random signature the
// fake alone can check (by looking it up). The caller holds s.mu.
func (s *Server) issue(account string) string {
	now := s.opts.Now()
	t := token{account: account, expires: now.Add(s.opts.TokenTTL)}
	claims := map[string]any{"iat": now.Unix(), "jti": rand.Text()}
	if account != "" {
		claims["account_id"] = account
	}
	if !s.opts.OmitExp {
		claims["exp"] = t.expires.Unix()
	}
	payload, _ := json.Marshal(claims) // strings and integers: Marshal cannot fail
	jwt := strings.Join([]string{
		base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)),
		base64.RawURLEncoding.EncodeToString(payload),
		base64.RawURLEncoding.EncodeToString([]byte(rand.Text())),
	}, ".")
	s.tokens[jwt] = t
	return jwt
}

// fires reports whether a trigger hits the current request; the caller holds s.mu.
func (s *Server) fires(t *Trigger) bool {
	if t.Next > 0 {
		t.Next--
		return true
	}
	return t.Rate > 0 && s.rng.Float64() < t.Rate
}
