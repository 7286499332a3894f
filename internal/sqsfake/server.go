// Package sqsfake is a fake Amazon SQS standard queue over real HTTP, speaking the AWS
// JSON 1.0 protocol of the SDK: SendMessage(Batch), ReceiveMessage with a visibility
// timeout, DeleteMessage(Batch) and GetQueueAttributes, with the MD5 digests the SDK
// checks. It serves the events' dead-letter queue in tests and in the local stack.
package sqsfake

import (
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sandbox-broker/broker/internal/fakeserve"
)

// Server is the fake: queues by URL, created on first use.
type Server struct {
	run fakeserve.Server
	now func() time.Time

	mu     sync.Mutex
	queues map[string][]*message
	// refuse makes each request of the operation fail (true) or pass (false).
	refuse func(op string) bool
}

type message struct {
	id, body, handle string
	visibleAt        time.Time
}

// New returns a fake; serve it with Start, or as an http.Handler.
func New() *Server { return &Server{now: time.Now, queues: map[string][]*message{}} }

// Start serves the fake on addr ("127.0.0.1:0") until Close.
func (s *Server) Start(addr string) error {
	return s.run.Start(&http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}, addr)
}

// URL is the endpoint to point an SQS client at.
func (s *Server) URL() string { return s.run.URL() }

// QueueURL is the URL of the queue named name on this endpoint.
func (s *Server) QueueURL(name string) string { return s.run.URL() + "/123456789012/" + name }

// Close stops the server.
func (s *Server) Close() error { return s.run.Close() }

// Refuse makes the requests of the operations f names fail with 500; nil passes all.
func (s *Server) Refuse(f func(op string) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse = f
}

// Bodies are the bodies of the messages in the queue at url, visible or not.
func (s *Server) Bodies(url string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.queues[url] {
		out = append(out, m.body)
	}
	return out
}

// Put adds a message to the queue at url, as another sender would.
func (s *Server) Put(url, body string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queues[url] = append(s.queues[url], &message{id: token(), body: body})
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.")
	body, _ := io.ReadAll(r.Body)
	var in struct {
		QueueURL            string `json:"QueueUrl"`
		MessageBody         string
		ReceiptHandle       string
		MaxNumberOfMessages int
		VisibilityTimeout   *int
		Entries             []struct {
			ID            string `json:"Id"`
			MessageBody   string
			ReceiptHandle string
		}
	}
	if !ok || json.Unmarshal(body, &in) != nil {
		fail(w, http.StatusBadRequest, "InvalidAction", "unreadable request")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refuse != nil && s.refuse(op) {
		fail(w, http.StatusInternalServerError, "InternalError", "the fake refused the request")
		return
	}
	now := s.now()
	switch op {
	case "SendMessage":
		m := &message{id: token(), body: in.MessageBody}
		s.queues[in.QueueURL] = append(s.queues[in.QueueURL], m)
		reply(w, map[string]string{"MessageId": m.id, "MD5OfMessageBody": digest(m.body)})
	case "SendMessageBatch":
		var ok []map[string]string
		for _, e := range in.Entries {
			m := &message{id: token(), body: e.MessageBody}
			s.queues[in.QueueURL] = append(s.queues[in.QueueURL], m)
			ok = append(ok, map[string]string{"Id": e.ID, "MessageId": m.id, "MD5OfMessageBody": digest(m.body)})
		}
		reply(w, map[string]any{"Successful": ok, "Failed": []any{}})
	case "ReceiveMessage":
		limit := max(1, min(in.MaxNumberOfMessages, 10))
		visibility := 30
		if in.VisibilityTimeout != nil {
			visibility = *in.VisibilityTimeout
		}
		var out []map[string]string
		for _, m := range s.queues[in.QueueURL] {
			if len(out) == limit {
				break
			}
			if m.visibleAt.After(now) {
				continue
			}
			m.handle, m.visibleAt = token(), now.Add(time.Duration(visibility)*time.Second)
			out = append(out, map[string]string{"MessageId": m.id, "ReceiptHandle": m.handle, "MD5OfBody": digest(m.body), "Body": m.body})
		}
		reply(w, map[string]any{"Messages": out})
	case "DeleteMessage":
		s.delete(in.QueueURL, in.ReceiptHandle)
		reply(w, map[string]any{})
	case "DeleteMessageBatch":
		var ok []map[string]string
		for _, e := range in.Entries {
			s.delete(in.QueueURL, e.ReceiptHandle)
			ok = append(ok, map[string]string{"Id": e.ID})
		}
		reply(w, map[string]any{"Successful": ok, "Failed": []any{}})
	case "GetQueueAttributes":
		visible := 0
		for _, m := range s.queues[in.QueueURL] {
			if !m.visibleAt.After(now) {
				visible++
			}
		}
		reply(w, map[string]any{"Attributes": map[string]string{
			"ApproximateNumberOfMessages":           strconv.Itoa(visible),
			"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(len(s.queues[in.QueueURL]) - visible),
		}})
	default:
		fail(w, http.StatusBadRequest, "InvalidAction", "the fake does not answer "+op)
	}
}

// delete removes the message received under handle; an unknown handle is a no-op, as
// SQS deletes a message once.
func (s *Server) delete(url, handle string) {
	q := s.queues[url]
	for i, m := range q {
		if m.handle == handle && handle != "" {
			s.queues[url] = append(q[:i:i], q[i+1:]...)
			return
		}
	}
}

func reply(w http.ResponseWriter, v any) { _ = json.NewEncoder(w).Encode(v) }

func fail(w http.ResponseWriter, status int, kind, message string) {
	w.WriteHeader(status)
	reply(w, map[string]string{"__type": "com.amazonaws.sqs#" + kind, "message": message})
}

func digest(body string) string {
	sum := md5.Sum([]byte(body))
	return hex.EncodeToString(sum[:])
}

func token() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
