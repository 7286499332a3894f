package csp

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Account is an active sandbox account of the CSP listing.
type Account struct {
	// SandboxID is csp_id as a decimal string, or the uuid of the id when the
	// CSP sent no csp_id: it becomes a path segment of the broker's API.
	SandboxID string
	// HasCSPID reports whether the CSP sent a csp_id; when it did not,
	// SandboxID is the uuid, and a later listing may show the same account
	// under its csp_id.
	HasCSPID bool
	// UUID is the uuid of the id, lower-cased: the one key that names the
	// account whether or not the CSP sent its csp_id. It is the value
	// pool.AccountUUID gives the ExternalID, which keys the pool's records.
	UUID string
	// ExternalID is the CSP id, "identity/accounts/<uuid>".
	ExternalID string
	// Name is the CSP name, or "sandbox-<SandboxID>" when it has none.
	Name string
	// CreatedAt is zero when the CSP's created_at is missing or unparsable.
	CreatedAt     time.Time
	SFDCAccountID string
}

// What a listing entry may hold. Its fields end up in records, API answers, logs and the
// lab's shell: the upstream client writes the name unquoted into the sandbox_env.sh that
// the lab sources, and the ids and sfdc_account_id into files beside it. So the id must be
// exactly an account id, and every other text field is a short word of safe characters
// (docs/architecture.md §6); an entry that is not is skipped, never stored.
const (
	// accountIDPrefix is the whole of an account id but its uuid.
	accountIDPrefix = "identity/accounts/"
	// maxNameBytes bounds a sandbox name: names are shown to students and stored in every
	// record and history entry, and no real CSP name comes near.
	maxNameBytes = 256
	// maxSFDCBytes bounds sfdc_account_id: a Salesforce id has 15 or 18 characters.
	maxSFDCBytes = 64
	// safeCharacters says what safeWord accepts, for reasons and docs.
	safeCharacters = "a letter or digit first, then letters, digits, '.', '_' and '-'"
	// maxQuotedID bounds an id quoted in a reason; a longer one is shortened.
	maxQuotedID = 80
)

// safeWord holds a text field to safeCharacters: nothing a shell, a glob or a word split
// acts on, and no leading '-' or '.'.
var safeWord = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// parseAccount maps one listing entry. keep is false for accounts that are
// not active sandboxes; reason is set, and the entry skipped, when it cannot
// be mapped or breaks the bounds above. It never fails on odd JSON: strings
// and numbers are accepted for one another, and nulls read as absent. Reasons
// quote ids shortened (quotedID) and never quote names or other fields: they
// end up in logs and run summaries.
func parseAccount(raw json.RawMessage) (acct Account, keep bool, reason string) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return Account{}, false, "entry is not a JSON object"
	}
	if jsonText(m["account_type"]) != "sandbox" || jsonText(m["state"]) != "active" {
		return Account{}, false, ""
	}
	id := strings.TrimSpace(jsonText(m["id"]))
	if id == "" {
		return Account{}, false, "active sandbox without an id"
	}
	// The uuid keys the account for life and names it in deletes: anything
	// else is not an account id the broker can vouch for.
	uuid, ok := strings.CutPrefix(id, accountIDPrefix)
	if !ok || !isUUID(uuid) {
		return Account{}, false, fmt.Sprintf("id %s is not %s<uuid>", quotedID(id), accountIDPrefix)
	}
	name := strings.TrimSpace(jsonText(m["name"]))
	sfdc := strings.TrimSpace(jsonText(m["sfdc_account_id"]))
	for _, f := range []struct {
		field, value string
		maxBytes     int
	}{{"name", name, maxNameBytes}, {"sfdc_account_id", sfdc, maxSFDCBytes}} {
		switch {
		case len(f.value) > f.maxBytes:
			return Account{}, false, fmt.Sprintf("id %q: %s is %d bytes (at most %d)", id, f.field, len(f.value), f.maxBytes)
		case f.value != "" && !safeWord.MatchString(f.value):
			return Account{}, false, fmt.Sprintf("id %q: %s is not %s", id, f.field, safeCharacters)
		}
	}
	acct = Account{
		SandboxID:     uuid,
		UUID:          strings.ToLower(uuid),
		ExternalID:    id,
		Name:          name,
		CreatedAt:     parseCreatedAt(jsonText(m["created_at"])),
		SFDCAccountID: sfdc,
	}
	if rawID, ok := m["csp_id"]; ok && string(rawID) != "null" {
		n, err := strconv.ParseInt(strings.TrimSpace(jsonText(rawID)), 10, 64)
		if err != nil || n <= 0 {
			return Account{}, false, fmt.Sprintf("id %q: csp_id %.40q is not a positive integer", id, string(rawID))
		}
		acct.SandboxID, acct.HasCSPID = strconv.FormatInt(n, 10), true
	}
	if acct.Name == "" {
		acct.Name = "sandbox-" + acct.SandboxID
	}
	return acct, true, ""
}

// quotedID quotes an id that failed its check, shortened to its first and last
// characters when long: the end holds the uuid an operator looks for, and a hostile id
// (kilobytes of junk before the uuid) is never echoed whole.
func quotedID(id string) string {
	if len(id) <= maxQuotedID {
		return fmt.Sprintf("%q", id)
	}
	const keep = maxQuotedID / 2
	return fmt.Sprintf("%q…%q (%d bytes)", strings.ToValidUTF8(id[:keep], ""), strings.ToValidUTF8(id[len(id)-keep:], ""), len(id))
}

// isUUID reports whether s is a uuid in its 8-4-4-4-12 hexadecimal form,
// of any version and either case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// jsonText reads a JSON string, or the literal of a JSON number, and ""
// for anything else.
func jsonText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// createdAtLayouts are the ISO-8601 shapes seen from Python and Go services.
// time.Parse accepts a fractional second after the seconds field even when
// the layout has none, so each layout covers both.
var createdAtLayouts = []string{
	time.RFC3339,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05Z0700",
	"2006-01-02 15:04:05",
	"2006-01-02",
}

// parseCreatedAt returns the time in UTC; zone-less values are taken as UTC.
func parseCreatedAt(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	for _, layout := range createdAtLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
