package api

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/internal/printable"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// FuzzRequestParsing feeds arbitrary header values, path parameters and Authorization
// headers to the parsers the handlers and the authorizer use. Whatever the input, a
// parse either yields bounded, printable, trimmed values or a 400 in the envelope whose
// message repeats none of the input; a token is accepted only in the exact form
// "Bearer <token>".
func FuzzRequestParsing(f *testing.F) {
	f.Add("participant-1", "", "dns-lab", "lab", "", "2012224", "Bearer abc", false)
	f.Add("", "legacy-1", "", "", "key", "x", "Bearer Bearer abc", true)
	f.Add(" \t", "\x00", "\u200b", "la\tb", strings.Repeat("k", 200), "../1", "bearer abc", false)
	f.Add("a\xffb", "b", "Übung", "lab-", "", "", "Bearer  abc", true)
	f.Fuzz(func(t *testing.T, student, legacy, track, prefix, key, pathID, authorization string, duplicate bool) {
		inputs := []string{student, legacy, track, prefix, key, pathID}
		headers := map[string]string{
			HeaderSandboxID: student, HeaderLegacyTrackID: legacy, HeaderTrackName: track,
			HeaderNamePrefix: prefix, HeaderIdempotencyKey: key, HeaderAuthorization: authorization,
		}
		multi := map[string][]string{}
		for k, v := range headers {
			multi[k] = []string{v}
		}
		if duplicate {
			multi[strings.ToLower(HeaderSandboxID)] = []string{legacy}
		}
		ev := &events.APIGatewayProxyRequest{Headers: headers, MultiValueHeaders: multi, PathParameters: map[string]string{"id": pathID}}

		req, err := allocateRequest(ev)
		if err != nil {
			checkParseError(t, err, inputs)
		} else {
			for _, v := range []struct {
				value string
				max   int
			}{{req.Student, maxIDLength}, {req.TrackName, maxTextLength}, {req.NamePrefix, maxTextLength}, {req.IdempotencyKey, maxIDLength}} {
				if v.value != strings.Trim(v.value, " \t") || !(v.value == "" || printable.Text(v.value, v.max)) {
					t.Fatalf("accepted %q", v.value)
				}
			}
			if req.Student == "" || (req.Student != strings.Trim(student, " \t") && req.Student != strings.Trim(legacy, " \t")) {
				t.Fatalf("student %q from %q / %q", req.Student, student, legacy)
			}
			if duplicate && student != legacy {
				t.Fatalf("two different student IDs were accepted as %q", req.Student)
			}
		}

		id, who, err := sandboxRequest(ev)
		if err != nil {
			checkParseError(t, err, inputs)
		} else if !broker.ValidID(id) || id != pathID || who == "" {
			t.Fatalf("accepted sandbox %q for %q", id, who)
		}

		token, perr := auth.ParseBearer(authorization)
		if perr == nil && (authorization != "Bearer "+token || strings.ContainsAny(token, " \t") || token == "") {
			t.Fatalf("accepted token %q from %q", token, authorization)
		}
	})
}

func checkParseError(t *testing.T, err *Error, inputs []string) {
	t.Helper()
	if err.Status != 400 || (err.Code != CodeMissingSandboxID && err.Code != CodeValidation) {
		t.Fatalf("parse error %+v", err)
	}
	var env map[string]map[string]any
	if jsonErr := json.Unmarshal(Envelope("rid", *err), &env); jsonErr != nil || env["detail"]["code"] != err.Code {
		t.Fatalf("envelope %s", Envelope("rid", *err))
	}
	for _, in := range inputs {
		if len(in) >= 4 && strings.Contains(err.Message, in) && !strings.Contains(messageTemplates, in) {
			t.Fatalf("the message %q echoes the input %q", err.Message, in)
		}
	}
}

// messageTemplates is the fixed text parse errors are made of: an input that happens to
// be part of it is not an echo.
var messageTemplates = strings.Join([]string{
	errMissingSandboxID.Message,
	validationError("Header %s is sent more than once with different values", HeaderSandboxID).Message,
	"Header X-Instruqt-Sandbox-ID X-Track-ID X-Instruqt-Track-ID X-Sandbox-Name-Prefix Idempotency-Key must be at most 128 printable characters",
	"The sandbox ID must be 1-64 characters of A-Z a-z 0-9 - _",
}, " ")

// FuzzAdminQueryParsing feeds arbitrary query strings to the admin listing's parameters.
// Whatever the input, the parse is a 400 VALIDATION_ERROR in the envelope, or values
// within their bounds: a known status, a limit from 1 to 100, a printable prefix.
func FuzzAdminQueryParsing(f *testing.F) {
	f.Add("status", "available", "limit", "50", false)
	f.Add("limit", "101", "prefix", "lab-", true)
	f.Add("stauts", "stale", "limit", "-1", false)
	f.Add("prefix", "la\x00b", "status", "deleted", false)
	f.Add("limit", "1e2", "limit", "0x10", true)
	f.Fuzz(func(t *testing.T, name1, value1, name2, value2 string, repeat bool) {
		multi := map[string][]string{}
		multi[name1] = append(multi[name1], value1)
		multi[name2] = append(multi[name2], value2)
		if repeat {
			multi[name1] = append(multi[name1], value1)
		}
		ev := &events.APIGatewayProxyRequest{MultiValueQueryStringParameters: multi}
		q, err := readQuery(ev, "status", "prefix", "limit", "cursor")
		if err == nil {
			var status pool.Status
			if status, err = q.status("status"); err == nil && status != "" && !status.Valid() {
				t.Fatalf("accepted status %q", status)
			}
		}
		if err == nil {
			var prefix string
			if prefix, err = q.text("prefix", maxTextLength); err == nil && prefix != "" && !printable.Text(prefix, maxTextLength) {
				t.Fatalf("accepted prefix %q", prefix)
			}
		}
		if err == nil {
			var limit int
			if limit, err = q.integer("limit", defaultListLimit, 1, maxListLimit); err == nil && (limit < 1 || limit > maxListLimit) {
				t.Fatalf("accepted limit %d", limit)
			}
		}
		if err != nil {
			if err.Status != 400 || err.Code != CodeValidation || !json.Valid(Envelope("rid", *err)) {
				t.Fatalf("parse error %+v", err)
			}
			return
		}
		for name, values := range multi {
			if len(values) > 1 || !slices.Contains([]string{"status", "prefix", "limit", "cursor"}, name) && values[0] != "" {
				t.Fatalf("accepted %s=%q", name, values)
			}
		}
	})
}
