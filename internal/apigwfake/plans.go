package apigwfake

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

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

// AddPlan adds a usage plan on the fake's stage holding keyIDs, and returns its id.
func (s *Server) AddPlan(name string, throttle *Throttle, keyIDs ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := &UsagePlan{ID: s.newID("p"), Name: name, Stages: []string{s.stage()}, Throttle: throttle, KeyIDs: keyIDs}
	s.plans = append(s.plans, p)
	return p.ID
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
