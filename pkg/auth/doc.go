// Package auth holds the broker's bearer tokens and the authorizer's decision: which
// client is calling and with which scope. Tokens are stored, loaded and compared only as
// SHA-256 digests; a plain token exists only in the request being checked.
package auth
