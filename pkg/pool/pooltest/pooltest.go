// Package pooltest gives tests a real DynamoDB: one DynamoDB Local per test binary, started
// by the first test that asks for a table (or the endpoint, or the client), and a fresh
// table per test. A binary whose tests never ask starts no JVM.
//
//	func TestMain(m *testing.M) { pooltest.Main(m) }
//	func TestX(t *testing.T) { p := pooltest.New(t) ... }
//
// Main stops DynamoDB Local when the tests end, passed or failed; a panic or a -timeout kill
// takes it down with the binary (ddblocal's Pdeathsig). A binary that cannot start it (no
// Java, no node_modules) fails with one message saying what to install; nothing is skipped.
// BROKER_TEST_DYNAMODB_ENDPOINT reuses a running DynamoDB Local instead.
package pooltest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// javaFlags run a test binary's DynamoDB Local, which lives for one binary and is never
// warmed: C1 compilation only and the serial collector, instead of ddblocal's flags for a
// long-lived, warmed JVM. Measured on pkg/pool's tests (2 cores, busy): the JVM used 33–38 s
// of CPU against 44–45 s with the default flags; the test binary 9–11 s either way.
var javaFlags = []string{"-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xmx1g"}

var (
	// inMain is set while Main runs the tests: only then is a started server sure to be
	// stopped in order.
	inMain atomic.Bool
	tables atomic.Int64

	mu       sync.Mutex
	server   *ddblocal.Server // nil: not started, or an external endpoint
	endpoint string
	client   *dynamodb.Client
)

// Main runs the tests and stops DynamoDB Local afterwards if a test started it, also when
// tests fail.
func Main(m *testing.M) {
	inMain.Store(true)
	code := m.Run()
	mu.Lock()
	server.Stop()
	mu.Unlock()
	os.Exit(code)
}

// ensure starts DynamoDB Local, or connects to BROKER_TEST_DYNAMODB_ENDPOINT, on first use.
// A binary that cannot fails there and then, with the reason, as one that could not run its
// TestMain: every later test would fail for the same reason.
func ensure(who string) {
	mu.Lock()
	defer mu.Unlock()
	if client != nil {
		return
	}
	if !inMain.Load() {
		fail(who, fmt.Errorf("pooltest: call pooltest.Main from TestMain, which stops DynamoDB Local after the tests"))
	}
	ctx := context.Background()
	ep := os.Getenv("BROKER_TEST_DYNAMODB_ENDPOINT")
	if ep == "" {
		srv, err := ddblocal.Start(ctx, ddblocal.Options{JavaFlags: javaFlags})
		if err != nil {
			fail(who, fmt.Errorf("cannot start DynamoDB Local: %w", err))
		}
		server, ep = srv, srv.Endpoint
	}
	c, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: ep, Region: "us-east-1"})
	if err != nil {
		server.Stop()
		fail(who, fmt.Errorf("DynamoDB client: %w", err))
	}
	endpoint, client = ep, c
}

func fail(who string, err error) {
	fmt.Fprintf(os.Stderr, "FAIL: %s needs DynamoDB Local: %v\n", who, err)
	os.Exit(1)
}

// Endpoint is the DynamoDB Local URL of this test binary, started on first use.
func Endpoint() string {
	ensure("a caller of pooltest.Endpoint")
	return endpoint
}

// Client is a DynamoDB client for Endpoint, started on first use.
func Client() *dynamodb.Client {
	ensure("a caller of pooltest.Client")
	return client
}

// NewTable creates a fresh, uniquely named table without a stream and drops it when the
// test ends. A stream changes none of the table's answers, and on DynamoDB Local each table
// with one makes every later such table's writes slower (pool.CreateTableWithoutStream): a
// test that reads the stream asks for it (NewTableWithStream).
func NewTable(t testing.TB) string {
	t.Helper()
	return newTable(t, pool.CreateTableWithoutStream)
}

// NewTableWithStream is NewTable with the table's stream, as the CDK stack creates it.
func NewTableWithStream(t testing.TB) string {
	t.Helper()
	return newTable(t, pool.CreateTable)
}

func newTable(t testing.TB, create func(context.Context, *dynamodb.Client, string) error) string {
	t.Helper()
	ensure(t.Name())
	name := fmt.Sprintf("t%d-%s", tables.Add(1), unsafe.ReplaceAllString(t.Name(), "-"))
	if len(name) > 200 {
		name = name[:200]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := create(ctx, client, name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = client.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
	})
	return name
}

// New returns a pool with the default options on a fresh table.
func New(t testing.TB) *pool.Pool { return NewWith(t, pool.Options{}) }

// NewWith returns a pool with options o on a fresh table.
func NewWith(t testing.TB, o pool.Options) *pool.Pool {
	t.Helper()
	return pool.New(client, NewTable(t), o)
}

// NewWithStream returns a pool with options o on a fresh table with its stream.
func NewWithStream(t testing.TB, o pool.Options) *pool.Pool {
	t.Helper()
	return pool.New(client, NewTableWithStream(t), o)
}

// Clocked returns p's table seen through the clock now: a broker built on it allocates,
// expires and stamps history as of now (tests of time boundaries).
func Clocked(p *pool.Pool, now func() time.Time) *pool.Pool {
	return pool.New(Client(), p.Table(), pool.Options{Now: now})
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_.-]+`)

// ExpireTTLs does to p's table what DynamoDB's TTL process will have done by now, and
// returns how many items it deleted. DynamoDB deletes an item whose ttl attribute (the
// table's TTL attribute, pool.AttrTTL) is a top-level number of epoch seconds earlier
// than the current time and no more than five years earlier; it ignores any other value.
// It does so in the background, typically within two days, in no set order, and an item
// whose TTL is removed or moved later before then stays: so each delete here is
// conditioned on the ttl it read. Tests that need the order in which the sweeper may
// take the items call it with the times in between.
func ExpireTTLs(t testing.TB, p *pool.Pool, now time.Time) int {
	t.Helper()
	ctx := context.Background()
	oldest := now.AddDate(-5, 0, 0).Unix()
	deleted := 0
	pages := dynamodb.NewScanPaginator(client, &dynamodb.ScanInput{TableName: aws.String(p.Table()), ConsistentRead: aws.Bool(true)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range out.Items {
			ttl, ok := item[pool.AttrTTL].(*types.AttributeValueMemberN)
			if !ok {
				continue
			}
			at, err := strconv.ParseFloat(ttl.Value, 64)
			if err != nil || at >= float64(now.Unix()) || at < float64(oldest) {
				continue
			}
			_, err = client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
				TableName:                 aws.String(p.Table()),
				Key:                       map[string]types.AttributeValue{pool.AttrPK: item[pool.AttrPK], pool.AttrSK: item[pool.AttrSK]},
				ConditionExpression:       aws.String("#ttl = :ttl"),
				ExpressionAttributeNames:  map[string]string{"#ttl": pool.AttrTTL},
				ExpressionAttributeValues: map[string]types.AttributeValue{":ttl": ttl},
			})
			var moved *types.ConditionalCheckFailedException
			switch {
			case err == nil:
				deleted++
			case !errors.As(err, &moved):
				t.Fatal(err)
			}
		}
	}
	return deleted
}

// Check runs the invariant checker and fails the test on any violation.
func Check(t testing.TB, p *pool.Pool) pool.Census {
	t.Helper()
	census, err := p.CheckInvariants(context.Background())
	if err != nil {
		t.Fatalf("pool invariants violated:\n%v", err)
	}
	return census
}
