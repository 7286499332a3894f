package cspfake

import (
	"net/http"
	"slices"
	"time"
)

// Request is one request the fake received. Status is 0 while it is in
// flight and for dropped connections.
type Request struct {
	Method string
	Path   string
	Query  string
	At     time.Time
	Status int
}

// DeleteRecord is one authorised delete request and its outcome (Status 0:
// the connection was dropped).
type DeleteRecord struct {
	UUID   string
	At     time.Time
	Status int
}

// Requests returns every request received so far, in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Deletes returns every authorised delete request so far, in order.
func (s *Server) Deletes() []DeleteRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.deletes)
}

// AcceptedDeletes returns when each delete got past the rate limiter
// (whatever happened next), so a test can compute the rate a caller
// achieved.
func (s *Server) AcceptedDeletes() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []time.Time
	for _, d := range s.deletes {
		if d.Status != 0 && d.Status != http.StatusTooManyRequests {
			out = append(out, d.At)
		}
	}
	return out
}

// Deleted reports whether the account with this uuid was deleted.
func (s *Server) Deleted(uuid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.byUUID[uuid]
	return e != nil && e.deleted
}
