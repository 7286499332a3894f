package auth

import (
	"context"
	"fmt"
)

// Outcome is the authorizer's answer.
type Outcome string

const (
	// Allowed: a known token whose scope covers the route.
	Allowed Outcome = "allowed"
	// Unauthorized (401): no token, a malformed header, an unknown token, or no tokens
	// configured at all.
	Unauthorized Outcome = "unauthorized"
	// Forbidden (403): a known token whose scope does not cover the route.
	Forbidden Outcome = "forbidden"
)

// Decision is the outcome with who asked and why, for the log. Reason never contains the
// token.
type Decision struct {
	Outcome  Outcome
	Identity Identity
	Reason   string
}

// ReasonNoTokens is logged when no token is configured, so every request is denied.
const ReasonNoTokens = "no tokens are configured: every request is denied"

// Decide checks the Authorization header against tokens for a route that requires need.
func Decide(tokens []Token, authorization string, need Scope) Decision {
	if len(tokens) == 0 {
		return Decision{Outcome: Unauthorized, Reason: ReasonNoTokens}
	}
	plain, err := ParseBearer(authorization)
	if err != nil {
		return Decision{Outcome: Unauthorized, Reason: err.Error()}
	}
	id, ok := Match(tokens, plain)
	if !ok {
		return Decision{Outcome: Unauthorized, Reason: "the token matches no configured token"}
	}
	if !id.Scope.Permits(need) {
		return Decision{Outcome: Forbidden, Identity: id, Reason: fmt.Sprintf("a %s token may not call a %s route", id.Scope, need)}
	}
	return Decision{Outcome: Allowed, Identity: id}
}

// Source supplies the current tokens.
type Source interface {
	Tokens(ctx context.Context) []Token
}

// Static is a fixed token set (the local stack's tokens, hashed at start).
type Static []Token

// Tokens returns the set.
func (s Static) Tokens(context.Context) []Token { return s }
