package csp

import "github.com/sandbox-broker/broker/pkg/breaker"

// The Client's circuit breaker is a pkg/breaker.Breaker; these names keep the CSP's
// configuration and state readable from the client's own package.
type (
	BreakerOptions = breaker.Options
	BreakerState   = breaker.State
)

const (
	BreakerClosed   = breaker.Closed
	BreakerOpen     = breaker.Open
	BreakerHalfOpen = breaker.HalfOpen
)
