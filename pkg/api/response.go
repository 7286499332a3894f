package api

import (
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
)

// HeaderRequestID carries the API Gateway request ID on every response; error bodies
// repeat it as request_id.
const HeaderRequestID = "X-Request-ID"

// SecurityHeaders are on every response of the API (docs/architecture.md §3), errors included.
var SecurityHeaders = map[string]string{
	"X-Content-Type-Options":    "nosniff",
	"Cache-Control":             "no-store",
	"Strict-Transport-Security": "max-age=31536000; includeSubDomains",
	"X-Frame-Options":           "DENY",
	"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
	"Referrer-Policy":           "no-referrer",
}

// ResponseHeaders are the headers of every response: JSON content, the request ID and the
// security headers.
func ResponseHeaders(requestID string) map[string]string {
	h := make(map[string]string, len(SecurityHeaders)+2)
	for k, v := range SecurityHeaders {
		h[k] = v
	}
	h["Content-Type"] = "application/json"
	h[HeaderRequestID] = requestID
	return h
}

// ErrorResponse is the complete answer for e: the envelope, the common headers and
// Retry-After when e has one.
func ErrorResponse(requestID string, e Error) events.APIGatewayProxyResponse {
	h := ResponseHeaders(requestID)
	if e.RetryAfter > 0 {
		h["Retry-After"] = strconv.Itoa(e.RetryAfter)
	}
	return events.APIGatewayProxyResponse{StatusCode: e.Status, Headers: h, Body: string(Envelope(requestID, e))}
}

// CORS answers browsers from the configured origins only. With no origins configured it
// adds nothing, and a browser on another site cannot read any response.
type CORS struct {
	origins []string
}

// NewCORS allows origins ("*" alone allows every origin).
func NewCORS(origins []string) CORS { return CORS{origins: origins} }

// The CORS answer of the broker, written once: the handlers and the local gateway use it
// through CORS, and the stack's preflight methods and gateway responses (infra) send the
// same values.
var (
	CORSAllowHeaders  = strings.Join([]string{HeaderAuthorization, "Content-Type", HeaderSandboxID, HeaderLegacyTrackID, HeaderTrackName, HeaderNamePrefix, HeaderIdempotencyKey}, ", ")
	CORSExposeHeaders = strings.Join([]string{HeaderRequestID, "Retry-After", "Location"}, ", ")
)

// CORSMaxAge is how long, in seconds, a browser may cache a preflight answer.
const CORSMaxAge = "3600"

// allowed returns the Access-Control-Allow-Origin value for origin, or "".
func (c CORS) allowed(origin string) string {
	if origin == "" {
		return ""
	}
	for _, o := range c.origins {
		switch o {
		case "*":
			return "*"
		case origin:
			return origin
		}
	}
	return ""
}

// Headers adds the CORS headers of an ordinary response to h, for a request from origin.
func (c CORS) Headers(h map[string]string, origin string) {
	if allow := c.allowed(origin); allow != "" {
		h["Access-Control-Allow-Origin"] = allow
		h["Access-Control-Expose-Headers"] = CORSExposeHeaders
		h["Vary"] = "Origin"
	}
}

// Preflight adds the headers of a CORS preflight answer for a resource with methods; it
// reports false when origin is not allowed (the preflight then fails in the browser).
func (c CORS) Preflight(h map[string]string, origin string, methods []string) bool {
	allow := c.allowed(origin)
	if allow == "" {
		return false
	}
	h["Access-Control-Allow-Origin"] = allow
	h["Access-Control-Allow-Methods"] = strings.Join(methods, ", ")
	h["Access-Control-Allow-Headers"] = CORSAllowHeaders
	h["Access-Control-Max-Age"] = CORSMaxAge
	h["Vary"] = "Origin"
	return true
}
