package niosxaasfake

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
)

// reply is a decided outcome, computed under the lock and written after.
type reply struct {
	drop   bool
	status int
	body   []byte
	html   bool
}

// faulty runs an endpoint's latency, drop and failure stages; a non-nil reply ends the
// request there.
func (s *Server) faulty(ctx context.Context, endpoint func(*Faults) *Endpoint, serviceID string) (*reply, bool) {
	s.mu.Lock()
	d := endpoint(&s.faults).Latency
	s.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, false
		case <-t.C:
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := endpoint(&s.faults)
	if s.fires(&e.Drop) {
		return &reply{drop: true}, true
	}
	if slices.Contains(e.Fail.IDs, serviceID) || s.fires(&e.Fail.Trigger) {
		return failureReply(e.Fail), true
	}
	return nil, true
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	if s.opts.BeforeSignIn != nil {
		s.opts.BeforeSignIn()
	}
	s.mu.Lock()
	s.counters.SignIns++
	s.mu.Unlock()
	if rep, ok := s.faulty(r.Context(), func(f *Faults) *Endpoint { return &f.SignIn }, ""); !ok || rep != nil {
		writeReply(w, rep)
		return
	}
	var body struct{ Email, Password string }
	if !decode(w, r, &body) {
		return
	}
	emailOK := subtle.ConstantTimeCompare([]byte(body.Email), []byte(s.opts.Email)) == 1
	passwordOK := subtle.ConstantTimeCompare([]byte(body.Password), []byte(s.opts.Password)) == 1
	if !emailOK || !passwordOK {
		writeReply(w, &reply{status: http.StatusUnauthorized, body: jsonError("invalid email or password")})
		return
	}
	s.mu.Lock()
	jwt := s.issue("")
	s.mu.Unlock()
	writeReply(w, &reply{status: http.StatusOK, body: jwtBody(jwt)})
}

func (s *Server) accountSwitch(w http.ResponseWriter, r *http.Request) {
	var body struct{ ID string }
	if !decode(w, r, &body) {
		return
	}
	s.mu.Lock()
	s.counters.Switches[body.ID]++
	s.mu.Unlock()
	if rep, ok := s.faulty(r.Context(), func(f *Faults) *Endpoint { return &f.Switch }, ""); !ok || rep != nil {
		writeReply(w, rep)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.bearer(r); !ok || t.account != "" {
		writeReply(w, unauthorized())
		return
	}
	if !strings.HasPrefix(body.ID, "identity/accounts/") {
		writeReply(w, &reply{status: http.StatusBadRequest, body: jsonError("id must be an account id")})
		return
	}
	writeReply(w, &reply{status: http.StatusOK, body: jwtBody(s.issue(body.ID))})
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	account, ok := s.accountOf(w, r, func(c *Counters) map[string]int { return c.Lists }, func(f *Faults) *Endpoint { return &f.List })
	if !ok {
		return
	}
	s.mu.Lock()
	body, _ := json.Marshal(map[string]any{"results": append([]Service{}, s.accounts[account]...)})
	s.mu.Unlock()
	writeReply(w, &reply{status: http.StatusOK, body: body})
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	account, ok := s.accountOf(w, r, func(c *Counters) map[string]int { return c.Deletes }, func(f *Faults) *Endpoint { return &f.Delete })
	if !ok {
		return
	}
	id := r.PathValue("id")
	s.mu.Lock()
	defer s.mu.Unlock()
	services := s.accounts[account]
	for i, svc := range services {
		if svc.ID[strings.LastIndex(svc.ID, "/")+1:] == id {
			s.accounts[account] = append(services[:i:i], services[i+1:]...)
			writeReply(w, &reply{status: http.StatusNoContent})
			return
		}
	}
	writeReply(w, &reply{status: http.StatusNotFound, body: jsonError("universal service not found")})
}

// accountOf authenticates a call made with an account-scoped jwt, counts it for that
// account and runs the endpoint's faults; false means the request is answered.
func (s *Server) accountOf(w http.ResponseWriter, r *http.Request, counter func(*Counters) map[string]int, endpoint func(*Faults) *Endpoint) (string, bool) {
	s.mu.Lock()
	t, ok := s.bearer(r)
	if ok && t.account != "" {
		counter(&s.counters)[t.account]++
	}
	s.mu.Unlock()
	if rep, ok := s.faulty(r.Context(), endpoint, r.PathValue("id")); !ok || rep != nil {
		writeReply(w, rep)
		return "", false
	}
	if !ok || t.account == "" {
		writeReply(w, unauthorized())
		return "", false
	}
	return t.account, true
}

// bearer looks up the request's jwt; unknown, revoked and expired ones are refused. The
// caller holds s.mu.
func (s *Server) bearer(r *http.Request) (token, bool) {
	jwt, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return token{}, false
	}
	t, ok := s.tokens[jwt]
	if !ok || !s.opts.Now().Before(t.expires) {
		return token{}, false
	}
	return t, true
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(v); err != nil {
		writeReply(w, &reply{status: http.StatusBadRequest, body: jsonError("body is not JSON")})
		return false
	}
	return true
}

func unauthorized() *reply {
	return &reply{status: http.StatusUnauthorized, body: jsonError("invalid or expired token")}
}

func failureReply(f Failure) *reply {
	status := f.status()
	if f.Body == BodyHTML {
		return &reply{status: status, html: true, body: fmt.Appendf(nil,
			"<html><head><title>%d %s</title></head><body><h1>%s</h1><p>upstream connect error</p></body></html>",
			status, http.StatusText(status), http.StatusText(status))}
	}
	return &reply{status: status, body: jsonError("injected failure")}
}

func jwtBody(jwt string) []byte { return fmt.Appendf(nil, `{"jwt":%q}`, jwt) }

func jsonError(msg string) []byte { return fmt.Appendf(nil, `{"error":[{"message":%q}]}`, msg) }

// writeReply writes rep; nil means the client went away during the latency.
func writeReply(w http.ResponseWriter, rep *reply) {
	if rep == nil {
		return
	}
	if rep.drop {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, "niosxaasfake: cannot drop this connection: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_ = conn.Close()
		return
	}
	if rep.html {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}
