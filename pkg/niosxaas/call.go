package niosxaas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/sandbox-broker/broker/pkg/breaker"
)

// statusError is an answer with a status the call does not accept. It carries no body:
// upstream error bodies are HTML pages, and a sign-in answer may hold a token.
type statusError struct {
	Op     string
	Status int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s: HTTP %d %s", e.Op, e.Status, http.StatusText(e.Status))
}

// errMalformed marks a 2xx answer that is not the JSON the call expects.
var errMalformed = errors.New("malformed response")

// maxBody bounds what is read of an answer.
const maxBody = 4 << 20

// request is one HTTP call to NIOSXaaS.
type request struct {
	op     string // names the call in errors: "sign-in", "account switch", ...
	method string
	path   string
	bearer string // empty for the sign-in
	body   any
	// accept lists the statuses that are success (default 200).
	accept []int
	// out, if not nil, receives the JSON of a 200 answer.
	out any
}

// do runs r through the breaker, bounded by the client's per-call timeout. Answers that
// prove NIOSXaaS is up (2xx, 4xx) are breaker successes; 5xx, malformed answers,
// timeouts of the call and transport errors are failures; the caller's context ending
// (its cancellation, or its deadline: a cleanup run stopping) is neither.
func (c *Client) do(ctx context.Context, r request) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done, err := c.breaker.Allow()
	if err != nil {
		return fmt.Errorf("%s: %w", r.op, err)
	}
	err = c.send(ctx, r)
	done(classify(ctx, err))
	return err
}

func classify(ctx context.Context, err error) breaker.Outcome {
	var se *statusError
	switch {
	case err == nil:
		return breaker.Success
	case ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)):
		// The caller's context ended: the call was cut by its owner, whatever NIOSXaaS
		// would have answered. Only the per-call timeout, within a live caller's
		// context, blames NIOSXaaS.
		return breaker.Ignored
	case errors.As(err, &se):
		if se.Status >= 500 {
			return breaker.Failure
		}
		return breaker.Success
	}
	return breaker.Failure
}

func (c *Client) send(ctx context.Context, r request) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return fmt.Errorf("%s: encode request: %w", r.op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, c.baseURL+r.path, body)
	if err != nil {
		return fmt.Errorf("%s: %w", r.op, err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "sandbox-broker-niosxaas")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+r.bearer)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s: %w", r.op, transportError(ctx, err, c.timeout))
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()
	if !accepted(resp.StatusCode, r.accept) {
		return &statusError{Op: r.op, Status: resp.StatusCode}
	}
	if r.out == nil || resp.StatusCode != http.StatusOK {
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(r.out); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", r.op, transportError(ctx, ctx.Err(), c.timeout))
		}
		// The decoder's message can quote the answer, which may hold a token.
		return fmt.Errorf("%s: %w", r.op, errMalformed)
	}
	return nil
}

func accepted(status int, accept []int) bool {
	if len(accept) == 0 {
		return status == http.StatusOK
	}
	return slices.Contains(accept, status)
}

// transportError drops the request URL (noise in a stored reason) and names a timeout.
func transportError(ctx context.Context, err error, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("no answer within %s: %w", timeout, context.DeadlineExceeded)
	}
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("connection failed: %w", err)
}
