// Package apitest holds every API response a test sees to the OpenAPI document of the
// API (api/openapi.yaml): its status, headers and body, plus the envelope rules the
// document cannot express (request_id equals X-Request-ID, Retry-After equals
// retry_after).
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/sandbox-broker/broker/internal/ddblocal"
)

// The console's page and assets are text to the document, like /metrics.
func init() {
	for _, contentType := range []string{"text/html", "text/css", "text/javascript"} {
		openapi3filter.RegisterBodyDecoder(contentType, openapi3filter.PlainBodyDecoder)
	}
}

var (
	loadOnce sync.Once
	spec     *openapi3.T
	loadErr  error
)

// Spec loads and validates api/openapi.yaml once per test binary.
func Spec(t testing.TB) *openapi3.T {
	t.Helper()
	loadOnce.Do(func() {
		root, err := ddblocal.RepoRoot()
		if err != nil {
			loadErr = err
			return
		}
		loader := openapi3.NewLoader()
		if spec, loadErr = loader.LoadFromFile(filepath.Join(root, "api", "openapi.yaml")); loadErr == nil {
			loadErr = spec.Validate(context.Background())
		}
	})
	if loadErr != nil {
		t.Fatalf("api/openapi.yaml: %v", loadErr)
	}
	return spec
}

// Check validates a response of the operation (method, resource) — resource as the
// document's path template, e.g. /v1/sandboxes/{id} — against the document. A status the
// document does not list for the operation fails.
func Check(t testing.TB, method, resource string, status int, header http.Header, body []byte) {
	t.Helper()
	doc := Spec(t)
	item := doc.Paths.Find(resource)
	if item == nil || item.GetOperation(method) == nil {
		t.Fatalf("openapi: no operation %s %s", method, resource)
	}
	req := httptest.NewRequest(method, "http://127.0.0.1"+resource, nil)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request: req,
			Route:   &routers.Route{Spec: doc, Path: resource, PathItem: item, Method: method, Operation: item.GetOperation(method)},
		},
		Status:  status,
		Header:  header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Errorf("openapi: %s %s → %d does not match the document:\n%v\nbody: %s", method, resource, status, err, body)
	}
	if status >= 400 {
		checkEnvelopeRules(t, header, body)
	}
}

// CheckError validates an error answer that belongs to no operation of the document (an
// unknown route or method): the Error schema, the common headers and the envelope rules.
func CheckError(t testing.TB, status int, header http.Header, body []byte) {
	t.Helper()
	doc := Spec(t)
	if status < 400 {
		t.Errorf("want an error status, got %d", status)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Errorf("error body is not JSON: %v: %q", err, body)
		return
	}
	if err := doc.Components.Schemas["Error"].Value.VisitJSON(v); err != nil {
		t.Errorf("error body does not match the Error schema: %v: %s", err, body)
	}
	for name, ref := range doc.Components.Responses["InternalError"].Value.Headers {
		got := header.Get(name)
		if got == "" {
			t.Errorf("error answer lacks header %s", name)
			continue
		}
		if err := ref.Value.Schema.Value.VisitJSON(got); err != nil {
			t.Errorf("header %s: %v", name, err)
		}
	}
	checkEnvelopeRules(t, header, body)
}

// Detail is the envelope's detail object.
type Detail struct {
	Code       string `json:"code"`
	Message    string `json:"message"`
	RequestID  string `json:"request_id"`
	RetryAfter *int   `json:"retry_after"`
}

// DecodeError reads an error envelope.
func DecodeError(t testing.TB, body []byte) Detail {
	t.Helper()
	var env struct {
		Detail *Detail `json:"detail"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Detail == nil {
		t.Fatalf("not an error envelope (%v): %s", err, body)
	}
	return *env.Detail
}

func checkEnvelopeRules(t testing.TB, header http.Header, body []byte) {
	t.Helper()
	d := DecodeError(t, body)
	if got := header.Get("X-Request-ID"); got == "" || got != d.RequestID {
		t.Errorf("X-Request-ID %q differs from request_id %q", got, d.RequestID)
	}
	retry := header.Get("Retry-After")
	switch {
	case d.RetryAfter == nil && retry != "":
		t.Errorf("Retry-After %q without retry_after in the body", retry)
	case d.RetryAfter != nil && retry != strconv.Itoa(*d.RetryAfter):
		t.Errorf("Retry-After %q differs from retry_after %d", retry, *d.RetryAfter)
	}
}
