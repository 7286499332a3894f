package csp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"

	"github.com/sandbox-broker/broker/pkg/breaker"
)

// Options configures a Client. Zero durations and counts take the defaults;
// negative ones are errors.
type Options struct {
	// BaseURL is the API root, e.g. https://csp.infoblox.com/v2, or the URL
	// of a cspfake server. Required: there is no implicit mock mode.
	BaseURL string
	// Token is sent as "Authorization: Token <Token>". Required.
	Token string
	// ConnectTimeout bounds dialling and the TLS handshake (default 5s).
	ConnectTimeout time.Duration
	// RequestTimeout bounds each HTTP attempt, body included (default 15s:
	// upstream deletes take 5–10 s).
	RequestTimeout time.Duration
	// MaxAttempts is the total number of attempts per call, first one
	// included (default 3, at most 10).
	MaxAttempts int
	// Breaker configures the circuit breaker.
	Breaker breaker.Options
	// PageSize is the _limit of each listing page (default 100, at most 1000,
	// the largest page the CSP is assumed to honour: a server clamping a
	// bigger limit would look like the last page and truncate the listing).
	PageSize int
	// MaxAccounts bounds the entries one listing may hold (default 50 000);
	// a listing beyond it fails with ErrTooManyAccounts rather than growing
	// without end when a CSP pages wrongly.
	MaxAccounts int
	// MaxConcurrentCalls is how many calls the caller makes at once (cleanup's
	// CLEANUP_MAX_IN_FLIGHT; default 16): the idle connections kept for the host, so
	// a call never waits for a new TLS connection that a finished one could have lent.
	MaxConcurrentCalls int
	// HTTPClient replaces the client built from ConnectTimeout, e.g. to add
	// tracing. It is copied, and redirects are never followed with it.
	HTTPClient *http.Client
	// Logger receives breaker transitions, retries and skipped entries
	// (default: discard).
	Logger *slog.Logger
}

const (
	defaultConnectTimeout  = 5 * time.Second
	defaultRequestTimeout  = 15 * time.Second
	defaultMaxAttempts     = 3
	maxMaxAttempts         = 10
	defaultPageSize        = 100
	maxPageSize            = 1000
	defaultMaxAccounts     = 50_000
	defaultConcurrentCalls = 16
)

// Client talks to one CSP endpoint. It is safe for concurrent use and is
// meant to live as long as the process, so connections are reused across
// Lambda invocations.
type Client struct {
	baseURL        string
	authorization  string
	http           *http.Client
	requestTimeout time.Duration
	maxAttempts    int
	pageSize       int
	maxAccounts    int
	breaker        *breaker.Breaker
	log            *slog.Logger
}

// New validates opts and builds a Client. Every problem found is reported
// at once, wrapped in ErrInvalidConfig; the token itself is never echoed.
func New(opts Options) (*Client, error) {
	base, problems := validate(opts)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrInvalidConfig, strings.Join(problems, "; "))
	}

	c := &Client{
		baseURL:        base,
		authorization:  "Token " + opts.Token,
		requestTimeout: orDefault(opts.RequestTimeout, defaultRequestTimeout),
		maxAttempts:    orDefault(opts.MaxAttempts, defaultMaxAttempts),
		pageSize:       orDefault(opts.PageSize, defaultPageSize),
		maxAccounts:    orDefault(opts.MaxAccounts, defaultMaxAccounts),
		log:            opts.Logger,
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	c.breaker = breaker.New(opts.Breaker, func(from, to breaker.State) {
		c.log.Warn("csp circuit breaker changed state", "from", from.String(), "to", to.String())
	})

	if opts.HTTPClient != nil {
		hc := *opts.HTTPClient
		c.http = &hc
	} else {
		c.http = &http.Client{Transport: newTransport(orDefault(opts.ConnectTimeout, defaultConnectTimeout), orDefault(opts.MaxConcurrentCalls, defaultConcurrentCalls))}
	}
	// A followed 301/302 turns a DELETE into a GET whose 200 would read as
	// "deleted" while the account lives on; a redirect is an HTTPError.
	c.http.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c, nil
}

func validate(o Options) (string, []string) {
	var problems []string
	base, err := validBaseURL(o.BaseURL)
	if err != nil {
		problems = append(problems, err.Error())
	}
	switch {
	case strings.TrimSpace(o.Token) == "":
		problems = append(problems, "token is empty")
	case strings.ContainsFunc(o.Token, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		problems = append(problems, "token contains whitespace or control characters")
	}
	checkNonNegative := func(name string, d time.Duration) {
		if d < 0 {
			problems = append(problems, fmt.Sprintf("%s must not be negative (got %s)", name, d))
		}
	}
	checkNonNegative("connect timeout", o.ConnectTimeout)
	checkNonNegative("request timeout", o.RequestTimeout)
	checkNonNegative("breaker open-for duration", o.Breaker.OpenFor)
	if o.MaxAttempts < 0 || o.MaxAttempts > maxMaxAttempts {
		problems = append(problems, fmt.Sprintf("max attempts must be between 1 and %d (got %d)", maxMaxAttempts, o.MaxAttempts))
	}
	if o.PageSize < 0 || o.PageSize > maxPageSize {
		problems = append(problems, fmt.Sprintf("page size must be between 1 and %d (got %d)", maxPageSize, o.PageSize))
	}
	if o.MaxAccounts < 0 {
		problems = append(problems, fmt.Sprintf("max accounts must not be negative (got %d)", o.MaxAccounts))
	}
	if o.MaxConcurrentCalls < 0 {
		problems = append(problems, fmt.Sprintf("max concurrent calls must not be negative (got %d)", o.MaxConcurrentCalls))
	}
	if o.Breaker.Threshold < 0 {
		problems = append(problems, fmt.Sprintf("breaker threshold must not be negative (got %d)", o.Breaker.Threshold))
	}
	return base, problems
}

func validBaseURL(raw string) (string, error) {
	if strings.TrimSpace(raw) == "" {
		return "", errors.New("base URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("base URL does not parse: %v", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("base URL %q must be absolute http(s)", raw)
	case u.Host == "":
		return "", fmt.Errorf("base URL %q has no host", raw)
	case u.User != nil:
		return "", errors.New("base URL must not carry credentials; use the token")
	case u.RawQuery != "" || u.Fragment != "":
		return "", fmt.Errorf("base URL %q must not have a query or fragment", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

func newTransport(connectTimeout time.Duration, concurrentCalls int) *http.Transport {
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: connectTimeout,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        max(32, concurrentCalls),
		// The default of 2 idle connections per host would make every
		// concurrent delete beyond the second open a new TLS connection.
		MaxIdleConnsPerHost:   concurrentCalls,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// BreakerState reports the breaker shared by all calls of c.
func (c *Client) BreakerState() breaker.State { return c.breaker.State() }

// send performs one HTTP attempt. The caller must close the body.
func (c *Client) send(ctx context.Context, method, u string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", c.authorization)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sandbox-broker-csp")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, &TransportError{Err: err}
	}
	return resp, nil
}

// errorBodyLimit is how much of an error body is read for the snippet;
// drainLimit is how much more is read so the connection can be reused.
const (
	errorBodyLimit = 4 << 10
	drainLimit     = 64 << 10
)

// answerError classifies a response the operation does not accept, by the
// rules list and delete share: a redirect is never the CSP API's answer
// (redirects are not followed, see New), and 401 and 403 reject the token.
func answerError(resp *http.Response) error {
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode <= 399:
		return fmt.Errorf("%w: %w", ErrWrongEndpoint, statusError(resp))
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: %w", ErrTokenRejected, statusError(resp))
	}
	return statusError(resp)
}

// isHTML reports whether a body is a web page: the CSP API answers JSON, so
// a page comes from a proxy, a login portal or a web server behind a wrong
// base URL.
func isHTML(resp *http.Response, body []byte) bool {
	if mt, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";"); strings.EqualFold(strings.TrimSpace(mt), "text/html") {
		return true
	}
	return bytes.HasPrefix(bytes.TrimSpace(body), []byte("<"))
}

// statusError turns an unaccepted response into RateLimitedError or
// HTTPError.
func statusError(resp *http.Response) error {
	if resp.StatusCode == http.StatusTooManyRequests {
		return &RateLimitedError{RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
	return &HTTPError{Status: resp.StatusCode, Body: sanitizeSnippet(body)}
}

func drainClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, drainLimit))
	_ = body.Close()
}
