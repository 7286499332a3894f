package csp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Account is an active sandbox account of the CSP listing.
type Account struct {
	// SandboxID is csp_id as a decimal string, or the uuid of the id when the
	// CSP sent no csp_id: it becomes a path segment of the broker's API.
	SandboxID string
	// ExternalID is the CSP id, "identity/accounts/<uuid>".
	ExternalID string
	// Name is the CSP name, or "sandbox-<SandboxID>" when it has none.
	Name string
	// CreatedAt is zero when the CSP's created_at is missing or unparsable.
	CreatedAt     time.Time
	SFDCAccountID string
}

// maxPageBytes bounds a listing page in memory; 1000 accounts are far below.
const maxPageBytes = 16 << 20

// maxReasons is how many malformed-entry reasons are logged per listing.
const maxReasons = 5

// ListAccounts pages through GET /current_user/accounts to the end and
// returns the active sandbox accounts, deduplicated by SandboxID (offset
// paging shifts when accounts are created between pages). Malformed entries
// are skipped and logged rather than failing the listing; a failed page
// fails the whole listing, because a partial one would look like accounts
// disappearing. Each page is one breaker call.
func (c *Client) ListAccounts(ctx context.Context) ([]Account, error) {
	var (
		accounts []Account
		seen     = map[string]bool{}
		prev     []byte
		pages    int
		entries  int
		filtered int
		dupes    int
		reasons  []string
		bad      int
	)
	for offset := 0; ; offset += c.pageSize {
		results, raw, err := c.listPage(ctx, offset)
		if err != nil {
			return nil, fmt.Errorf("csp: list accounts (offset %d): %w", offset, err)
		}
		pages++
		entries += len(results)
		for i, r := range results {
			acct, keep, reason := parseAccount(r)
			switch {
			case reason != "":
				bad++
				if len(reasons) < maxReasons {
					reasons = append(reasons, fmt.Sprintf("offset %d: %s", offset+i, reason))
				}
			case !keep:
				filtered++
			case seen[acct.SandboxID]:
				dupes++
			default:
				seen[acct.SandboxID] = true
				accounts = append(accounts, acct)
			}
		}
		if len(results) < c.pageSize {
			break
		}
		// A server that ignores _offset would otherwise be paged forever.
		if bytes.Equal(raw, prev) {
			return nil, fmt.Errorf("csp: list accounts (offset %d): page repeats the previous one: %w", offset, ErrMalformedResponse)
		}
		prev = raw
	}
	if bad > 0 {
		c.log.Warn("csp listing skipped malformed entries", "count", bad, "examples", reasons)
	}
	c.log.Info("csp listing complete", "pages", pages, "entries", entries, "sandboxes", len(accounts),
		"filtered", filtered, "duplicates", dupes, "malformed", bad)
	return accounts, nil
}

func (c *Client) listPage(ctx context.Context, offset int) ([]json.RawMessage, []byte, error) {
	q := url.Values{"_limit": {strconv.Itoa(c.pageSize)}, "_offset": {strconv.Itoa(offset)}}
	u := c.baseURL + "/current_user/accounts?" + q.Encode()
	var (
		results []json.RawMessage
		raw     []byte
	)
	err := c.call(ctx, "list accounts", func(actx context.Context) error {
		resp, err := c.send(actx, http.MethodGet, u)
		if err != nil {
			return err
		}
		defer drainClose(resp.Body)
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return statusError(resp)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxPageBytes+1))
		if err != nil {
			return &TransportError{Err: err}
		}
		if len(body) > maxPageBytes {
			return fmt.Errorf("page larger than %d bytes: %w", maxPageBytes, ErrMalformedResponse)
		}
		results, raw, err = decodePage(body)
		return err
	})
	return results, raw, err
}

func decodePage(body []byte) ([]json.RawMessage, []byte, error) {
	var page struct {
		Results json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return nil, nil, fmt.Errorf("%w: not a JSON object (%v): %q", ErrMalformedResponse, err, sanitizeSnippet(body))
	}
	if page.Results == nil {
		return nil, nil, fmt.Errorf("%w: no \"results\" field: %q", ErrMalformedResponse, sanitizeSnippet(body))
	}
	var results []json.RawMessage
	if err := json.Unmarshal(page.Results, &results); err != nil {
		return nil, nil, fmt.Errorf("%w: \"results\" is not a list: %q", ErrMalformedResponse, sanitizeSnippet(page.Results))
	}
	return results, page.Results, nil
}

// parseAccount maps one listing entry. keep is false for accounts that are
// not active sandboxes; reason is set, and the entry skipped, when it cannot
// be mapped. It never fails on odd JSON: strings and numbers are accepted
// for one another, and nulls read as absent.
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
	uuid, err := accountUUID(id)
	if err != nil {
		return Account{}, false, fmt.Sprintf("id %q: %v", id, err)
	}
	acct = Account{
		SandboxID:     uuid,
		ExternalID:    id,
		Name:          strings.TrimSpace(jsonText(m["name"])),
		CreatedAt:     parseCreatedAt(jsonText(m["created_at"])),
		SFDCAccountID: strings.TrimSpace(jsonText(m["sfdc_account_id"])),
	}
	if rawID, ok := m["csp_id"]; ok && string(rawID) != "null" {
		n, err := strconv.ParseInt(strings.TrimSpace(jsonText(rawID)), 10, 64)
		if err != nil || n <= 0 {
			return Account{}, false, fmt.Sprintf("id %q: csp_id %.40q is not a positive integer", id, string(rawID))
		}
		acct.SandboxID = strconv.FormatInt(n, 10)
	}
	if acct.Name == "" {
		acct.Name = "sandbox-" + acct.SandboxID
	}
	return acct, true, ""
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
