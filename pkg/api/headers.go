package api

import (
	"strings"

	"github.com/sandbox-broker/broker/internal/printable"
)

// Request headers of the track routes.
const (
	HeaderSandboxID      = "X-Instruqt-Sandbox-ID" // the student (participant) ID
	HeaderLegacyTrackID  = "X-Track-ID"            // the student ID, as older clients send it
	HeaderTrackName      = "X-Instruqt-Track-ID"   // the lab slug, stored for analytics
	HeaderNamePrefix     = "X-Sandbox-Name-Prefix" // "name starts with" filter on allocation
	HeaderIdempotencyKey = "Idempotency-Key"
	HeaderAuthorization  = "Authorization"
)

// Bounds of the header values. They are generous for real IDs and slugs and keep
// anything larger out of the table and the logs.
const (
	maxIDLength   = 128 // student ID, idempotency key
	maxTextLength = 128 // lab slug, name prefix
)

// headerValue returns the value of a header across an event's single- and multi-value
// maps, with the name matched case-insensitively (clients and HTTP/2 vary the case). A
// header sent more than once must carry the same value every time: two different student
// IDs or tokens in one request are refused, never resolved by picking one.
func headerValue(single map[string]string, multi map[string][]string, name string) (value string, present bool, conflict bool) {
	see := func(v string) {
		if !present {
			value, present = v, true
		} else if v != value {
			conflict = true
		}
	}
	for k, vs := range multi {
		if strings.EqualFold(k, name) {
			for _, v := range vs {
				see(v)
			}
		}
	}
	for k, v := range single {
		if strings.EqualFold(k, name) {
			see(v)
		}
	}
	return value, present, conflict
}

// textHeader reads an optional text header: trimmed of spaces and tabs, at most max
// bytes of printable characters. An empty value counts as absent.
func textHeader(single map[string]string, multi map[string][]string, name string, max int) (string, *Error) {
	v, _, conflict := headerValue(single, multi, name)
	if conflict {
		return "", validationError("Header %s is sent more than once with different values", name)
	}
	v = strings.Trim(v, " \t")
	if v != "" && !printable.Text(v, max) {
		return "", validationError("Header %s must be at most %d printable characters", name, max)
	}
	return v, nil
}

// studentID reads the student ID: X-Instruqt-Sandbox-ID, or when that is absent or
// empty the legacy X-Track-ID.
func studentID(single map[string]string, multi map[string][]string) (string, *Error) {
	for _, name := range []string{HeaderSandboxID, HeaderLegacyTrackID} {
		v, err := textHeader(single, multi, name, maxIDLength)
		if err != nil || v != "" {
			return v, err
		}
	}
	return "", errMissingSandboxID
}
