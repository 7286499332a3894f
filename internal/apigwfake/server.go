// Package apigwfake is a fake of API Gateway's management API (REST JSON, as
// aws-sdk-go-v2's apigateway client sends it) over real loopback HTTP, for the usage-plans
// job's tests. It knows one REST API with one stage and implements only the calls the job
// makes: the stage, API keys, usage plans and their keys, with API Gateway's rules that
// the job must respect (an API key value is unique and at least 20 characters; a usage
// plan with API stages cannot be deleted; a key is in at most one plan of a stage). It
// records each request and can fail the requests that match a Failure.
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

// APIKey is an API key as the fake holds it.
type APIKey struct {
	ID, Name, Value, Description string
	Enabled                      bool
}

// Throttle is a usage plan's throttle.
type Throttle struct {
	RateLimit  float64
	BurstLimit int
}

// UsagePlan is a usage plan as the fake holds it: its stages as "apiId:stage" and the ids
// of its keys.
type UsagePlan struct {
	ID, Name, Description string
	Stages                []string
	Throttle              *Throttle
	KeyIDs                []string
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

// Keys are copies of the API keys.
func (s *Server) Keys() []APIKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]APIKey, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, *k)
	}
	return out
}

// Plans are copies of the usage plans.
func (s *Server) Plans() []UsagePlan {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]UsagePlan, 0, len(s.plans))
	for _, p := range s.plans {
		c := *p
		c.Stages, c.KeyIDs = slices.Clone(p.Stages), slices.Clone(p.KeyIDs)
		if p.Throttle != nil {
			t := *p.Throttle
			c.Throttle = &t
		}
		out = append(out, c)
	}
	return out
}

// AddKey adds an API key as if someone had created it, and returns its id.
func (s *Server) AddKey(name, value string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := &APIKey{ID: s.newID("k"), Name: name, Value: value, Enabled: true}
	s.keys = append(s.keys, k)
	return k.ID
}

// AddPlan adds a usage plan on the fake's stage holding keyIDs, and returns its id.
func (s *Server) AddPlan(name string, throttle *Throttle, keyIDs ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &UsagePlan{ID: s.newID("p"), Name: name, Stages: []string{s.stage()}, Throttle: throttle, KeyIDs: keyIDs}
	s.plans = append(s.plans, p)
	return p.ID
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

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	withValues := r.URL.Query().Get("includeValues") == "true"
	s.mu.Lock()
	var items []map[string]any
	for _, k := range s.keys {
		items = append(items, keyJSON(k, withValues))
	}
	s.mu.Unlock()
	s.page(w, r, items)
}

func keyJSON(k *APIKey, withValue bool) map[string]any {
	m := map[string]any{"id": k.ID, "name": k.Name, "description": k.Description, "enabled": k.Enabled}
	if withValue {
		m["value"] = k.Value
	}
	return m
}

func (s *Server) createKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name, Value, Description string
		Enabled                  bool
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(in.Value) < 20 {
		fail(w, http.StatusBadRequest, "BadRequestException", "API Key value should be at least 20 characters")
		return
	}
	for _, k := range s.keys {
		if k.Value == in.Value {
			fail(w, http.StatusConflict, "ConflictException", "API Key already exists")
			return
		}
	}
	k := &APIKey{ID: s.newID("k"), Name: in.Name, Value: in.Value, Description: in.Description, Enabled: in.Enabled}
	s.keys = append(s.keys, k)
	answer(w, http.StatusCreated, keyJSON(k, true))
}

func (s *Server) deleteKey(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("key")
	s.mu.Lock()
	defer s.mu.Unlock()
	i := slices.IndexFunc(s.keys, func(k *APIKey) bool { return k.ID == id })
	if i < 0 {
		fail(w, http.StatusNotFound, "NotFoundException", "Invalid API Key identifier specified")
		return
	}
	s.keys = slices.Delete(s.keys, i, i+1)
	for _, p := range s.plans {
		p.KeyIDs = slices.DeleteFunc(p.KeyIDs, func(k string) bool { return k == id })
	}
	w.WriteHeader(http.StatusAccepted)
}

func planJSON(p *UsagePlan) map[string]any {
	var stages []map[string]any
	for _, st := range p.Stages {
		api, stage, _ := strings.Cut(st, ":")
		stages = append(stages, map[string]any{"apiId": api, "stage": stage})
	}
	m := map[string]any{"id": p.ID, "name": p.Name, "description": p.Description, "apiStages": stages}
	if p.Throttle != nil {
		m["throttle"] = map[string]any{"rateLimit": p.Throttle.RateLimit, "burstLimit": p.Throttle.BurstLimit}
	}
	return m
}

func (s *Server) listPlans(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	var items []map[string]any
	for _, p := range s.plans {
		items = append(items, planJSON(p))
	}
	s.mu.Unlock()
	s.page(w, r, items)
}

func (s *Server) createPlan(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Name, Description string
		APIStages         []struct{ APIID, Stage string } `json:"apiStages"`
		Throttle          *Throttle
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if in.Name == "" {
		fail(w, http.StatusBadRequest, "BadRequestException", "Usage plan name must be provided")
		return
	}
	p := &UsagePlan{ID: s.newID("p"), Name: in.Name, Description: in.Description, Throttle: in.Throttle}
	for _, st := range in.APIStages {
		if st.APIID+":"+st.Stage != s.stage() {
			fail(w, http.StatusBadRequest, "BadRequestException", "Invalid API Stage {api: "+st.APIID+", stage: "+st.Stage+"} specified for usageplan")
			return
		}
		p.Stages = append(p.Stages, s.stage())
	}
	s.plans = append(s.plans, p)
	answer(w, http.StatusCreated, planJSON(p))
}

// plan finds a plan by the path's id, or answers 404.
func (s *Server) plan(w http.ResponseWriter, r *http.Request) *UsagePlan {
	id := r.PathValue("plan")
	for _, p := range s.plans {
		if p.ID == id {
			return p
		}
	}
	fail(w, http.StatusNotFound, "NotFoundException", "Invalid Usage Plan ID specified")
	return nil
}

// updatePlan applies the patch operations the job sends: the throttle's two limits
// (replace), the whole throttle (remove), and the fake's stage (add, remove).
func (s *Server) updatePlan(w http.ResponseWriter, r *http.Request) {
	var in struct {
		PatchOperations []struct{ Op, Path, Value string } `json:"patchOperations"`
	}
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.plan(w, r)
	if p == nil {
		return
	}
	next := *p
	next.Stages = slices.Clone(p.Stages)
	if p.Throttle != nil {
		t := *p.Throttle
		next.Throttle = &t
	}
	for _, op := range in.PatchOperations {
		refused := "" // API Gateway's message when it refuses the operation
		switch {
		case op.Op == "replace" && (op.Path == "/throttle/rateLimit" || op.Path == "/throttle/burstLimit"):
			if next.Throttle == nil {
				next.Throttle = &Throttle{}
			}
			var err error
			if op.Path == "/throttle/rateLimit" {
				next.Throttle.RateLimit, err = strconv.ParseFloat(op.Value, 64)
			} else {
				next.Throttle.BurstLimit, err = strconv.Atoi(op.Value)
			}
			if err != nil {
				refused = "Invalid value '" + op.Value + "' for " + op.Path
			}
		case op.Op == "remove" && op.Path == "/throttle":
			next.Throttle = nil
		case op.Op == "add" && op.Path == "/apiStages":
			if op.Value != s.stage() {
				refused = "Invalid API Stage specified"
			} else if !slices.Contains(next.Stages, op.Value) {
				next.Stages = append(next.Stages, op.Value)
			}
		case op.Op == "remove" && op.Path == "/apiStages":
			i := slices.Index(next.Stages, op.Value)
			if i < 0 {
				refused = "Invalid API Stage specified"
			} else {
				next.Stages = slices.Delete(next.Stages, i, i+1)
			}
		default:
			refused = fmt.Sprintf("Invalid patch path '%s' specified for op '%s'", op.Path, op.Op)
		}
		if refused != "" {
			fail(w, http.StatusBadRequest, "BadRequestException", refused)
			return
		}
	}
	*p = next
	answer(w, http.StatusOK, planJSON(p))
}

func (s *Server) deletePlan(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.plan(w, r)
	if p == nil {
		return
	}
	if len(p.Stages) > 0 {
		fail(w, http.StatusBadRequest, "BadRequestException",
			"Cannot delete Usage Plan "+p.ID+" because there are API Stages associated with it, including "+p.Stages[0])
		return
	}
	s.plans = slices.DeleteFunc(s.plans, func(q *UsagePlan) bool { return q == p })
	w.WriteHeader(http.StatusAccepted)
}

func (s *Server) listPlanKeys(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	p := s.plan(w, r)
	if p == nil {
		s.mu.Unlock()
		return
	}
	var items []map[string]any
	for _, id := range p.KeyIDs {
		for _, k := range s.keys {
			if k.ID == id {
				items = append(items, map[string]any{"id": k.ID, "name": k.Name, "type": "API_KEY", "value": k.Value})
			}
		}
	}
	s.mu.Unlock()
	s.page(w, r, items)
}

func (s *Server) addPlanKey(w http.ResponseWriter, r *http.Request) {
	var in struct{ KeyID, KeyType string }
	if !decode(w, r, &in) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.plan(w, r)
	if p == nil {
		return
	}
	i := slices.IndexFunc(s.keys, func(k *APIKey) bool { return k.ID == in.KeyID })
	if in.KeyType != "API_KEY" || i < 0 {
		fail(w, http.StatusNotFound, "NotFoundException", "Invalid API Key identifier specified")
		return
	}
	for _, q := range s.plans {
		if slices.Contains(q.KeyIDs, in.KeyID) && slices.ContainsFunc(q.Stages, func(st string) bool { return slices.Contains(p.Stages, st) }) {
			fail(w, http.StatusConflict, "ConflictException", "API Key "+in.KeyID+" is already associated with a usage plan of the same stage")
			return
		}
	}
	p.KeyIDs = append(p.KeyIDs, in.KeyID)
	k := s.keys[i]
	answer(w, http.StatusCreated, map[string]any{"id": k.ID, "name": k.Name, "type": "API_KEY", "value": k.Value})
}

func (s *Server) removePlanKey(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.plan(w, r)
	if p == nil {
		return
	}
	id := r.PathValue("key")
	i := slices.Index(p.KeyIDs, id)
	if i < 0 {
		fail(w, http.StatusNotFound, "NotFoundException", "Invalid API Key identifier specified")
		return
	}
	p.KeyIDs = slices.Delete(p.KeyIDs, i, i+1)
	w.WriteHeader(http.StatusAccepted)
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
