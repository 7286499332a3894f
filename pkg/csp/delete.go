package csp

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
)

// DeleteAccount deletes the sandbox account whose external ID is
// "identity/accounts/<uuid>" with DELETE /sandbox/accounts/<uuid>. 200, 204
// and 404 (already gone) all mean deleted and return nil. A 429 returns
// *RateLimitedError, other statuses *HTTPError.
func (c *Client) DeleteAccount(ctx context.Context, externalID string) error {
	uuid, err := accountUUID(externalID)
	if err != nil {
		return fmt.Errorf("csp: delete account: %w", err)
	}
	u := c.baseURL + "/sandbox/accounts/" + url.PathEscape(uuid)
	var status int
	err = c.call(ctx, "delete account", func(actx context.Context) error {
		resp, err := c.send(actx, http.MethodDelete, u)
		if err != nil {
			return err
		}
		defer drainClose(resp.Body)
		status = resp.StatusCode
		switch status {
		case http.StatusOK, http.StatusNoContent, http.StatusNotFound:
			return nil
		}
		return statusError(resp)
	})
	if err != nil {
		return fmt.Errorf("csp: delete account %s: %w", uuid, err)
	}
	c.log.Debug("csp account deleted", "uuid", uuid, "status", status, "already_gone", status == http.StatusNotFound)
	return nil
}

// accountUUID is the last path segment of an external ID. It must be a
// real segment: "." or ".." would be resolved away by proxies and turn the
// DELETE into one on a different path.
func accountUUID(externalID string) (string, error) {
	seg := externalID[strings.LastIndex(externalID, "/")+1:]
	switch {
	case seg == "":
		return "", fmt.Errorf("%w: %q has an empty last segment", ErrInvalidExternalID, externalID)
	case seg == "." || seg == "..":
		return "", fmt.Errorf("%w: %q ends in a dot segment", ErrInvalidExternalID, externalID)
	case strings.ContainsFunc(seg, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return "", fmt.Errorf("%w: %q contains whitespace or control characters", ErrInvalidExternalID, externalID)
	}
	return seg, nil
}
