package csp

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode"
)

// DeleteAccount deletes the sandbox account whose external ID is
// "identity/accounts/<uuid>" with DELETE /sandbox/accounts/<uuid>. 200 and
// 204 mean deleted and return nil. A 404 returns ErrAccountNotFound, which
// means "already gone" only once Probe has proved the endpoint right, since
// a wrong base URL answers 404 too; a 404 HTML page is ErrWrongEndpoint at
// once. A redirect returns ErrWrongEndpoint and 401 or 403 ErrTokenRejected
// (both wrapping the *HTTPError): the caller must stop, since no sandbox is
// at fault. A 429 returns *RateLimitedError, other statuses *HTTPError.
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
		case http.StatusOK, http.StatusNoContent:
			return nil
		case http.StatusNotFound:
			body, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
			if isHTML(resp, body) {
				return fmt.Errorf("%w: an HTML page answered 404: %q", ErrWrongEndpoint, sanitizeSnippet(body))
			}
			return nil
		}
		return answerError(resp)
	})
	if err != nil {
		return fmt.Errorf("csp: delete account %s: %w", uuid, err)
	}
	if status == http.StatusNotFound {
		return fmt.Errorf("csp: delete account %s: %w", uuid, ErrAccountNotFound)
	}
	c.log.Debug("csp account deleted", "uuid", uuid, "status", status)
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
