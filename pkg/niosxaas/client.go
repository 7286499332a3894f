package niosxaas

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/pkg/breaker"
)

// DefaultBaseURL is the NIOSXaaS (CSP) endpoint the upstream uses.
const DefaultBaseURL = "https://csp.infoblox.com"

// Options configures a Client. Zero durations take the defaults.
type Options struct {
	// BaseURL is the API root, without path; https, or http on a loopback address (the
	// fake). Required.
	BaseURL string
	// Credentials is asked for the email and password at each sign-in. Required.
	Credentials CredentialsSource
	// ServiceName selects the services to delete by exact name; empty selects all.
	ServiceName string
	// ShadowMode lists and reports the services it would delete, and deletes none.
	ShadowMode bool
	// Timeout bounds each HTTP call, body included (default 30s).
	Timeout time.Duration
	// SessionTTL is how long a session is trusted when its jwt carries no exp claim
	// (default 10 minutes).
	SessionTTL time.Duration
	// Breaker configures the client's own circuit breaker, over every call.
	Breaker breaker.Options
	// HTTPClient replaces the client built here, e.g. to add tracing. It is copied, and
	// redirects are never followed with it: a followed 307 would resend the password.
	HTTPClient *http.Client
	// Logger receives sign-ins, breaker transitions and each deleted (or, in shadow
	// mode, would-be-deleted) service (default: discard).
	Logger *slog.Logger
	// Now replaces the clock that decides when a session expires (default time.Now). The
	// session outlives a Lambda invocation, and Lambda freezes idle environments: where
	// the monotonic clock stands still during a freeze, a session timed on it would be
	// used past its end, so only the wall clock reading counts.
	Now func() time.Time
}

const (
	defaultTimeout    = 30 * time.Second
	defaultSessionTTL = 10 * time.Minute
)

// ErrInvalidOptions wraps every problem New finds.
var ErrInvalidOptions = errors.New("niosxaas: invalid options")

// Client runs the step for one sandbox at a time per call to Clean, from any number of
// goroutines at once. It is meant to live as long as the process: its session and its
// connections outlive a cleanup run.
type Client struct {
	baseURL     string
	credentials CredentialsSource
	serviceName string
	shadow      bool
	timeout     time.Duration
	sessionTTL  time.Duration
	http        *http.Client
	breaker     *breaker.Breaker
	log         *slog.Logger
	now         func() time.Time

	mu      sync.Mutex
	current *session
	flight  *signInFlight
	// waiting counts callers blocked on a sign-in in flight, for tests.
	waiting int
}

// New validates opts and builds a Client.
func New(opts Options) (*Client, error) {
	var problems []string
	base, err := ValidateBaseURL(opts.BaseURL)
	if err != nil {
		problems = append(problems, err.Error())
	}
	if opts.Credentials == nil {
		problems = append(problems, "no credentials source")
	}
	if opts.Timeout < 0 || opts.SessionTTL < 0 || opts.Breaker.OpenFor < 0 || opts.Breaker.Threshold < 0 {
		problems = append(problems, "timeout, session TTL and breaker settings must not be negative")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalidOptions, strings.Join(problems, "; "))
	}
	c := &Client{
		baseURL:     base,
		credentials: opts.Credentials,
		serviceName: opts.ServiceName,
		shadow:      opts.ShadowMode,
		timeout:     orDefault(opts.Timeout, defaultTimeout),
		sessionTTL:  orDefault(opts.SessionTTL, defaultSessionTTL),
		log:         opts.Logger,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	c.now = func() time.Time { return now().Round(0) }
	c.breaker = breaker.New(opts.Breaker, func(from, to breaker.State) {
		c.log.Warn("niosxaas circuit breaker changed state", "from", from.String(), "to", to.String())
	})
	if opts.HTTPClient != nil {
		hc := *opts.HTTPClient
		c.http = &hc
	} else {
		c.http = &http.Client{Transport: newTransport()}
	}
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

// ValidateBaseURL accepts an absolute https URL, or http on a loopback address, with no
// credentials, query or fragment, and returns it without a trailing slash. The password
// goes to this host, so plain http anywhere else is refused.
func ValidateBaseURL(raw string) (string, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", errors.New("base URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		// The parser's message quotes the URL, which may hold a password.
		return "", errors.New("base URL does not parse")
	}
	shown := u.Redacted()
	switch {
	case u.User != nil:
		return "", errors.New("base URL must not carry credentials")
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return "", fmt.Errorf("base URL %q is not an absolute https URL", shown)
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("base URL %q must not have a query or fragment", shown)
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return "", fmt.Errorf("base URL %q must be https (plain http only on a loopback address)", shown)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func orDefault(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

func newTransport() *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        32,
		// Cleanup runs up to 16 sandboxes at once against this one host.
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// BreakerState reports the client's breaker, so cleanup can stop starting steps while it
// is open.
func (c *Client) BreakerState() breaker.State { return c.breaker.State() }
