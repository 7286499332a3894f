package fakeserve

import (
	"errors"
	"net"
	"net/http"
)

// Server runs one fake's handler on a TCP address until Close.
type Server struct {
	srv    *http.Server
	served chan struct{}
	url    string
}

// Start listens on addr ("127.0.0.1:0": any free loopback port) and serves srv there in
// the background; URL is then "http://host:port".
func (s *Server) Start(srv *http.Server, addr string) error {
	if s.served != nil {
		return errors.New("already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.srv, s.url, s.served = srv, "http://"+ln.Addr().String(), make(chan struct{})
	go func() {
		defer close(s.served)
		_ = srv.Serve(ln) // always http.ErrServerClosed after Close
	}()
	return nil
}

// Started reports whether Start succeeded.
func (s *Server) Started() bool { return s.served != nil }

// URL is "http://host:port" of the listener ("" before Start).
func (s *Server) URL() string { return s.url }

// Close stops the server and closes every connection, in-flight requests included.
func (s *Server) Close() error {
	if s.served == nil {
		return nil
	}
	err := s.srv.Close()
	<-s.served
	return err
}
