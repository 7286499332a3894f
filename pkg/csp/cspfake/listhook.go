package cspfake

import (
	"context"
	"sync"
)

// ListCall is a listing request about to be served: Seq counts the
// authorised listing requests since Start, from 0.
type ListCall struct {
	Seq, Limit, Offset int
}

// SetListHook installs h (nil removes it). The fake calls it before it
// decides each authorised listing request, outside its lock and with the
// request's context, so a hook may block to hold a listing between two of
// its pages; what the page holds is decided after h returns, so deletes made
// meanwhile show in it.
func (s *Server) SetListHook(h func(context.Context, ListCall)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listHook = h
}

// Hold is a listing request held by HoldListing.
type Hold struct {
	reached chan struct{}
	release chan struct{}
	once    sync.Once
}

// Reached is closed once the held request has arrived and is waiting.
func (h *Hold) Reached() <-chan struct{} { return h.reached }

// Release lets the held request, and every later one, through. It may be
// called more than once.
func (h *Hold) Release() { h.once.Do(func() { close(h.release) }) }

// HoldListing holds the n-th (from 0) listing request received after this
// call until Release, or until its client goes away. It replaces any list
// hook.
func (s *Server) HoldListing(n int) *Hold {
	h := &Hold{reached: make(chan struct{}), release: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	target := s.listSeq + n
	s.listHook = func(ctx context.Context, c ListCall) {
		if c.Seq != target {
			return
		}
		close(h.reached)
		select {
		case <-h.release:
		case <-ctx.Done():
		}
	}
	return h
}
