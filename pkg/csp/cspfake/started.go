package cspfake

import "testing"

// Started is a fake serving accounts on loopback for the rest of test t; it is closed when
// t ends. Tests that must act between New and Start (WatchDeletes) use those instead.
func Started(t testing.TB, o Options, accounts ...Account) *Server {
	t.Helper()
	s := New(o)
	s.Seed(accounts...)
	if err := s.Start(); err != nil {
		t.Fatalf("start the fake CSP: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
