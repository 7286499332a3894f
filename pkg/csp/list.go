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
)

// Listing is one complete read of the CSP listing.
type Listing struct {
	// Accounts are the active sandboxes, deduplicated by SandboxID, in
	// listing order.
	Accounts []Account
	// Malformed counts the entries skipped because they cannot be mapped;
	// MalformedSamples holds the reasons of the first few (maxSamples), for
	// the run summary.
	Malformed        int
	MalformedSamples []string
	// Filtered counts the entries that are not active sandboxes, Duplicates
	// the entries of an account already listed.
	Filtered   int
	Duplicates int
	// Requests is how many listing requests were answered, the probe of a
	// repeated first page included.
	Requests int
}

// maxSamples is how many malformed-entry reasons a Listing carries.
const maxSamples = 5

// minPageBytes bounds a listing page in memory. A CSP that ignores paging
// sends the whole listing in one page, so the bound also follows
// MaxAccounts at entryBytesBudget per entry, some three times a real entry.
const (
	minPageBytes     = 16 << 20
	entryBytesBudget = 1 << 10
)

// ListAccounts reads GET /current_user/accounts to the end and returns the
// active sandbox accounts. Nothing is known about how the real CSP pages
// (docs/architecture.md §6), so the rules below make the listing complete
// however it does, and fail it rather than truncate:
//
//   - The offset advances by the entries received, not by _limit: a CSP that
//     caps pages below the _limit asked for would otherwise skip the entries
//     between its cap and _limit on every page.
//   - Only an empty page ends the listing. A short page is not the end, for
//     the same capping CSP; the price is one empty request per listing.
//   - A later page that starts with the first page's first entry is the
//     signature of a CSP that ignores paging and sent everything at once, as
//     the upstream client, which sends neither parameter, expects. (It is
//     compared by its first entry, not whole, because the listing may change
//     between two requests.) A CSP that honours _limit and ignores _offset
//     answers the same way, with only its first page. One probe with another
//     _limit tells them apart: an answer that ignores that _limit too means
//     the first page was the whole listing; otherwise the CSP cannot be
//     paged, which fails with ErrPageRepeated.
//   - A third or later page that starts over, or any page identical to the
//     previous one, fails with ErrPageRepeated: no paging explains it, and
//     paging on would loop.
//   - More than MaxAccounts entries (of any type) fail with
//     ErrTooManyAccounts, which also bounds a CSP that serves ever new
//     pages: every page that does not end the listing holds an entry.
//   - Accounts are deduplicated by SandboxID, the first occurrence winning:
//     offset paging shifts when accounts are created between two pages.
//
// Malformed entries are skipped and counted in the Listing rather than
// failing it. A failed page fails the whole listing, because a partial one
// would look like accounts disappearing. Each request is one breaker call.
func (c *Client) ListAccounts(ctx context.Context) (Listing, error) {
	var (
		l          Listing
		seen       = map[string]bool{}
		firstEntry []byte
		firstLen   int
		prev       []byte
		entries    int
	)
	for offset, n := 0, 0; ; n++ {
		results, raw, err := c.listPage(ctx, c.pageSize, offset)
		if err != nil {
			return Listing{}, fmt.Errorf("csp: list accounts (offset %d): %w", offset, err)
		}
		l.Requests++
		if len(results) == 0 {
			break
		}
		if n > 0 && bytes.Equal(results[0], firstEntry) {
			if n > 1 {
				return Listing{}, fmt.Errorf("csp: list accounts (offset %d): the page starts over with the first entry: %w", offset, ErrPageRepeated)
			}
			whole, err := c.firstPageIsWhole(ctx, firstLen)
			l.Requests++
			if err != nil {
				return Listing{}, fmt.Errorf("csp: list accounts (probing whether the CSP pages): %w", err)
			}
			if whole {
				break
			}
			return Listing{}, fmt.Errorf("csp: list accounts (offset %d): the CSP honours _limit but answers every _offset with the first page, so the listing cannot be completed: %w", offset, ErrPageRepeated)
		}
		if n > 1 && bytes.Equal(raw, prev) {
			return Listing{}, fmt.Errorf("csp: list accounts (offset %d): the page repeats the previous one: %w", offset, ErrPageRepeated)
		}
		if entries += len(results); entries > c.maxAccounts {
			return Listing{}, fmt.Errorf("csp: list accounts: more than %d entries: %w", c.maxAccounts, ErrTooManyAccounts)
		}
		for i, r := range results {
			acct, keep, reason := parseAccount(r)
			switch {
			case reason != "":
				l.Malformed++
				if len(l.MalformedSamples) < maxSamples {
					l.MalformedSamples = append(l.MalformedSamples, fmt.Sprintf("entry %d: %s", offset+i, reason))
				}
			case !keep:
				l.Filtered++
			case seen[acct.SandboxID]:
				l.Duplicates++
			default:
				seen[acct.SandboxID] = true
				l.Accounts = append(l.Accounts, acct)
			}
		}
		if n == 0 {
			firstEntry, firstLen = results[0], len(results)
		}
		prev = raw
		offset += len(results)
	}
	if l.Malformed > 0 {
		c.log.Warn("csp listing skipped malformed entries", "count", l.Malformed, "examples", l.MalformedSamples)
	}
	c.log.Info("csp listing complete", "requests", l.Requests, "entries", entries, "sandboxes", len(l.Accounts),
		"filtered", l.Filtered, "duplicates", l.Duplicates, "malformed", l.Malformed)
	return l, nil
}

// firstPageIsWhole asks for the first page again with another _limit and
// reports whether the CSP ignores _limit as well as _offset, so that its
// first page held every entry. It asks for 1 entry when the first page held
// more; when it held one, it asks for 2, which only a CSP with a single
// entry to give answers with fewer.
func (c *Client) firstPageIsWhole(ctx context.Context, firstLen int) (bool, error) {
	if firstLen >= 2 {
		results, _, err := c.listPage(ctx, 1, 0)
		return len(results) > 1, err
	}
	results, _, err := c.listPage(ctx, 2, 0)
	return len(results) < 2, err
}

// Probe makes one cheap authenticated listing call (_limit=1) and returns
// nil only when the answer is a CSP listing. A caller must not take a
// delete's 404 for "deleted" before Probe has passed: a wrong base URL
// answers 404 too. ErrWrongEndpoint (404, 405, 410, a redirect, an HTML
// page) and ErrTokenRejected (401, 403) say the configuration is wrong;
// any other error is the CSP failing, as for any call.
func (c *Client) Probe(ctx context.Context) error {
	if _, _, err := c.listPage(ctx, 1, 0); err != nil {
		return fmt.Errorf("csp: probe: %w", err)
	}
	return nil
}

func (c *Client) listPage(ctx context.Context, limit, offset int) ([]json.RawMessage, []byte, error) {
	q := url.Values{"_limit": {strconv.Itoa(limit)}, "_offset": {strconv.Itoa(offset)}}
	u := c.baseURL + "/current_user/accounts?" + q.Encode()
	maxBytes := max(minPageBytes, c.maxAccounts*entryBytesBudget)
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
		switch {
		case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed || resp.StatusCode == http.StatusGone:
			// The listing always exists; only a wrong base URL or path lacks it.
			return fmt.Errorf("%w: %w", ErrWrongEndpoint, statusError(resp))
		case resp.StatusCode < 200 || resp.StatusCode > 299:
			return answerError(resp)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, int64(maxBytes)+1))
		if err != nil {
			return &TransportError{Err: err}
		}
		if len(body) > maxBytes {
			return fmt.Errorf("page larger than %d bytes: %w", maxBytes, ErrMalformedResponse)
		}
		if isHTML(resp, body) {
			return fmt.Errorf("%w: an HTML page answered the listing: %q", ErrWrongEndpoint, sanitizeSnippet(body))
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
