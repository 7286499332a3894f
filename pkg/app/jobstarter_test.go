package app_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/trigger"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// invokeRecorder is an HTTP server speaking Lambda's Invoke API, reached through the SDK's
// standard endpoint override; it records each invoke and answers with status.
type invokeRecorder struct {
	mu      sync.Mutex
	invokes []recordedInvoke
	status  int
}

type recordedInvoke struct {
	path, invocationType string
	payload              []byte
}

func (r *invokeRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.invokes = append(r.invokes, recordedInvoke{req.URL.Path, req.Header.Get("X-Amz-Invocation-Type"), body})
	status := r.status
	r.mu.Unlock()
	if status != http.StatusAccepted {
		w.Header().Set("X-Amzn-ErrorType", "AccessDeniedException")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"Type":"User","message":"not authorized to perform lambda:InvokeFunction"}`)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func sampleEvent(t *testing.T, function string) events.APIGatewayProxyRequest {
	t.Helper()
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "events", function+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayProxyRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// The sync trigger's function as it is deployed: its sample event answers 202 with the
// request ID as run ID, after an asynchronous invoke (InvocationType Event) of the function
// named by JOB_FUNCTION_SYNC with {"run_id": ...}, the JobTrigger the job function reads.
func TestTriggerRouteInvokesItsJobAsynchronously(t *testing.T) {
	lambdaAPI := &invokeRecorder{status: http.StatusAccepted}
	srv := httptest.NewServer(lambdaAPI)
	defer srv.Close()
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", srv.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")

	env := testkit.Env(map[string]string{
		"TABLE_NAME": pooltest.NewTable(t), "DYNAMODB_ENDPOINT": pooltest.Endpoint(), api.JobFunctionEnv("sync"): "broker-sync",
	})
	handler, err := trigger.Route(context.Background(), env, io.Discard, "admin-sync")
	if err != nil {
		t.Fatal(err)
	}
	ev := sampleEvent(t, "admin-sync")
	resp, err := handler(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	header := http.Header{}
	for k, v := range resp.Headers {
		header.Set(k, v)
	}
	apitest.Check(t, "POST", "/v1/admin/sync", resp.StatusCode, header, []byte(resp.Body))
	var started map[string]string
	if err := json.Unmarshal([]byte(resp.Body), &started); err != nil || resp.StatusCode != http.StatusAccepted ||
		started["job"] != "sync" || started["run_id"] != ev.RequestContext.RequestID {
		t.Fatalf("answer %d %s", resp.StatusCode, resp.Body)
	}
	if len(lambdaAPI.invokes) != 1 {
		t.Fatalf("%d invokes, want 1", len(lambdaAPI.invokes))
	}
	inv := lambdaAPI.invokes[0]
	var trigger app.JobTrigger
	if err := json.Unmarshal(inv.payload, &trigger); err != nil || inv.path != "/2015-03-31/functions/broker-sync/invocations" ||
		inv.invocationType != "Event" || trigger.RunID != started["run_id"] {
		t.Fatalf("invoke %s %q %s", inv.path, inv.invocationType, inv.payload)
	}

	// Lambda refuses the invoke: a 503 in the envelope, no internals.
	lambdaAPI.status = http.StatusForbidden
	resp, _ = handler(context.Background(), ev)
	if resp.StatusCode != http.StatusServiceUnavailable || strings.Contains(resp.Body, "InvokeFunction") {
		t.Fatalf("a refused invoke: %d %s", resp.StatusCode, resp.Body)
	}
}

func TestTriggerRouteNeedsItsJobsFunctionName(t *testing.T) {
	_, err := trigger.Route(context.Background(), testkit.Env(nil), io.Discard, "admin-cleanup")
	for _, name := range []string{"JOB_FUNCTION_CLEANUP", "TABLE_NAME"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("the start-up error does not name %s: %v", name, err)
		}
	}
	if _, err := trigger.Route(context.Background(), testkit.Env(nil), io.Discard, "no-such-route"); err == nil {
		t.Error("trigger.Route accepted an unknown route")
	}
}
