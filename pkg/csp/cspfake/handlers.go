package cspfake

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// record wraps the routes so every request, even a 404 or a dropped one,
// is in Requests() from the moment it arrives.
func (s *Server) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		i := len(s.requests)
		s.requests = append(s.requests, Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, At: s.opts.Now()})
		s.mu.Unlock()

		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)

		s.mu.Lock()
		s.requests[i].Status = rec.status
		s.mu.Unlock()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection to hijack it.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// reply is a decided outcome, computed under the lock and written after.
type reply struct {
	drop       bool
	status     int
	body       []byte
	kind       BodyKind
	retryAfter time.Duration
	location   string
}

func (s *Server) list(w http.ResponseWriter, r *http.Request) {
	if !s.delay(r.Context(), func(f *Faults) time.Duration { return f.ListLatency }) || !s.authorized(w, r) {
		return
	}
	limit, offset, err := s.pageParams(r)
	if err != nil {
		writeReply(w, reply{status: http.StatusBadRequest, body: jsonError(err.Error())})
		return
	}
	s.mu.Lock()
	call := ListCall{Seq: s.listSeq, Limit: limit, Offset: offset}
	s.listSeq++
	hook := s.listHook
	s.mu.Unlock()
	if hook != nil {
		if hook(r.Context(), call); r.Context().Err() != nil {
			return
		}
	}
	s.mu.Lock()
	rep := s.decideList(limit, offset, s.opts.Now())
	s.mu.Unlock()
	writeReply(w, rep)
}

func (s *Server) decideList(limit, offset int, now time.Time) reply {
	f := &s.faults
	if s.fires(&f.ListDrop) {
		return reply{drop: true}
	}
	if s.fires(&f.ListFail.Trigger) {
		return failureReply(f.ListFail)
	}
	var listed [][]byte
	if !f.ListEmpty {
		for _, e := range s.accounts {
			if e.listed(now, f.DeletedListLag) {
				listed = append(listed, e.raw)
			}
		}
	}
	if f.ListLimit > 0 && f.ListLimit < len(listed) {
		listed = listed[:f.ListLimit]
	}
	if f.ListFraction > 0 {
		listed = listed[:int(f.ListFraction*float64(len(listed)))]
	}
	var page [][]byte
	switch f.Paging {
	case PagingIgnore:
		page = listed
	case PagingIgnoreOffset:
		page = listed[:min(limit, len(listed))]
	case PagingCap:
		limit = min(limit, f.PageCap)
		fallthrough
	default:
		page = listed[min(offset, len(listed)):min(offset+limit, len(listed))]
	}
	// Raw entries are written verbatim, so fixtures can hold anything.
	body := append([]byte(`{"results":[`), bytes.Join(page, []byte(","))...)
	return reply{status: http.StatusOK, body: append(body, "]}"...)}
}

func (s *Server) pageParams(r *http.Request) (limit, offset int, err error) {
	q := r.URL.Query()
	limit = s.opts.DefaultPageSize
	if v := q.Get("_limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return 0, 0, fmt.Errorf("_limit %q must be a positive integer", v)
		}
		limit = min(n, s.opts.MaxPageSize)
	}
	if v := q.Get("_offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, fmt.Errorf("_offset %q must be a non-negative integer", v)
		}
		offset = n
	}
	return limit, offset, nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request) {
	if !s.delay(r.Context(), func(f *Faults) time.Duration { return f.DeleteLatency }) || !s.authorized(w, r) {
		return
	}
	uuid := r.PathValue("uuid")
	s.mu.Lock()
	now := s.opts.Now()
	rep := s.decideDelete(uuid, now)
	s.deletes = append(s.deletes, DeleteRecord{UUID: uuid, At: now, Status: rep.status})
	s.mu.Unlock()
	writeReply(w, rep)
}

func (s *Server) decideDelete(uuid string, now time.Time) reply {
	f := &s.faults
	if s.fires(&f.DeleteDrop) {
		return reply{drop: true}
	}
	if ok, wait := s.bucket.take(now); !ok {
		return reply{status: http.StatusTooManyRequests, retryAfter: wait, body: jsonError("rate limit exceeded")}
	}
	if slices.Contains(f.DeleteFail.UUIDs, uuid) || s.fires(&f.DeleteFail.Trigger) {
		return failureReply(f.DeleteFail)
	}
	e := s.byUUID[uuid]
	if e == nil || e.deleted {
		return reply{status: http.StatusNotFound, body: jsonError("account not found")}
	}
	e.deleted, e.deletedAt = true, now
	if s.opts.DeleteStatus == http.StatusNoContent {
		return reply{status: http.StatusNoContent}
	}
	return reply{status: s.opts.DeleteStatus, body: []byte(`{}`)}
}

// delay sleeps for the injected latency; false means the client went away.
func (s *Server) delay(ctx context.Context, latency func(*Faults) time.Duration) bool {
	s.mu.Lock()
	d := latency(&s.faults)
	s.mu.Unlock()
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (s *Server) authorized(w http.ResponseWriter, r *http.Request) bool {
	got := r.Header.Values("Authorization")
	if len(got) == 1 && got[0] == "Token "+s.opts.Token {
		return true
	}
	writeReply(w, reply{status: http.StatusUnauthorized, body: jsonError("invalid or missing token")})
	return false
}

func failureReply(f Failure) reply {
	rep := failureBody(f)
	if rep.status >= 300 && rep.status <= 399 {
		rep.location = "/login"
	}
	return rep
}

func failureBody(f Failure) reply {
	status := f.status()
	switch f.Body {
	case BodyHTML:
		return reply{status: status, kind: BodyHTML, body: fmt.Appendf(nil,
			"<html><head><title>%d %s</title></head><body><h1>%s</h1>"+
				"<p>unable to get licenses: invalid character '<' looking for beginning of value</p></body></html>",
			status, http.StatusText(status), http.StatusText(status))}
	case BodyGarbage:
		return reply{status: status, kind: BodyGarbage, body: []byte("\x1f\x8b\x08\x00\xff\xfe\x00\x07\x1b[31m\xc3\x28\x00\x01garbage\xf0\x28\x8c\xbc\r\n\t\x7f")}
	}
	return reply{status: status, body: jsonError("injected failure")}
}

func jsonError(msg string) []byte {
	return fmt.Appendf(nil, `{"error":[{"message":%q}]}`, msg)
}

func writeReply(w http.ResponseWriter, rep reply) {
	if rep.drop {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			http.Error(w, "cspfake: cannot drop this connection: "+err.Error(), http.StatusInternalServerError)
			return
		}
		_ = conn.Close()
		return
	}
	switch rep.kind {
	case BodyHTML:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
	default:
		// Garbage too is labelled JSON, as a broken proxy would.
		w.Header().Set("Content-Type", "application/json")
	}
	if rep.location != "" {
		w.Header().Set("Location", rep.location)
	}
	if rep.retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterSeconds(rep.retryAfter))
	}
	w.WriteHeader(rep.status)
	_, _ = w.Write(rep.body)
}
