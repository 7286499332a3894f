package pooltest

import (
	"context"
	"testing"

	"github.com/aws/smithy-go/middleware"

	"github.com/sandbox-broker/broker/internal/ddblimits"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// NewBehindLimits returns a pool on a fresh table whose every request goes through a
// proxy applying DynamoDB's limits of cfg (package ddblimits), and the proxy, stopped
// when the test ends. The pool's client retries as a Lambda function's client does in
// AWS (ddblimits.AsInLambda); apiOptions are added to each of its calls. Seed the table
// through a pool on Client(), which DynamoDB Local serves without limits.
func NewBehindLimits(t testing.TB, cfg ddblimits.Config, o pool.Options, apiOptions ...func(*middleware.Stack) error) (*pool.Pool, *ddblimits.Proxy) {
	t.Helper()
	table := NewTable(t)
	proxy, err := ddblimits.Start(Endpoint(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Stop)
	db, err := pool.NewClient(context.Background(), pool.ClientOptions{Endpoint: proxy.URL, Region: "us-east-1", APIOptions: apiOptions})
	if err != nil {
		t.Fatal(err)
	}
	return pool.New(ddblimits.AsInLambda(db), table, o), proxy
}
