package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/sandbox-broker/broker/pkg/api/wire"
)

// maxAnswer bounds what brokerctl reads of one answer; the largest, a page of 100
// sandboxes, is well under it.
const maxAnswer = 8 << 20

// client calls the admin API with an admin token.
type client struct {
	base  *url.URL
	token string
	http  *http.Client
}

// newClient checks the API URL: https with a host, or http to this machine only (the
// local stack): every request carries the admin token, which plain http would show to
// anyone on the way. A base path (an API Gateway stage, e.g.
// https://abc.execute-api.us-east-1.amazonaws.com/prod) is kept.
func newClient(rawURL, token string, h *http.Client) (*client, error) {
	u, err := url.Parse(strings.TrimRight(rawURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.User != nil {
		return nil, fmt.Errorf("%q is not an API URL like https://api.example.com or http://127.0.0.1:8080", rawURL)
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return nil, fmt.Errorf("%s: refusing to send the admin token over plain http to %s: use https "+
			"(http only to this machine: localhost, 127.0.0.0/8, ::1)", rawURL, u.Hostname())
	}
	// A redirect could take the token elsewhere, or to http: follow none.
	h.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{base: u, token: token, http: h}, nil
}

// loopback reports whether host names this machine: localhost, or an address of
// 127.0.0.0/8 or ::1.
func loopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// apiError is an error answer of the API: its envelope, or the bare status when the
// answer has none (a proxy in between).
type apiError struct {
	Status    int
	Code      string
	Message   string
	RequestID string
}

func (e *apiError) Error() string {
	msg := fmt.Sprintf("HTTP %d", e.Status)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RequestID != "" {
		msg += " (request_id " + e.RequestID + ")"
	}
	return msg
}

// call sends method path?query and returns the body of a 2xx answer; any other answer is
// an *apiError, a failure to reach the API says so with the URL.
func (c *client) call(ctx context.Context, method, path string, query url.Values) ([]byte, error) {
	return c.send(ctx, method, path, query, nil)
}

// send is call with a JSON request body (none when body is nil).
func (c *client) send(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, error) {
	answer, _, err := c.exchange(ctx, method, path, query, body)
	return answer, err
}

// exchange is send that also returns the headers of a 2xx answer.
func (c *client) exchange(ctx context.Context, method, path string, query url.Values, body []byte) ([]byte, http.Header, error) {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "brokerctl/1")
	resp, err := c.http.Do(req)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err // url.Error repeats the method and URL, said below
		}
		return nil, nil, fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 == 2 {
		return answer, resp.Header, nil
	}
	e := &apiError{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-ID")}
	var envelope wire.ErrorEnvelope
	if json.Unmarshal(answer, &envelope) == nil {
		e.Code, e.Message = envelope.Detail.Code, envelope.Detail.Message
		if envelope.Detail.RequestID != "" {
			e.RequestID = envelope.Detail.RequestID
		}
	}
	return nil, nil, e
}

// get calls and decodes the answer into T.
func get[T any](ctx context.Context, c *client, method, path string, query url.Values) (T, []byte, error) {
	v, body, _, err := getAt[T](ctx, c, method, path, query)
	return v, body, err
}

// getAt is get that also returns the broker's clock when it answered (its Date header,
// to the second): what a count read then was counted as of.
func getAt[T any](ctx context.Context, c *client, method, path string, query url.Values) (T, []byte, time.Time, error) {
	var v T
	body, header, err := c.exchange(ctx, method, path, query, nil)
	if err != nil {
		return v, nil, time.Time{}, err
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return v, nil, time.Time{}, fmt.Errorf("%s %s: the answer is not the expected JSON: %w", method, path, err)
	}
	at, _ := http.ParseTime(header.Get("Date")) // the zero time without one: the callers check
	return v, body, at, nil
}
