package jobs_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/smithy-go/middleware"

	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// operationCounter counts the DynamoDB calls the code makes. It counts in the Initialize
// step, which runs once per call before the SDK's retry loop: a request the SDK retries (a
// connection reset or a lock timeout of DynamoDB Local on a busy machine) is still one call.
type operationCounter struct{ n atomic.Int64 }

func (c *operationCounter) register(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("CountOperations",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.n.Add(1)
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// oneServerError answers the request numbered failAt with an HTTP 500, a DynamoDB
// InternalServerError the SDK retries, and passes every other to DynamoDB Local.
type oneServerError struct {
	failAt int64
	sent   atomic.Int64
}

func (d *oneServerError) Do(r *http.Request) (*http.Response, error) {
	if d.sent.Add(1) != d.failAt {
		return http.DefaultClient.Do(r)
	}
	const body = `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"injected by the test"}`
	return &http.Response{
		StatusCode: http.StatusInternalServerError, Status: "500 Internal Server Error", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header:        http.Header{"Content-Type": {"application/x-amz-json-1.0"}},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)), Request: r,
	}, nil
}

// A sync of unchanged accounts writes nothing: it costs the lease (put, delete), the run
// record and the pool read, one query per StatusIndex shard of each live status plus one
// per further 1 MB page. Tombstones are not read. The accounts outnumber those 43 calls
// nearly three times: a call per account, or per few accounts, would show.
func TestSyncOfUnchangedAccountsRequestCount(t *testing.T) {
	const n = 120
	accounts := cspfake.Generate(n, nil)
	e := newJobEnv(t, envOptions{accounts: accounts})
	wantCounts(t, e.run(t, "sync"), map[string]int{"created": n})

	// One request of the pool read is answered 500 and retried: the count must not see it.
	counted, transport := &operationCounter{}, &oneServerError{failAt: 10}
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: pooltest.Endpoint(), Region: "us-east-1",
		APIOptions: []func(*middleware.Stack) error{counted.register}, HTTPClient: transport})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := jobs.NewRunner(jobs.Deps{
		Pool: pool.New(db, e.pool.Table(), pool.Options{Now: e.clock.Now}), CSP: e.csp, PoolConfig: poolCfg, Config: e.cfg,
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := runner.Run(ctx, "sync")
	if err != nil {
		t.Fatal(err)
	}
	wantCounts(t, sum, map[string]int{"unchanged": n, "created": 0, "refreshed": 0})
	// 3 for the lease and the run record, 5 live statuses of 8 shards under 1 MB each.
	want := int64(3 + len(pool.LiveStatuses)*pool.Shards)
	t.Logf("a sync of %d unchanged accounts made %d DynamoDB calls", n, counted.n.Load())
	if got := counted.n.Load(); got != want {
		t.Fatalf("a sync of %d unchanged accounts made %d DynamoDB calls, want %d", n, got, want)
	}
	if sent := transport.sent.Load(); sent < want+1 {
		t.Fatalf("%d requests sent for %d calls: the injected 500 was not retried", sent, want)
	}
	pooltest.Check(t, e.pool)
}
