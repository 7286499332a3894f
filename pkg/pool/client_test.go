package pool_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/smithy-go"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// lockTimeoutAnswer is DynamoDB Local's answer to a request that waited too long for a
// table's lock, as it sends it (TestDynamoDBLocalsLockWaitIsSentAgain in internal/ddblocal
// gets it from a frozen DynamoDB Local).
const lockTimeoutAnswer = `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","Message":"This action timed out because it too long waiting for a lock. This request will succeed in actual DynamoDB API"}`

// refusingProxy stands in front of the test binary's DynamoDB Local on loopback and
// answers the first refusals TransactWriteItems requests with 500 and body instead of
// forwarding them; it records the SDK attempt of every TransactWriteItems it receives.
type refusingProxy struct {
	body     string
	refusals int

	mu       sync.Mutex
	attempts []string
}

func startRefusingProxy(t *testing.T, body string, refusals int) (*refusingProxy, string) {
	t.Helper()
	p := &refusingProxy{body: body, refusals: refusals}
	upstream, err := url.Parse(pooltest.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(upstream)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".TransactWriteItems") {
			forward.ServeHTTP(w, r)
			return
		}
		p.mu.Lock()
		p.attempts = append(p.attempts, strings.Split(r.Header.Get("Amz-Sdk-Request"), ";")[0])
		refuse := len(p.attempts) <= p.refusals
		p.mu.Unlock()
		if !refuse {
			forward.ServeHTTP(w, r)
			return
		}
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = io.WriteString(w, p.body)
	}))
	t.Cleanup(srv.Close)
	return p, srv.URL
}

func (p *refusingProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.attempts...)
}

// The client of DynamoDB Local sends a request refused with DynamoDB Local's lock-wait
// timeout again, beyond the SDK's three attempts and under its first, until it goes
// through; any other 500 it leaves to the SDK, which makes its usual three attempts.
func TestLocalClientSendsALockWaitTimeoutAgain(t *testing.T) {
	t.Parallel()
	table := pooltest.NewTable(t)
	sandbox := account(1)
	create := func(t *testing.T, endpoint string) error {
		db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: endpoint, Region: "us-east-1"})
		if err != nil {
			t.Fatal(err)
		}
		_, err = pool.New(db, table, pool.Options{}).Create(ctx, sandbox, syncJob)
		return err
	}

	t.Run("lock-wait timeouts", func(t *testing.T) {
		const refusals = 5 // more than the SDK's attempts
		proxy, endpoint := startRefusingProxy(t, lockTimeoutAnswer, refusals)
		if err := create(t, endpoint); err != nil {
			t.Fatalf("create after %d lock-wait timeouts: %v", refusals, err)
		}
		if _, err := pool.New(pooltest.Client(), table, pool.Options{}).Get(ctx, sandbox.ID); err != nil {
			t.Fatalf("the sandbox is not in the table: %v", err)
		}
		want := strings.Split(strings.Repeat("attempt=1,", refusals+1), ",")[:refusals+1]
		if got := proxy.seen(); strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("TransactWriteItems sent as %v, want %v: every send under the SDK's first attempt", got, want)
		}
	})

	for name, body := range map[string]string{
		"DynamoDB's internal error":      `{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}`,
		"DynamoDB Local's unknown error": `{"__type":"com.amazonaws.dynamodb.v20120810#InternalFailure","message":"The request processing has failed because of an unknown error, exception or failure."}`,
	} {
		t.Run(name, func(t *testing.T) {
			proxy, endpoint := startRefusingProxy(t, body, 100)
			err := create(t, endpoint)
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || !strings.HasPrefix(apiErr.ErrorCode(), "Internal") {
				t.Fatalf("create against a DynamoDB answering 500: %v", err)
			}
			if got := proxy.seen(); strings.Join(got, ",") != "attempt=1,attempt=2,attempt=3" {
				t.Fatalf("TransactWriteItems sent as %v, want the SDK's three attempts, once each", got)
			}
		})
	}
}
