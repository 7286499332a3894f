// Package csp is the broker's client for the ENG CSP API: listing the
// sandbox accounts of the current user and deleting them. Every call shares
// one HTTP connection pool, one retry policy and one circuit breaker, so a
// CSP outage costs a bounded amount of time and is visible as a state.
package csp
