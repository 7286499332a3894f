package csp

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/sandbox-broker/broker/pkg/breaker"
)

var (
	// ErrCircuitOpen is returned without contacting the CSP while the breaker
	// is open, or half-open with its single probe already in flight.
	ErrCircuitOpen = breaker.ErrOpen

	// ErrMalformedResponse marks a 2xx answer the client could not understand
	// (not JSON, no "results"). It is treated like a 5xx: the CSP is
	// misbehaving, and it may well answer properly next time.
	ErrMalformedResponse = errors.New("malformed response")

	// ErrWrongEndpoint means the answer cannot come from the CSP API: a 404,
	// 405 or 410 for the listing, any redirect, or an HTML page where JSON
	// belongs. A wrong CSP_BASE_URL looks like this, and it would also answer
	// every delete with 404, so a caller must neither book anything nor take a
	// 404 for "deleted" until Probe has passed (docs/architecture.md §6).
	ErrWrongEndpoint = errors.New("wrong endpoint")

	// ErrTokenRejected is a 401 or 403: the broker's token is wrong, expired
	// or lacks the right, which no retry and no sandbox can fix. The error
	// also wraps the *HTTPError with the status.
	ErrTokenRejected = errors.New("token rejected")

	// ErrAccountNotFound is a delete answered 404 with no sign of a wrong
	// endpoint: the account is gone, provided Probe has proved the endpoint
	// right in the same run.
	ErrAccountNotFound = errors.New("account not found")

	// ErrPageRepeated means the CSP answered a later listing page with a page
	// it had already served, in a way that no paging behaviour explains
	// (list.go says which): the listing cannot be completed, and a truncated
	// one would strike every account it misses.
	ErrPageRepeated = errors.New("repeated page")

	// ErrTooManyAccounts means the listing went past Options.MaxAccounts
	// entries. Nothing is returned: a bound that truncated would look like
	// accounts disappearing.
	ErrTooManyAccounts = errors.New("too many accounts")

	// ErrInvalidConfig wraps every problem New finds in Options.
	ErrInvalidConfig = errors.New("csp: invalid configuration")

	// ErrInvalidExternalID is returned by DeleteAccount before any request
	// when the external ID has no usable last path segment.
	ErrInvalidExternalID = errors.New("invalid external id")
)

// HTTPError is a CSP answer with a status the operation does not accept.
type HTTPError struct {
	Status int
	// Body is a short, printable snippet of the response body: upstream
	// incidents returned HTML and non-JSON garbage inside 500s, and this text
	// ends up in logs and in the pool's last_error field.
	Body string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.Status)
	if text := http.StatusText(e.Status); text != "" {
		msg += " " + text
	}
	if e.Body != "" {
		msg += ": " + e.Body
	}
	return msg
}

// RateLimitedError is a 429 from the CSP. It is never retried inside the
// client and never counts as a breaker failure: the caller's rate limiter is
// the one that must slow down.
type RateLimitedError struct {
	// RetryAfter is the server's Retry-After (seconds or HTTP date), zero when
	// absent or unparsable, capped at maxRetryAfter.
	RetryAfter time.Duration
}

func (e *RateLimitedError) Error() string {
	if e.RetryAfter > 0 {
		return fmt.Sprintf("rate limited (HTTP 429), retry after %s", e.RetryAfter)
	}
	return "rate limited (HTTP 429)"
}

// TransportError means no complete HTTP answer arrived: the connection was
// refused, reset or dropped, or the attempt ran out of time.
type TransportError struct {
	Err error
}

func (e *TransportError) Error() string { return "transport: " + e.Err.Error() }

func (e *TransportError) Unwrap() error { return e.Err }

// Timeout reports whether the attempt ran out of time rather than failing
// on the wire.
func (e *TransportError) Timeout() bool {
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(e.Err, &ne) && ne.Timeout()
}

// IsTransient reports whether err is worth retrying later with backoff
// (5xx, 429, timeouts, transport errors, malformed answers, an open breaker)
// rather than being accounted as a definite failure (other 4xx, bad input).
// A cancelled context is not transient: the caller gave up.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if he, ok := errors.AsType[*HTTPError](err); ok {
		return he.Status >= 500
	}
	if _, ok := errors.AsType[*RateLimitedError](err); ok {
		return true
	}
	if _, ok := errors.AsType[*TransportError](err); ok {
		return true
	}
	return errors.Is(err, ErrCircuitOpen) ||
		errors.Is(err, ErrMalformedResponse) ||
		errors.Is(err, context.DeadlineExceeded)
}

// isFailure is the one rule, for list and delete alike, that decides both
// whether an attempt is retried and whether a call counts against the
// breaker: the CSP answered 5xx, nonsense, or not at all.
func isFailure(err error) bool {
	if he, ok := errors.AsType[*HTTPError](err); ok {
		return he.Status >= 500
	}
	if _, ok := errors.AsType[*TransportError](err); ok {
		return true
	}
	return errors.Is(err, ErrMalformedResponse)
}

// maxRetryAfter keeps an absurd Retry-After from parking the cleanup job.
const maxRetryAfter = time.Hour

func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if at, err := http.ParseTime(v); err == nil {
		d = at.Sub(now)
	}
	return min(max(d, 0), maxRetryAfter)
}

// snippetLimit is the most runes of a response body kept in an HTTPError.
const snippetLimit = 200

// sanitizeSnippet turns an arbitrary error body into one short printable
// line: HTML tags dropped and entities decoded, invalid UTF-8 and control
// characters removed, whitespace collapsed, truncated to snippetLimit runes.
func sanitizeSnippet(body []byte) string {
	text := html.UnescapeString(stripTags(body))
	var b strings.Builder
	n := 0
	space := false
	for len(text) > 0 {
		r, size := utf8.DecodeRuneInString(text)
		text = text[size:]
		switch {
		case r == utf8.RuneError && size <= 1:
			continue
		case unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case !unicode.IsPrint(r):
			continue
		}
		if n+1 > snippetLimit || (space && n+2 > snippetLimit) {
			b.WriteString("…")
			break
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// stripTags removes things that look like HTML tags. A '<' only opens a
// tag when followed by a letter, '/', '!' or '?', so text such as the CSP's
// "invalid character '<'" survives.
func stripTags(body []byte) string {
	var b strings.Builder
	inTag := false
	for i := 0; i < len(body); i++ {
		c := body[i]
		if inTag {
			if c == '>' {
				inTag = false
				b.WriteByte(' ')
			}
			continue
		}
		if c == '<' && i+1 < len(body) && opensTag(body[i+1]) {
			inTag = true
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func opensTag(c byte) bool {
	return c == '/' || c == '!' || c == '?' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
}
