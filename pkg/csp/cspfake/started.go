package cspfake

import "testing"

// Started is a fake serving accounts on loopback for the rest of test t; it is closed when
// t ends.
func Started(t testing.TB, o Options, accounts ...Account) *Server {
	t.Helper()
	return started(t, o, accounts, func(*Server) {})
}

// StartedWatchingDeletes is Started with a DeleteWatch in front of its delete route, which
// must be put there before the fake starts.
func StartedWatchingDeletes(t testing.TB, o Options, accounts ...Account) (*Server, *DeleteWatch) {
	t.Helper()
	var w *DeleteWatch
	s := started(t, o, accounts, func(s *Server) { w = s.WatchDeletes() })
	return s, w
}

// started is New, Seed and Start with beforeStart in between, and Close when t ends.
func started(t testing.TB, o Options, accounts []Account, beforeStart func(*Server)) *Server {
	t.Helper()
	s := New(o)
	s.Seed(accounts...)
	beforeStart(s)
	if err := s.Start(); err != nil {
		t.Fatalf("start the fake CSP: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
