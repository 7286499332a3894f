package csp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestSanitizeSnippet(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{"plain json", `{"error":"boom"}`, `{"error":"boom"}`},
		{
			"license service html",
			"<html><body>\n<h1>Error</h1>\r\n<p>unable to get licenses: invalid character '<' looking for beginning of value</p></body></html>",
			"Error unable to get licenses: invalid character '<' looking for beginning of value",
		},
		{"entities", "<p>a &amp; b &lt;c&gt;</p>", "a & b <c>"},
		{"control and invalid utf-8", "\x00ok\x07\xff\xfe\x1b[31m red\x7f", "ok[31m red"},
		{"empty", "", ""},
		{"only garbage", "\x00\x01\xff\xfe", ""},
		{"comment and doctype", "<!DOCTYPE html><!-- x -->Gateway Timeout", "Gateway Timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sanitizeSnippet([]byte(tt.body)); got != tt.want {
				t.Fatalf("sanitizeSnippet(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

func TestSanitizeSnippetTruncates(t *testing.T) {
	got := sanitizeSnippet([]byte(strings.Repeat("é", 5000)))
	if n := utf8.RuneCountInString(got); n != snippetLimit+1 || !strings.HasSuffix(got, "…") {
		t.Fatalf("got %d runes ending %q, want %d runes then an ellipsis", n, got[len(got)-6:], snippetLimit)
	}
	exact := strings.Repeat("x", snippetLimit)
	if got := sanitizeSnippet([]byte(exact + "\n\n")); got != exact {
		t.Fatalf("a body of exactly the limit must not get an ellipsis, got %q", got)
	}
	for _, r := range sanitizeSnippet([]byte(strings.Repeat("a\x00\tb\n", 1000))) {
		if !unicode.IsPrint(r) && r != '…' {
			t.Fatalf("unprintable rune %q in snippet", r)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"3", 3 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"soon", 0},
		{"1.5", 0},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"999999999999999", maxRetryAfter},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestIsTransient(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"500", &HTTPError{Status: 500}, true},
		{"wrapped 503", fmt.Errorf("csp: delete account x: %w", &HTTPError{Status: 503}), true},
		{"400", &HTTPError{Status: 400}, false},
		{"401", &HTTPError{Status: 401}, false},
		{"403", &HTTPError{Status: 403}, false},
		{"302", &HTTPError{Status: 302}, false},
		{"429", fmt.Errorf("x: %w", &RateLimitedError{RetryAfter: time.Second}), true},
		{"transport", &TransportError{Err: io.ErrUnexpectedEOF}, true},
		{"timeout", &TransportError{Err: context.DeadlineExceeded}, true},
		{"deadline", context.DeadlineExceeded, true},
		{"cancelled", context.Canceled, false},
		{"cancelled in transport", &TransportError{Err: fmt.Errorf("get: %w", context.Canceled)}, false},
		{"circuit open", fmt.Errorf("csp: list: %w", ErrCircuitOpen), true},
		{"malformed", fmt.Errorf("%w: no results", ErrMalformedResponse), true},
		{"bad external id", fmt.Errorf("%w: empty", ErrInvalidExternalID), false},
		{"wrong endpoint", fmt.Errorf("%w: %w", ErrWrongEndpoint, &HTTPError{Status: 302}), false},
		{"token rejected", fmt.Errorf("%w: %w", ErrTokenRejected, &HTTPError{Status: 403}), false},
		{"account not found", fmt.Errorf("x: %w", ErrAccountNotFound), false},
		{"repeated page", fmt.Errorf("x: %w", ErrPageRepeated), false},
		{"too many accounts", fmt.Errorf("x: %w", ErrTooManyAccounts), false},
		{"other", errors.New("something"), false},
	}
	for _, tt := range tests {
		if got := IsTransient(tt.err); got != tt.want {
			t.Errorf("IsTransient(%s: %v) = %v, want %v", tt.name, tt.err, got, tt.want)
		}
	}
}

func TestTransportErrorTimeout(t *testing.T) {
	if !(&TransportError{Err: fmt.Errorf("get: %w", context.DeadlineExceeded)}).Timeout() {
		t.Error("a deadline must read as a timeout")
	}
	if (&TransportError{Err: io.EOF}).Timeout() {
		t.Error("EOF must not read as a timeout")
	}
}

func TestParseCreatedAt(t *testing.T) {
	utc := func(y int, mo time.Month, d, h, mi, s, ns int) time.Time {
		return time.Date(y, mo, d, h, mi, s, ns, time.UTC)
	}
	tests := []struct {
		in   string
		want time.Time
	}{
		{"2025-10-06T09:15:42Z", utc(2025, 10, 6, 9, 15, 42, 0)},
		{"2025-10-06T09:15:42.123456Z", utc(2025, 10, 6, 9, 15, 42, 123456000)},
		{"2025-10-06T11:15:42+02:00", utc(2025, 10, 6, 9, 15, 42, 0)},
		{"2025-10-06T11:15:42.5+02:00", utc(2025, 10, 6, 9, 15, 42, 500000000)},
		{"2025-10-06T09:15:42.123456+0000", utc(2025, 10, 6, 9, 15, 42, 123456000)},
		{"2025-10-06T09:15:42", utc(2025, 10, 6, 9, 15, 42, 0)},
		{"2025-10-06T09:15:42.25", utc(2025, 10, 6, 9, 15, 42, 250000000)},
		{"2025-10-06 09:15:42", utc(2025, 10, 6, 9, 15, 42, 0)},
		{"2025-10-06 09:15:42.1+00:00", utc(2025, 10, 6, 9, 15, 42, 100000000)},
		{"2025-10-06", utc(2025, 10, 6, 0, 0, 0, 0)},
		{" 2025-10-06T09:15:42Z ", utc(2025, 10, 6, 9, 15, 42, 0)},
		{"", time.Time{}},
		{"last Tuesday", time.Time{}},
		{"06/10/2025 09:15", time.Time{}},
		{"1759742142", time.Time{}},
	}
	for _, tt := range tests {
		if got := parseCreatedAt(tt.in); !got.Equal(tt.want) || got.Location() != time.UTC {
			t.Errorf("parseCreatedAt(%q) = %v, want %v (UTC)", tt.in, got, tt.want)
		}
	}
}

func TestIsUUID(t *testing.T) {
	for _, s := range []string{"6f1c2a4e-9b1d-4c8e-a6f2-3d5e7b9c1a01", "6F1C2A4E-9B1D-4C8E-A6F2-3D5E7B9C1A01", "00000000-0000-0000-0000-000000000000"} {
		if !isUUID(s) {
			t.Errorf("isUUID(%q) = false", s)
		}
	}
	for _, s := range []string{"", "bare-uuid", "6f1c2a4e9b1d4c8ea6f23d5e7b9c1a01", "6f1c2a4e-9b1d-4c8e-a6f2-3d5e7b9c1a0", "6f1c2a4e-9b1d-4c8e-a6f2-3d5e7b9c1a011",
		"6f1c2a4e_9b1d-4c8e-a6f2-3d5e7b9c1a01", "6f1c2a4g-9b1d-4c8e-a6f2-3d5e7b9c1a01", "{6f1c2a4e-9b1d-4c8e-a6f2-3d5e7b9c1a0}"} {
		if isUUID(s) {
			t.Errorf("isUUID(%q) = true", s)
		}
	}
}

func TestAccountUUID(t *testing.T) {
	good := map[string]string{
		"identity/accounts/6f1c2a4e-9b1d-4c8e-a6f2-3d5e7b9c1a01": "6f1c2a4e-9b1d-4c8e-a6f2-3d5e7b9c1a01",
		"bare-uuid":                    "bare-uuid",
		"identity/accounts/we?ird#id%": "we?ird#id%",
	}
	for in, want := range good {
		if got, err := accountUUID(in); err != nil || got != want {
			t.Errorf("accountUUID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "identity/accounts/", "identity/accounts/.", "identity/accounts/..", "a/b c", "a/b\n", "a/\x00"} {
		if _, err := accountUUID(in); !errors.Is(err, ErrInvalidExternalID) {
			t.Errorf("accountUUID(%q) error = %v, want ErrInvalidExternalID", in, err)
		}
	}
}
