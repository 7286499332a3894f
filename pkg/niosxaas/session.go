package niosxaas

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// session is a signed-in user's jwt, shared by every sandbox until it expires or is
// rejected.
type session struct {
	jwt     string
	expires time.Time
}

// signInFlight is the one sign-in in progress; every caller that needs a session while it
// runs waits for it and shares its result, failure included.
type signInFlight struct {
	done chan struct{}
	s    *session
	err  error
}

// session returns the cached session, or signs in once for all concurrent callers. A
// session is not used in its last Timeout, so a call started on it ends before it expires.
func (c *Client) session(ctx context.Context) (*session, error) {
	c.mu.Lock()
	if s := c.current; s != nil && c.now().Add(c.timeout).Before(s.expires) {
		c.mu.Unlock()
		return s, nil
	}
	if f := c.flight; f != nil {
		c.waiting++
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.waiting--
			c.mu.Unlock()
		}()
		select {
		case <-f.done:
			return f.s, f.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	f := &signInFlight{done: make(chan struct{})}
	c.flight = f
	c.mu.Unlock()

	// The sign-in serves every waiter, so one caller giving up must not cancel it; the
	// per-call timeout still bounds it.
	f.s, f.err = c.signIn(context.WithoutCancel(ctx))
	c.mu.Lock()
	c.flight = nil
	if f.err == nil {
		c.current = f.s
	}
	c.mu.Unlock()
	close(f.done)
	return f.s, f.err
}

// reject forgets s after NIOSXaaS refused it. Only the first of many callers holding the
// same rejected session clears it; the others find the new one, or its sign-in in flight.
func (c *Client) reject(s *session) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current == s {
		c.current = nil
	}
}

type signInBody struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

type jwtAnswer struct {
	JWT string `json:"jwt"`
}

func (c *Client) signIn(ctx context.Context) (*session, error) {
	creds, err := c.credentials(ctx)
	if err != nil {
		return nil, fmt.Errorf("sign-in: read credentials: %w", err)
	}
	if err := creds.Validate(); err != nil {
		return nil, fmt.Errorf("sign-in: credentials: %w", err)
	}
	var out jwtAnswer
	err = c.do(ctx, request{
		op: "sign-in", method: http.MethodPost, path: "/v2/session/users/sign_in",
		body: signInBody{Email: creds.Email, Password: creds.Password.Reveal()}, out: &out,
	})
	if err != nil {
		return nil, err
	}
	if out.JWT == "" {
		return nil, errors.New("sign-in: the answer has no jwt")
	}
	now := c.now()
	s := &session{jwt: out.JWT, expires: now.Add(c.sessionTTL)}
	if exp, ok := jwtExpiry(out.JWT); ok {
		s.expires = exp
	}
	c.log.Info("niosxaas signed in", "session_expires_in", s.expires.Sub(now).Round(time.Second).String())
	return s, nil
}

// jwtExpiry reads the exp claim without verifying the token: the client only needs to
// know when to sign in again, and NIOSXaaS verifies it on every call.
func jwtExpiry(jwt string) (time.Time, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, false
	}
	var claims struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(payload, &claims) != nil || claims.Exp == nil || *claims.Exp <= 0 {
		return time.Time{}, false
	}
	return time.Unix(int64(*claims.Exp), 0), true
}
