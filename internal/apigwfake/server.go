package apigwfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/internal/fakeserve"
)

// Options configure a Server.
type Options struct {
	// RestAPIID and Stage are the one REST API stage the fake knows.
	RestAPIID, Stage string
	// PageSize is the most items one listing answers (default 500, API Gateway's maximum);
	// smaller sizes exercise the client's paging.
	PageSize int
}

// Failure makes every request of Method whose path starts with PathPrefix fail with
// Status and the error type Type (the X-Amzn-ErrorType header the SDK reads).
type Failure struct {
	Method, PathPrefix string
	Status             int
	Type               string
}

// Server is the fake.
type Server struct {
	opts Options
	run  fakeserve.Server
	srv  *http.Server
	mux  *http.ServeMux

	mu       sync.Mutex
	nextID   int
	keys     []*APIKey // in creation order, as API Gateway lists them
	plans    []*UsagePlan
	requests []string
	failure  *Failure
}

// New returns a stopped fake; ServeHTTP serves without Start.
func New(opts Options) *Server {
	if opts.PageSize == 0 {
		opts.PageSize = 500
	}
	s := &Server{opts: opts, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /restapis/{api}/stages/{stage}", s.getStage)
	s.mux.HandleFunc("GET /apikeys", s.listKeys)
	s.mux.HandleFunc("POST /apikeys", s.createKey)
	s.mux.HandleFunc("DELETE /apikeys/{key}", s.deleteKey)
	s.mux.HandleFunc("GET /usageplans", s.listPlans)
	s.mux.HandleFunc("POST /usageplans", s.createPlan)
	s.mux.HandleFunc("PATCH /usageplans/{plan}", s.updatePlan)
	s.mux.HandleFunc("DELETE /usageplans/{plan}", s.deletePlan)
	s.mux.HandleFunc("GET /usageplans/{plan}/keys", s.listPlanKeys)
	s.mux.HandleFunc("POST /usageplans/{plan}/keys", s.addPlanKey)
	s.mux.HandleFunc("DELETE /usageplans/{plan}/keys/{key}", s.removePlanKey)
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	return s
}

// Start serves on a free loopback port until Close.
func (s *Server) Start() error {
	if err := s.run.Start(s.srv, "127.0.0.1:0"); err != nil {
		return fmt.Errorf("apigwfake: %w", err)
	}
	return nil
}

// URL is the endpoint to give the SDK client.
func (s *Server) URL() string { return s.run.URL() }

// Close stops the server.
func (s *Server) Close() error { return s.run.Close() }

// ServeHTTP records the request, applies the failure, and answers it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path)
	f := s.failure
	s.mu.Unlock()
	if f != nil && r.Method == f.Method && strings.HasPrefix(r.URL.Path, f.PathPrefix) {
		fail(w, f.Status, f.Type, "injected failure")
		return
	}
	s.mux.ServeHTTP(w, r)
}

// SetFailure fails the matching requests from now on; nil ends it.
func (s *Server) SetFailure(f *Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failure = f
}

// Requests are "METHOD /path" of every request so far.
func (s *Server) Requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

func (s *Server) newID(kind string) string {
	s.nextID++
	return fmt.Sprintf("%s%09d", kind, s.nextID)
}

func (s *Server) stage() string { return s.opts.RestAPIID + ":" + s.opts.Stage }

func (s *Server) getStage(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("api") != s.opts.RestAPIID || r.PathValue("stage") != s.opts.Stage {
		fail(w, http.StatusNotFound, "NotFoundException", "Invalid stage identifier specified")
		return
	}
	answer(w, http.StatusOK, map[string]any{"stageName": s.opts.Stage, "deploymentId": "d1"})
}

// page answers items[position:position+limit] with the position of the next page.
func (s *Server) page(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	limit := s.opts.PageSize
	if l, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && l > 0 && l < limit {
		limit = l
	}
	from := 0
	if p := r.URL.Query().Get("position"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > len(items) {
			fail(w, http.StatusBadRequest, "BadRequestException", "Invalid position")
			return
		}
		from = n
	}
	to := min(from+limit, len(items))
	body := map[string]any{"item": items[from:to]}
	if to < len(items) {
		body["position"] = strconv.Itoa(to)
	}
	answer(w, http.StatusOK, body)
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		fail(w, http.StatusBadRequest, "BadRequestException", "Invalid request body: "+err.Error())
		return false
	}
	return true
}

func answer(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// fail answers an error as API Gateway does: its type in X-Amzn-ErrorType, its message in
// the body.
func fail(w http.ResponseWriter, status int, errType, message string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", errType)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": message})
}
