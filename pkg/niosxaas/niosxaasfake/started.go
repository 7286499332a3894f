package niosxaasfake

import "testing"

// Started is a fake serving on loopback for the rest of test t; it is closed when t ends.
func Started(t testing.TB, o Options) *Server {
	t.Helper()
	s := New(o)
	if err := s.Start(); err != nil {
		t.Fatalf("start the fake NIOSXaaS: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
