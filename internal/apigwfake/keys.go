package apigwfake

import (
	"net/http"
	"slices"
)

// APIKey is an API key as the fake holds it.
type APIKey struct {
	ID, Name, Value, Description string
	Enabled                      bool
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

// AddKey adds an API key as if someone had created it, and returns its id.
func (s *Server) AddKey(name, value string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := &APIKey{ID: s.newID("k"), Name: name, Value: value, Enabled: true}
	s.keys = append(s.keys, k)
	return k.ID
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
