package auth

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"time"
)

// ReadSecret returns the string value of the secret arn. The function wires it to Secrets
// Manager (pkg/app/awssecrets); this package does not import the AWS SDK, so the route
// functions, which use only the scopes and decisions, do not link a Secrets Manager client.
type ReadSecret = func(ctx context.Context, arn string) (string, error)

// SecretStore serves the tokens of a Secrets Manager secret of the form
//
//	{"tokens":[{"name":"instruqt","scope":"track","sha256":"<hex>"}, ...]}
//
// scope is "track", "admin" or "metrics".
//
// It reads the secret on first use and again once Refresh has passed, so a rotated or
// revoked token takes effect within Refresh without a deployment. A slow or failed read
// keeps the tokens of the last good read (an outage of Secrets Manager must not lock every
// client out): one caller reads, bounded by SecretReadTimeout, while every other caller is
// served the last good tokens at once; a failed read is retried after at most
// retryAfterFailure.
type SecretStore struct {
	read    ReadSecret
	arn     string
	refresh time.Duration
	log     *slog.Logger
	now     func() time.Time

	mu     sync.Mutex
	tokens []Token
	loaded bool // tokens hold a good read
	// No read starts until wait has passed since triedAt, on the wall clock (due).
	triedAt time.Time
	wait    time.Duration
	reading chan struct{} // closed when the read in progress ends; nil when none is
}

// SecretReadTimeout bounds one read of the secret. It stays well below the authorizer
// function's timeout (the stack checks it), so a hanging read ends in time for the caller
// to fall back to the last good tokens instead of being killed with the function.
const SecretReadTimeout = 1500 * time.Millisecond

const retryAfterFailure = 10 * time.Second

// SecretStoreOptions adjust a SecretStore.
type SecretStoreOptions struct {
	// Refresh is how long a good read is served before the secret is read again.
	Refresh time.Duration
	Log     *slog.Logger // nil: discarded
	// Now replaces the clock (nil: time.Now); only its wall clock reading counts.
	Now func() time.Time
}

// NewSecretStore returns a store for the secret arn.
//
// The store lives as long as its process, across Lambda invocations, and Lambda freezes an
// idle environment between them. Where the monotonic clock stands still during a freeze,
// a refresh timed on it would not come for as long as the freezes last, and a revoked
// token would keep working: the refresh is timed on the wall clock.
func NewSecretStore(read ReadSecret, arn string, o SecretStoreOptions) *SecretStore {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	s := &SecretStore{read: read, arn: arn, refresh: o.Refresh, log: o.Log, now: func() time.Time { return now().Round(0) }}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// due reports whether a read may start: wait has passed since the last one started or
// succeeded, or the wall clock went back past it (a clock step), which a read too early
// costs little and a refresh held back by the step could cost a revocation. The caller
// holds s.mu.
func (s *SecretStore) due() bool {
	age := s.now().Sub(s.triedAt)
	return s.triedAt.IsZero() || age >= s.wait || age < 0
}

// retryIn times the next read from now; the caller holds s.mu.
func (s *SecretStore) retryIn(wait time.Duration) { s.triedAt, s.wait = s.now(), wait }

// Tokens returns the current tokens, reading the secret when they are due for a refresh.
// The read's deadline moves forward before the read starts, so requests that arrive
// during a slow read neither wait for it nor start their own: they get the last good
// tokens. Only before the first good read, when there is nothing to serve, do they wait for
// the read in progress (or their own context).
func (s *SecretStore) Tokens(ctx context.Context) []Token {
	s.mu.Lock()
	if s.reading != nil && !s.loaded {
		reading := s.reading
		s.mu.Unlock()
		select {
		case <-reading:
		case <-ctx.Done():
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.tokens
	}
	if s.reading != nil || !s.due() {
		defer s.mu.Unlock()
		return s.tokens
	}
	s.retryIn(min(s.refresh, retryAfterFailure))
	reading := make(chan struct{})
	s.reading = reading
	s.mu.Unlock()

	tokens, err := s.fetch(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.reading = nil
	close(reading)
	if err != nil {
		s.log.ErrorContext(ctx, "cannot read the token secret; keeping the tokens read before",
			"secret", s.arn, "error", err.Error(), "tokens_kept", len(s.tokens))
		return s.tokens
	}
	s.tokens, s.loaded = tokens, true
	s.retryIn(s.refresh)
	return s.tokens
}

func (s *SecretStore) fetch(ctx context.Context) ([]Token, error) {
	ctx, cancel := context.WithTimeout(ctx, SecretReadTimeout)
	defer cancel()
	value, err := s.read(ctx, s.arn)
	if err != nil {
		return nil, err
	}
	tokens, problems, err := ParseSecret([]byte(value))
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		// The valid entries stay usable: one bad edit must not lock every client out.
		s.log.ErrorContext(ctx, "the token secret has invalid entries; they are ignored",
			"secret", s.arn, "problems", problems)
	}
	return tokens, nil
}

// secretDocument is the secret's JSON document, read by ParseSecret and written by
// SecretDocument.
type secretDocument struct {
	Tokens *[]secretEntry `json:"tokens"`
}

type secretEntry struct {
	Name   string `json:"name"`
	Scope  string `json:"scope"`
	SHA256 string `json:"sha256"`
	// Rate, Burst and MaxLiveAllocations are the client's optional limits.
	Rate               *int `json:"rate,omitempty"`
	Burst              *int `json:"burst,omitempty"`
	MaxLiveAllocations *int `json:"max_live_allocations,omitempty"`
}

// SecretDocument is the secret's document holding tokens (ParseSecret reads it back): what
// the local stack serves its authorizer instances in place of Secrets Manager.
func SecretDocument(tokens []Token) []byte {
	entries := make([]secretEntry, 0, len(tokens))
	for _, t := range tokens {
		e := secretEntry{Name: t.Name, Scope: string(t.Scope), SHA256: hex.EncodeToString(t.Digest[:])}
		if l := t.Limits; l.Rate > 0 {
			e.Rate, e.Burst = &l.Rate, &l.Burst
		}
		if l := t.Limits; l.MaxLiveAllocations > 0 {
			e.MaxLiveAllocations = &l.MaxLiveAllocations
		}
		entries = append(entries, e)
	}
	doc, _ := json.Marshal(secretDocument{Tokens: &entries}) // strings and ints: Marshal cannot fail
	return doc
}

var tokenName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ParseSecret reads the secret's JSON document. err is set when the document as a whole is
// unusable; problems lists the entries that were skipped (by position and name, never by
// digest).
func ParseSecret(raw []byte) (tokens []Token, problems []string, err error) {
	var doc secretDocument
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&doc); err != nil {
		return nil, nil, fmt.Errorf("the secret is not a token document: %w", err)
	}
	if doc.Tokens == nil {
		return nil, nil, errors.New(`the secret has no "tokens" list`)
	}
	seen := map[[32]byte]bool{}
	for i, e := range *doc.Tokens {
		var why []string
		if !tokenName.MatchString(e.Name) {
			why = append(why, "name must be 1-64 characters of A-Z a-z 0-9 . _ -")
		}
		scope := Scope(e.Scope)
		if scope != Track && scope != Admin && scope != Metrics {
			why = append(why, `scope must be "track", "admin" or "metrics"`)
		}
		var digest [32]byte
		if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != len(digest) {
			why = append(why, "sha256 must be 64 hex digits")
		} else {
			copy(digest[:], b)
			if seen[digest] {
				why = append(why, "the same digest appears in an earlier entry")
			}
		}
		limits, limitWhy := clientLimits(e.Rate, e.Burst, e.MaxLiveAllocations)
		why = append(why, limitWhy...)
		if len(why) > 0 {
			problems = append(problems, fmt.Sprintf("entry %d (%q): %s", i, safeName(e.Name), strings.Join(why, "; ")))
			continue
		}
		seen[digest] = true
		tokens = append(tokens, Token{Name: e.Name, Scope: scope, Digest: digest, Limits: limits})
	}
	return tokens, problems, nil
}

// clientLimits validates an entry's limits: each is optional; rate and burst go together
// (a usage plan's throttle has both), each within API Gateway's account limits.
func clientLimits(rate, burst, maxLive *int) (ClientLimits, []string) {
	var l ClientLimits
	var why []string
	switch {
	case (rate == nil) != (burst == nil):
		why = append(why, "rate and burst go together")
	case rate != nil && (*rate < 1 || *rate > MaxClientRate):
		why = append(why, fmt.Sprintf("rate must be 1-%d requests per second", MaxClientRate))
	case burst != nil && (*burst < 1 || *burst > MaxClientBurst):
		why = append(why, fmt.Sprintf("burst must be 1-%d requests", MaxClientBurst))
	case rate != nil:
		l.Rate, l.Burst = *rate, *burst
	}
	if maxLive != nil {
		if *maxLive < 1 {
			why = append(why, "max_live_allocations must be at least 1")
		} else {
			l.MaxLiveAllocations = *maxLive
		}
	}
	return l, why
}

// safeName keeps a log line readable when an entry's name is garbage.
func safeName(name string) string {
	if tokenName.MatchString(name) {
		return name
	}
	return "<invalid>"
}
