package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/api/apitest"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestMain(m *testing.M) { pooltest.Main(m) }

// TestAllocateBootstrapUnderRuntimeEmulator builds the real bootstrap of
// functions/allocate as it is deployed (static, lambda.norpc), runs it under the Lambda
// runtime interface emulator and invokes it with events/allocate.json: 201 from DynamoDB
// Local, then 200 for the replay of the same event.
func TestAllocateBootstrapUnderRuntimeEmulator(t *testing.T) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	rie := filepath.Join(root, "bin", "aws-lambda-rie")
	if _, err := os.Stat(rie); err != nil {
		t.Fatalf("the Lambda runtime interface emulator is not installed at %s: run `make tools` (or `make test`), which installs it from the Go module proxy", rie)
	}

	bootstrap := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc,grpcnotrace", "-trimpath", "-o", bootstrap, "./functions/allocate")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build functions/allocate: %v\n%s", err, out)
	}

	table := pooltest.NewTable(t)
	p := pool.New(pooltest.Client(), table, pool.Options{})
	if _, err := p.Create(context.Background(), pool.Account{ID: "2012224", Name: "lab-0001", ExternalID: "identity/accounts/3f1c9a52-0b7e-4d3a-9c1f-5e2d8b7a6c40"},
		pool.Actor{Kind: "job", Name: "sync"}); err != nil {
		t.Fatal(err)
	}

	addr, output := testkit.StartEmulator(t, rie, bootstrap,
		append(os.Environ(), "TABLE_NAME="+table, "DYNAMODB_ENDPOINT="+pooltest.Endpoint(), "AWS_REGION=us-east-1", "LOG_LEVEL=info"), "allocate")

	sample, err := os.ReadFile(filepath.Join(root, "events", "allocate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var resps []events.APIGatewayProxyResponse
	for range 2 {
		resps = append(resps, invoke(t, addr, sample))
	}
	for i, want := range []int{http.StatusCreated, http.StatusOK} {
		r := resps[i]
		if r.StatusCode != want {
			t.Fatalf("invocation %d: %d %s, want %d", i+1, r.StatusCode, r.Body, want)
		}
		h := http.Header{}
		for k, v := range r.Headers {
			h.Set(k, v)
		}
		apitest.Check(t, http.MethodPost, "/v1/allocate", r.StatusCode, h, []byte(r.Body))
		if r.Headers["X-Request-ID"] != "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" || r.Headers["Location"] != "/v1/sandboxes/2012224" {
			t.Fatalf("invocation %d headers %v", i+1, r.Headers)
		}
	}
	if resps[0].Body != resps[1].Body || !strings.Contains(resps[0].Body, `"sandbox_id":"2012224"`) || !strings.Contains(resps[0].Body, `"track_name":"dns-basics-lab"`) {
		t.Fatalf("bodies %s / %s", resps[0].Body, resps[1].Body)
	}
	s, err := p.Get(context.Background(), "2012224")
	if err != nil || s.Status != pool.Allocated || s.Owner != "participant-0001" || s.Client != "instruqt" {
		t.Fatalf("the table after the invocation: %+v %v", s, err)
	}
	if !strings.Contains(output(), `"msg":"request"`) || !strings.Contains(output(), `"status":201`) {
		t.Fatalf("the function wrote no request log line:\n%s", output())
	}
}

func invoke(t *testing.T, addr string, event []byte) events.APIGatewayProxyResponse {
	t.Helper()
	resp, err := http.Post("http://"+addr+"/2015-03-31/functions/function/invocations", "application/json", bytes.NewReader(event))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out events.APIGatewayProxyResponse
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("invoke: HTTP %d, %v", resp.StatusCode, err)
	}
	return out
}
