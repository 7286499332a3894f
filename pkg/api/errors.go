package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/broker"
)

// Error codes of the envelope. Clients parse detail.code; the README lists them all.
const (
	CodeMissingSandboxID       = "MISSING_SANDBOX_ID"
	CodeValidation             = "VALIDATION_ERROR"
	CodeUnauthorized           = "UNAUTHORIZED"
	CodeForbidden              = "FORBIDDEN"
	CodeSandboxNotFound        = "SANDBOX_NOT_FOUND"
	CodeNotSandboxOwner        = "NOT_SANDBOX_OWNER"
	CodeNoSandboxes            = "NO_SANDBOXES_AVAILABLE"
	CodeServiceUnavailable     = "SERVICE_UNAVAILABLE"
	CodeNotFound               = "NOT_FOUND"
	CodeMethodNotAllowed       = "METHOD_NOT_ALLOWED"
	CodePayloadTooLarge        = "PAYLOAD_TOO_LARGE"
	CodeRateLimited            = "RATE_LIMIT_EXCEEDED"
	CodeBadRequest             = "BAD_REQUEST"
	CodeInternal               = "INTERNAL_ERROR"
	CodeInvalidCursor          = "INVALID_CURSOR"
	CodeWrongStatus            = "WRONG_STATUS"
	CodeJobRunning             = "JOB_RUNNING"
	CodeJobNotFound            = "JOB_NOT_FOUND"
	CodeExtensionLimit         = "EXTENSION_LIMIT"
	CodeAllocationLapsed       = "ALLOCATION_LAPSED"
	CodePoolDraining           = "POOL_DRAINING"
	CodeStudentLimit           = "STUDENT_LIMIT_REACHED"
	CodeClientLimit            = "CLIENT_LIMIT_REACHED"
	CodePoolChanged            = "POOL_CHANGED"
	CodeProfileNotFound        = "PROFILE_NOT_FOUND"
	CodeReservationNotFound    = "RESERVATION_NOT_FOUND"
	CodeReservationUncoverable = "RESERVATION_UNCOVERABLE"
)

// Retry-After values, in seconds.
const (
	// retryNoSandbox: the pool refills on the next sync (every 10 minutes); upstream
	// clients already expect 30.
	retryNoSandbox = 30
	// retryUnavailable: throttling and contention pass within seconds.
	retryUnavailable = 5
	// retryClientLimit: the client's other students release theirs over minutes, as the
	// pool refills.
	retryClientLimit = 30
	// retryDraining: a drain lasts minutes (a maintenance window); asking every minute is
	// enough and keeps a class of waiting scripts off the API.
	retryDraining = 60
)

// Error is an error answer: its status and the fields of the envelope. Message is fixed
// text written here: it never carries a student ID, a token or an internal error.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter, when positive, is sent as retry_after and as the Retry-After header.
	RetryAfter int
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// Envelope is the body (wire.ErrorEnvelope) of every error answer of the API, from a
// handler, the authorizer's gateway responses or the gateway itself. Every error body is
// made here and nowhere else.
func Envelope(requestID string, e Error) []byte {
	body, _ := json.Marshal(wire.ErrorEnvelope{Detail: wire.ErrorDetail{ // strings and an int: Marshal cannot fail
		Code: e.Code, Message: e.Message, RequestID: requestID, RetryAfter: e.RetryAfter,
	}})
	return body
}

var (
	errMissingSandboxID    = &Error{http.StatusBadRequest, CodeMissingSandboxID, "Either X-Instruqt-Sandbox-ID or X-Track-ID header is required", 0}
	errSandboxNotFound     = &Error{http.StatusNotFound, CodeSandboxNotFound, "Sandbox not found", 0}
	errNotSandboxOwner     = &Error{http.StatusForbidden, CodeNotSandboxOwner, "Sandbox is not allocated to this student", 0}
	errNoSandboxes         = &Error{http.StatusConflict, CodeNoSandboxes, "No sandboxes available in pool", retryNoSandbox}
	errUnavailable         = &Error{http.StatusServiceUnavailable, CodeServiceUnavailable, "The service is temporarily unable to handle the request; retry later", retryUnavailable}
	errNotReady            = &Error{http.StatusServiceUnavailable, CodeServiceUnavailable, "Not ready: the pool table does not answer", retryUnavailable}
	errForbidden           = &Error{http.StatusForbidden, CodeForbidden, "This token may not call this route", 0}
	errNotFound            = &Error{http.StatusNotFound, CodeNotFound, "No such route", 0}
	errMethodNotAllowed    = &Error{http.StatusMethodNotAllowed, CodeMethodNotAllowed, "This route does not accept this method", 0}
	errPayloadTooLarge     = &Error{http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "The request body is too large", 0}
	errInternal            = &Error{http.StatusInternalServerError, CodeInternal, "An unexpected error occurred", 0}
	errInvalidCursor       = &Error{http.StatusBadRequest, CodeInvalidCursor, "The cursor was not handed out by this listing (same filters); start again without it", 0}
	errJobNotFound         = &Error{http.StatusNotFound, CodeJobNotFound, "No job of that name", 0}
	errExtensionLimit      = &Error{http.StatusConflict, CodeExtensionLimit, "The lab already runs to its longest duration (its profile's max_duration_minutes, else MAX_LAB_DURATION_HOURS, after allocation)", 0}
	errPoolDraining        = &Error{http.StatusServiceUnavailable, CodePoolDraining, "New allocations are paused by an operator (drain); retry later", retryDraining}
	errNotExtendable       = &Error{http.StatusConflict, CodeWrongStatus, "Only an allocated sandbox can be extended", 0}
	errLapsed              = &Error{http.StatusConflict, CodeAllocationLapsed, "The allocation is past its expiry and grace period and is being taken back; it can no longer be extended", 0}
	errStudentLimit        = &Error{http.StatusConflict, CodeStudentLimit, "The student already holds its maximum of live sandboxes (STUDENT_MAX_LIVE_ALLOCATIONS); release one first", 0}
	errReservationNotFound = &Error{http.StatusNotFound, CodeReservationNotFound, "No reservation has that ID", 0}
	errProfileNotFound     = &Error{http.StatusNotFound, CodeProfileNotFound, "No profile has that lab and prefix", 0}
	errClientLimit         = &Error{http.StatusConflict, CodeClientLimit, "This client already holds its maximum of live sandboxes (max_live_allocations); retry after one is released", retryClientLimit}
)

func validationError(format string, args ...any) *Error {
	return &Error{http.StatusBadRequest, CodeValidation, fmt.Sprintf(format, args...), 0}
}

// toError maps a use-case error to its answer. Anything that is not a decision about the
// request (throttling, contention, a DynamoDB failure) is a 503 to retry: the request may
// well succeed in a few seconds, and the cause goes to the log only.
func toError(err error) *Error {
	var apiErr *Error
	var changed *broker.PoolChangedError
	var noSandbox *broker.NoSandboxError
	switch {
	case errors.As(err, &apiErr):
		return apiErr
	case errors.As(err, &noSandbox):
		// The lab profile's message: operator text, validated printable and bounded.
		return &Error{http.StatusConflict, CodeNoSandboxes, noSandbox.Message, retryNoSandbox}
	case errors.As(err, &changed):
		return poolChanged(changed)
	case errors.Is(err, broker.ErrNoSandbox):
		return errNoSandboxes
	case errors.Is(err, broker.ErrNotFound):
		return errSandboxNotFound
	case errors.Is(err, broker.ErrNotOwner):
		return errNotSandboxOwner
	case errors.Is(err, broker.ErrInvalidCursor):
		return errInvalidCursor
	case errors.Is(err, broker.ErrDraining):
		return errPoolDraining
	case errors.Is(err, broker.ErrExtensionLimit):
		return errExtensionLimit
	case errors.Is(err, broker.ErrLapsed):
		return errLapsed
	case errors.Is(err, broker.ErrStudentLimit):
		return errStudentLimit
	case errors.Is(err, broker.ErrClientLimit):
		return errClientLimit
	default:
		return errUnavailable
	}
}

// poolChanged refuses a bulk call that finds another number of records than the operator
// confirmed (and retired none), with both numbers.
func poolChanged(e *broker.PoolChangedError) *Error {
	return &Error{http.StatusConflict, CodePoolChanged, fmt.Sprintf("You confirmed %d %s record(s), in that status since %s or earlier; "+
		"%d match now. Nothing was deleted: look at the pool again and confirm what it holds now",
		e.Confirmed.Count, e.Status, time.Unix(e.Confirmed.Before, 0).UTC().Format(time.RFC3339), e.Matching), 0}
}

// GatewayError is an answer API Gateway gives itself, as a gateway response of type
// ResponseType, instead of calling a function. The CDK stack configures each with the
// Envelope body (request_id "$context.requestId") and the Headers below; the local
// gateway emulator answers with the same.
type GatewayError struct {
	ResponseType string
	Error
}

// GatewayErrors are the gateway responses the stack customises. A Status of 0 keeps the
// status API Gateway chose.
var GatewayErrors = []GatewayError{
	// No or a bad token: the authorizer answered "Unauthorized", or the Authorization
	// header (the identity source) was missing, in which case the authorizer is not called.
	{"UNAUTHORIZED", Error{http.StatusUnauthorized, CodeUnauthorized, "Missing or invalid bearer token", 0}},
	// The authorizer's policy does not cover this route (a track token on an admin route).
	{"ACCESS_DENIED", Error{http.StatusForbidden, CodeForbidden, "This token may not call this route", 0}},
	// API Gateway's answer for a path no resource matches.
	{"MISSING_AUTHENTICATION_TOKEN", Error{http.StatusNotFound, CodeNotFound, "No such route", 0}},
	{"REQUEST_TOO_LARGE", Error{http.StatusRequestEntityTooLarge, CodePayloadTooLarge, "The request is too large", 0}},
	{"THROTTLED", Error{http.StatusTooManyRequests, CodeRateLimited, "Too many requests", 1}},
	{"AUTHORIZER_FAILURE", Error{http.StatusInternalServerError, CodeInternal, "An unexpected error occurred", 0}},
	{"AUTHORIZER_CONFIGURATION_ERROR", Error{http.StatusInternalServerError, CodeInternal, "An unexpected error occurred", 0}},
	{"DEFAULT_4XX", Error{0, CodeBadRequest, "The request was refused", 0}},
	{"DEFAULT_5XX", Error{0, CodeInternal, "An unexpected error occurred", 0}},
}

// MethodNotAllowed is what a method the table does not define on a known resource
// answers. API Gateway would say MISSING_AUTHENTICATION_TOKEN (403) for it; the CDK stack
// adds an ANY method with a mock integration to each resource of the table that answers
// this instead (the methods of the table take precedence over ANY).
var MethodNotAllowed = *errMethodNotAllowed

// Gateway returns the gateway error of a response type.
func Gateway(responseType string) (Error, bool) {
	for _, g := range GatewayErrors {
		if g.ResponseType == responseType {
			return g.Error, true
		}
	}
	return Error{}, false
}
