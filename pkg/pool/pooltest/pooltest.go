// Package pooltest gives tests a real DynamoDB: one DynamoDB Local per test binary,
// started in TestMain, and a fresh table per test.
//
//	func TestMain(m *testing.M) { pooltest.Main(m) }
//	func TestX(t *testing.T) { p := pooltest.New(t) ... }
//
// A missing Java or node_modules fails the binary with a message saying what to install;
// nothing is skipped. BROKER_TEST_DYNAMODB_ENDPOINT reuses a running DynamoDB Local.
package pooltest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/internal/ddblocal"
	"github.com/sandbox-broker/broker/internal/ddblocal/warmup"
	"github.com/sandbox-broker/broker/pkg/pool"
)

var (
	endpoint string
	client   *dynamodb.Client
	tables   atomic.Int64
)

// Main starts DynamoDB Local, runs the tests and stops it, also when tests fail.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	endpoint = os.Getenv("BROKER_TEST_DYNAMODB_ENDPOINT")
	if endpoint == "" {
		srv, err := ddblocal.Start(ctx, ddblocal.Options{})
		if err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: cannot start DynamoDB Local: %v\n", err)
			return 1
		}
		defer srv.Stop()
		endpoint = srv.Endpoint
	}
	var err error
	client, err = pool.NewClient(ctx, pool.ClientOptions{Endpoint: endpoint, Region: "us-east-1"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: DynamoDB client: %v\n", err)
		return 1
	}
	if err := warmup.Run(ctx, client, 1); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: warm up DynamoDB Local: %v\n", err)
		return 1
	}
	return m.Run()
}

// Endpoint is the DynamoDB Local URL of this test binary.
func Endpoint() string { return endpoint }

// Client is a DynamoDB client for Endpoint.
func Client() *dynamodb.Client { return client }

// NewTable creates a fresh, uniquely named table and drops it when the test ends.
func NewTable(t testing.TB) string {
	t.Helper()
	if client == nil {
		t.Fatal("pooltest: DynamoDB Local is not running: call pooltest.Main from TestMain")
	}
	name := fmt.Sprintf("t%d-%s", tables.Add(1), unsafe.ReplaceAllString(t.Name(), "-"))
	if len(name) > 200 {
		name = name[:200]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pool.CreateTable(ctx, client, name); err != nil {
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
	return pool.New(client, NewTable(t), o)
}

// Clocked returns p's table seen through the clock now: a broker built on it allocates,
// expires and stamps history as of now (tests of time boundaries).
func Clocked(p *pool.Pool, now func() time.Time) *pool.Pool {
	return pool.New(client, p.Table(), pool.Options{Now: now})
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
