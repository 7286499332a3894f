package events

import (
	"regexp"
	"strings"
)

// The error classes an event may carry: what kind of failure a CSP delete (or the
// NIOSXaaS pre-delete step) had, and nothing of its text, which can hold whatever the
// CSP answered.
const (
	ErrorCSPServer            = "csp_server_error"
	ErrorCSPClient            = "csp_client_error"
	ErrorCSPTimeout           = "csp_timeout"
	ErrorCSPUnreachable       = "csp_unreachable"
	ErrorCSPMalformedResponse = "csp_malformed_response"
	ErrorInvalidExternalID    = "invalid_external_id"
	ErrorPreDeleteStep        = "pre_delete_step_failed"
	ErrorOther                = "other"
)

var httpStatus = regexp.MustCompile(`\bHTTP ([1-5])[0-9]{2}\b`)

// ErrorClassOf is the class of a sandbox's last_error, as cleanup books it: the text of
// the CSP client's error (pkg/csp's HTTPError, TransportError, ErrMalformedResponse,
// ErrInvalidExternalID) or "niosxaas: <reason>".
func ErrorClassOf(lastError string) string {
	switch {
	case lastError == "":
		return ""
	case strings.HasPrefix(lastError, "niosxaas: "):
		return ErrorPreDeleteStep
	case strings.Contains(lastError, "invalid external id"):
		return ErrorInvalidExternalID
	case strings.Contains(lastError, "malformed response"):
		return ErrorCSPMalformedResponse
	case strings.Contains(lastError, "transport: "):
		if strings.Contains(lastError, "deadline exceeded") || strings.Contains(lastError, "timeout") {
			return ErrorCSPTimeout
		}
		return ErrorCSPUnreachable
	}
	if m := httpStatus.FindStringSubmatch(lastError); m != nil {
		if m[1] == "5" {
			return ErrorCSPServer
		}
		return ErrorCSPClient
	}
	return ErrorOther
}
