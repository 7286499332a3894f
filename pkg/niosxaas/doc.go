// Package niosxaas is the cleanup step the upstream runs before it deletes a sandbox's
// CSP account: sign in to NIOSXaaS, switch to the sandbox's account, list its universal
// services and delete those with the configured name (docs/upstream.md D20). Unlike the
// upstream it signs in once per session lifetime, not once per sandbox, has its own
// circuit breaker, and never lets a credential or a token reach a log or an error.
package niosxaas
