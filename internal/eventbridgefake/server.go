// Package eventbridgefake is a fake Amazon EventBridge over real HTTP: it answers
// PutEvents as the service does (AWS JSON 1.1, an answer entry per request entry, the
// failed ones with ErrorCode and ErrorMessage and counted in FailedEntryCount), records
// every entry it accepted as the event EventBridge would deliver to a rule's target, and
// fails what a test tells it to.
package eventbridgefake

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Event is an accepted entry as EventBridge delivers it to a target.
type Event struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
	// Bus is the event bus it was put on (not part of what a target receives).
	Bus string `json:"-"`
}

// Entry is one PutEvents request entry.
type Entry struct {
	Source, DetailType, Detail, EventBusName string
	Time                                     *float64
	Resources                                []string
}

// Call is what the fake does with one PutEvents call.
type Call int

const (
	// Answer processes the call's entries.
	Answer Call = iota
	// Refuse answers 500 InternalException without accepting any entry.
	Refuse
	// LoseAnswer accepts every entry, then answers 500: the caller cannot tell it from
	// Refuse, and puts the entries again.
	LoseAnswer
)

// Server is the fake.
type Server struct {
	server *httptest.Server

	mu     sync.Mutex
	events []Event
	calls  int
	// failEntry names the ErrorCode to refuse an entry with, "" to accept it.
	failEntry func(Entry) string
	call      func(n int) Call
}

// Start serves the fake on a loopback port until the test ends.
func Start(t testing.TB) *Server {
	s := &Server{}
	s.server = httptest.NewServer(s)
	t.Cleanup(s.server.Close)
	return s
}

// URL is the endpoint to point an EventBridge client at.
func (s *Server) URL() string { return s.server.URL }

// FailEntries makes the fake refuse each entry for which f names an ErrorCode
// (ThrottlingException, InternalFailure, MalformedDetail, …); nil accepts every one.
func (s *Server) FailEntries(f func(Entry) string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failEntry = f
}

// OnCall decides each call by its number (1 for the first); nil answers every one.
func (s *Server) OnCall(f func(n int) Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.call = f
}

// Events is every accepted entry, in the order accepted.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// Calls counts the PutEvents calls.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

type resultEntry struct {
	EventID      string `json:"EventId,omitempty"`
	ErrorCode    string `json:"ErrorCode,omitempty"`
	ErrorMessage string `json:"ErrorMessage,omitempty"`
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if r.Header.Get("X-Amz-Target") != "AWSEvents.PutEvents" {
		fail(w, http.StatusBadRequest, "UnknownOperationException", "the fake answers PutEvents only")
		return
	}
	body, _ := io.ReadAll(r.Body)
	var in struct{ Entries []Entry }
	if err := json.Unmarshal(body, &in); err != nil {
		fail(w, http.StatusBadRequest, "SerializationException", err.Error())
		return
	}
	if len(in.Entries) == 0 || len(in.Entries) > 10 {
		fail(w, http.StatusBadRequest, "ValidationException", fmt.Sprintf("1 validation error detected: Value at 'entries' failed to satisfy constraint: Member must have length between 1 and 10 (got %d)", len(in.Entries)))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	decision := Answer
	if s.call != nil {
		decision = s.call(s.calls)
	}
	if decision == Refuse {
		fail(w, http.StatusInternalServerError, "InternalException", "the fake refused the call")
		return
	}
	out := struct {
		FailedEntryCount int
		Entries          []resultEntry
	}{Entries: []resultEntry{}}
	for _, e := range in.Entries {
		code := ""
		if s.failEntry != nil && decision == Answer {
			code = s.failEntry(e)
		}
		if code == "" && !json.Valid([]byte(e.Detail)) {
			code = "MalformedDetail"
		}
		if code != "" {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, resultEntry{ErrorCode: code, ErrorMessage: "the fake refused the entry: " + code})
			continue
		}
		id := uuid()
		at := time.Now()
		if e.Time != nil {
			sec, frac := math.Modf(*e.Time)
			at = time.Unix(int64(sec), int64(frac*1e9))
		}
		bus := e.EventBusName
		if bus == "" {
			bus = "default"
		}
		s.events = append(s.events, Event{Version: "0", ID: id, DetailType: e.DetailType, Source: e.Source,
			Account: "123456789012", Time: at.UTC().Format(time.RFC3339), Region: "us-east-1",
			Resources: append([]string{}, e.Resources...), Detail: json.RawMessage(e.Detail), Bus: bus})
		out.Entries = append(out.Entries, resultEntry{EventID: id})
	}
	if decision == LoseAnswer {
		fail(w, http.StatusInternalServerError, "InternalException", "the fake lost its answer")
		return
	}
	_ = json.NewEncoder(w).Encode(out)
}

func fail(w http.ResponseWriter, status int, kind, message string) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": kind, "message": message})
}

func uuid() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
