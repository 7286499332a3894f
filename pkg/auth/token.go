package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Scope is what a token may call, and what a route requires.
type Scope string

const (
	// Public routes take no token (health checks).
	Public Scope = "public"
	// Track tokens belong to lab platforms (Instruqt) and call the student routes.
	Track Scope = "track"
	// Admin tokens belong to operators and call the admin routes.
	Admin Scope = "admin"
	// Metrics tokens belong to scrapers (Prometheus): they read /metrics and the pool
	// statistics and nothing else, so a scraper's credential cannot change the pool. A
	// route of this scope is open to admin tokens too.
	Metrics Scope = "metrics"
)

// Permits reports whether a token of scope s may call a route that requires need. Scopes
// do not nest, with one exception: an admin token is an operator's credential and is
// refused on the student routes, so every allocation names a lab platform as its client;
// but the read-only metrics routes are an operator's too.
func (s Scope) Permits(need Scope) bool {
	switch {
	case need == Public:
		return true
	case need == Metrics:
		return s == Metrics || s == Admin
	default:
		return s == need && s != Public
	}
}

// Token is one configured credential: the client's name, its scope and the SHA-256 digest
// of the token.
type Token struct {
	Name   string
	Scope  Scope
	Digest [sha256.Size]byte
	Limits ClientLimits
}

// ClientLimits are a client's own limits; zero means none of that kind. Rate and Burst
// are its request throttle (requests per second, bucket size): API Gateway's usage plan of
// the client in AWS, the local gateway emulator's per-client bucket locally.
// MaxLiveAllocations caps the client's live allocations; the authorizer hands it to the
// allocate function (api.ContextMaxLiveAllocations), whose claim transaction holds it.
type ClientLimits struct {
	Rate               int
	Burst              int
	MaxLiveAllocations int
}

// MaxClientRate and MaxClientBurst bound a client's throttle (API Gateway's default
// account limits; a usage plan above them never applies).
const (
	MaxClientRate  = 10_000
	MaxClientBurst = 5_000
)

// Identity is the client a valid token belongs to.
type Identity struct {
	Name  string
	Scope Scope
	// MaxLiveAllocations is the client's cap (ClientLimits), 0 for none.
	MaxLiveAllocations int
	digest             [sha256.Size]byte // the matched token's, for UsageKey
}

// UsageKey is the usage key of the matched token on the REST API restAPIID
// (Token.UsageKey): the authorizer's usageIdentifierKey. Never log it.
func (id Identity) UsageKey(restAPIID string) string { return usageKey(id.digest, id.Name, restAPIID) }

// usageKeyLabel keeps the usage key's HMAC apart from any other use of a token's digest.
const usageKeyLabel = "sandbox-broker usage identifier key v2"

// UsageKey is the value of the token's API Gateway API key on the REST API restAPIID: the
// authorizer answers it as the usageIdentifierKey of every request the token makes to that
// API (the REST API takes its API keys from the authorizer), and the usage-plans job
// (pkg/usageplans) puts a key of this value into the client's usage plan of that API. Both
// derive it from the secret's entry, so the authorizer makes no API Gateway call:
// HMAC-SHA256 keyed by the token's digest over a fixed label, the client's name and the
// REST API's id, in hex (64 characters). API Gateway refuses two keys of one value in a
// region, so each part keeps two keys apart that must be: the name, a token moved to
// another client; the REST API id, the same token given to two stacks of one region. The
// value does not reveal the digest, let alone the token; API Gateway ignores an x-api-key
// header with this key source, so it admits no caller. Never log it.
func (t Token) UsageKey(restAPIID string) string { return usageKey(t.Digest, t.Name, restAPIID) }

func usageKey(digest [sha256.Size]byte, name, restAPIID string) string {
	mac := hmac.New(sha256.New, digest[:])
	mac.Write([]byte(usageKeyLabel + "\x00" + name + "\x00" + restAPIID))
	return hex.EncodeToString(mac.Sum(nil))
}

// MaxTokenLength bounds a presented token; nothing longer is hashed.
const MaxTokenLength = 512

// tokenSyntax is RFC 6750's b64token: a bearer token has no spaces, so "Bearer Bearer x"
// can never parse as a token.
var tokenSyntax = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)

// ErrMalformed: the Authorization header is not exactly "Bearer <token>".
var ErrMalformed = errors.New(`authorization header is not exactly "Bearer <token>"`)

// ParseBearer returns the token of an Authorization header of exactly one case-sensitive
// "Bearer" scheme, one space and one token. Anything else (a lowercase scheme, extra or
// missing spaces, a repeated scheme, an empty token) is ErrMalformed.
func ParseBearer(header string) (string, error) {
	token, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || len(token) == 0 || len(token) > MaxTokenLength || !tokenSyntax.MatchString(token) {
		return "", ErrMalformed
	}
	return token, nil
}

// NewToken hashes a plain token (the local stack's BROKER_TRACK_TOKEN and
// BROKER_ADMIN_TOKEN). The plain value must itself be a valid bearer token of at least
// MinPlainLength characters, so a configured token can always be presented.
func NewToken(name string, scope Scope, plain string) (Token, error) {
	if _, err := ParseBearer("Bearer " + plain); err != nil {
		return Token{}, fmt.Errorf("token %s: must be 1-%d characters of A-Z a-z 0-9 . _ ~ + / - (optionally ending in =)", name, MaxTokenLength)
	}
	if len(plain) < MinPlainLength {
		return Token{}, fmt.Errorf("token %s: shorter than %d characters", name, MinPlainLength)
	}
	return Token{Name: name, Scope: scope, Digest: sha256.Sum256([]byte(plain))}, nil
}

// MinPlainLength is the shortest plain token accepted for hashing: short enough for any
// generated token, long enough to rule out "test" and "changeme".
const MinPlainLength = 16

// Match finds the token a presented plain token hashes to. It compares the digest with
// every configured token, without an early exit, so the time it takes says nothing about
// which entry (if any) matched.
func Match(tokens []Token, plain string) (Identity, bool) {
	digest := sha256.Sum256([]byte(plain))
	found := -1
	for i := range tokens {
		equal := subtle.ConstantTimeCompare(digest[:], tokens[i].Digest[:])
		found = subtle.ConstantTimeSelect(equal, i, found)
	}
	if found < 0 {
		return Identity{}, false
	}
	t := tokens[found]
	return Identity{Name: t.Name, Scope: t.Scope, MaxLiveAllocations: t.Limits.MaxLiveAllocations, digest: t.Digest}, true
}
