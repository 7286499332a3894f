package ddblimits_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/sandbox-broker/broker/internal/ddblimits"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// sdkClient is the AWS SDK for Go v2's DynamoDB client with every default of its own —
// retryer, retry quota, response checksums — pointed at the proxy. Its backoff is capped
// at a millisecond so a test does not wait out the throttling backoff; the capped
// retryer classifies errors and counts attempts as the default one does.
func sdkClient(t *testing.T, endpoint string) *dynamodb.Client {
	t.Helper()
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion("us-east-1"),
		awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("local", "local", "")))
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, time.Millisecond)
	})
}

// lambdaClient is the client pooltest.NewBehindLimits gives a pool: the project's local
// client, retrying as in AWS (ddblimits.AsInLambda), with the same capped backoff.
func lambdaClient(t *testing.T, endpoint string) *dynamodb.Client {
	t.Helper()
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: endpoint, Region: "us-east-1"})
	if err != nil {
		t.Fatal(err)
	}
	return dynamodb.New(ddblimits.AsInLambda(db).Options(), func(o *dynamodb.Options) {
		o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, time.Millisecond)
	})
}

// Each refusal the proxy makes, sent to the SDK's own DynamoDB client and to the pool's
// client behind limits: each retries exactly what AWS has the SDKs retry (developer
// guide, "Error handling with DynamoDB" and "Transaction conflict handling") — throttling
// and 5xx up to the client's four attempts, a cancelled transaction and a
// TransactionConflictException not at all — and hands the caller the error AWS would.
func TestSDKRetriesWhatAWSHasItRetry(t *testing.T) {
	type client struct {
		name string
		make func(*testing.T, string) *dynamodb.Client
	}
	clients := []client{{"SDK defaults", sdkClient}, {"pool behind limits", lambdaClient}}
	cases := []struct {
		name     string
		cfg      func(clk *testkit.Clock) ddblimits.Config
		prime    func(db *dynamodb.Client, tbl string) error // through a client of one attempt, under a clock that stands still
		call     func(db *dynamodb.Client, tbl string) error
		attempts int
		is       func(error) bool
	}{
		{
			name: "hot partition key: ProvisionedThroughputExceededException",
			cfg: func(clk *testkit.Clock) ddblimits.Config {
				return ddblimits.Config{PartitionLimits: true, Scale: milli, Now: clk.Now}
			},
			prime:    func(db *dynamodb.Client, tbl string) error { return put(db, tbl, "hot", "") },
			call:     func(db *dynamodb.Client, tbl string) error { return put(db, tbl, "hot", "") },
			attempts: 4, is: isType[*types.ProvisionedThroughputExceededException],
		},
		{
			name:     "table over its throughput: ThrottlingException",
			cfg:      func(clk *testkit.Clock) ddblimits.Config { return ddblimits.Config{TableWriteUnits: 1, Now: clk.Now} },
			prime:    func(db *dynamodb.Client, tbl string) error { return put(db, tbl, "a", "") },
			call:     func(db *dynamodb.Client, tbl string) error { return put(db, tbl, "b", "") },
			attempts: 4, is: isType[*types.ThrottlingException],
		},
		{
			name: "throttled transaction: TransactionCanceledException",
			cfg: func(clk *testkit.Clock) ddblimits.Config {
				return ddblimits.Config{PartitionLimits: true, Scale: milli, Now: clk.Now}
			},
			prime: func(db *dynamodb.Client, tbl string) error { return put(db, tbl, "hot", "") },
			call: func(db *dynamodb.Client, tbl string) error {
				_, err := db.TransactWriteItems(ctx, putTx(tbl, "hot"))
				return err
			},
			attempts: 1, is: isType[*types.TransactionCanceledException],
		},
		{
			name:  "transaction conflict: TransactionCanceledException",
			cfg:   func(clk *testkit.Clock) ddblimits.Config { return ddblimits.Config{Conflicts: true, Now: clk.Now} },
			prime: inFlight,
			call: func(db *dynamodb.Client, tbl string) error {
				_, err := db.TransactWriteItems(ctx, putTx(tbl, "x"))
				return err
			},
			attempts: 1, is: isType[*types.TransactionCanceledException],
		},
		{
			name:     "write of an item in a transaction: TransactionConflictException",
			cfg:      func(clk *testkit.Clock) ddblimits.Config { return ddblimits.Config{Conflicts: true, Now: clk.Now} },
			prime:    inFlight,
			call:     func(db *dynamodb.Client, tbl string) error { return put(db, tbl, "x", "") },
			attempts: 1, is: isType[*types.TransactionConflictException],
		},
		{
			name:     "500 InternalServerError",
			cfg:      func(*testkit.Clock) ddblimits.Config { return ddblimits.Config{InternalErrorRate: 1} },
			call:     func(db *dynamodb.Client, tbl string) error { return put(db, tbl, "a", "") },
			attempts: 4, is: isType[*types.InternalServerError],
		},
		{
			name:     "503 ServiceUnavailable",
			cfg:      func(*testkit.Clock) ddblimits.Config { return ddblimits.Config{UnavailableRate: 1} },
			call:     func(db *dynamodb.Client, tbl string) error { return put(db, tbl, "a", "") },
			attempts: 4, is: isStatus(http.StatusServiceUnavailable, ddblimits.CodeServiceUnavailable),
		},
	}
	for _, c := range cases {
		for _, cl := range clients {
			t.Run(c.name+"/"+cl.name, func(t *testing.T) {
				clk := newClock()
				proxy, once := start(t, c.cfg(clk))
				t.Cleanup(func() { clk.Advance(time.Hour) }) // ends a transaction left in flight
				tbl := table(t)
				if c.prime != nil {
					if err := c.prime(once, tbl); err != nil {
						t.Fatal(err)
					}
				}
				before := proxy.Counts()
				err := c.call(cl.make(t, proxy.URL), tbl)
				after := proxy.Counts()
				if !c.is(err) {
					t.Fatalf("error %v", err)
				}
				if got := after.Requests - before.Requests; got != c.attempts || after.Retries-before.Retries != c.attempts-1 {
					t.Fatalf("%d attempts (%d counted as retries), want %d", got, after.Retries-before.Retries, c.attempts)
				}
			})
		}
	}
}

// inFlight starts a transaction on item x that stays in flight while the test's clock
// stands still, and returns once it holds x (a write of x is refused).
func inFlight(db *dynamodb.Client, tbl string) error {
	go func() { _, _ = db.TransactWriteItems(ctx, putTx(tbl, "x")) }()
	for {
		err := put(db, tbl, "x", "")
		if isType[*types.TransactionConflictException](err) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func isType[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

func isStatus(status int, code string) func(error) bool {
	return func(err error) bool {
		var re *smithyhttp.ResponseError
		var api smithy.APIError
		return errors.As(err, &re) && re.HTTPStatusCode() == status && errors.As(err, &api) && api.ErrorCode() == code
	}
}

// AWSRetryer is the SDK's DynamoDB retryer but for the quota: as many attempts, the same
// backoff for an error that is not throttling (under 25 ms before the first retry) and for
// a throttle (under 1 s), the same classification of DynamoDB's errors by code (a 5xx is
// retried by its status, above).
func TestAWSRetryerIsTheSDKs(t *testing.T) {
	sdk := sdkClient(t, "http://127.0.0.1:1").Options().Retryer
	ours := ddblimits.AWSRetryer()
	if sdk.MaxAttempts() != ours.MaxAttempts() {
		t.Fatalf("attempts: SDK %d, AWSRetryer %d", sdk.MaxAttempts(), ours.MaxAttempts())
	}
	plain := &types.InternalServerError{}
	throttle := &types.ProvisionedThroughputExceededException{}
	for _, r := range []aws.Retryer{dynamodb.NewFromConfig(aws.Config{}).Options().Retryer, ours} {
		var plainMax, throttleMax time.Duration
		for range 500 {
			d, _ := r.RetryDelay(1, plain)
			plainMax = max(plainMax, d)
			d, _ = r.RetryDelay(1, throttle)
			throttleMax = max(throttleMax, d)
		}
		// 500 draws below half the bound each have odds of 2^-500.
		if plainMax > 25*time.Millisecond || plainMax < 12*time.Millisecond || throttleMax > time.Second || throttleMax < 500*time.Millisecond {
			t.Fatalf("%T: longest first backoff %v (not throttling), %v (throttling)", r, plainMax, throttleMax)
		}
		for _, err := range []error{throttle, &types.ThrottlingException{}} {
			if !r.IsErrorRetryable(err) {
				t.Fatalf("%T does not retry %T", r, err)
			}
		}
		for _, err := range []error{&types.TransactionCanceledException{}, &types.TransactionConflictException{}, &types.ConditionalCheckFailedException{}} {
			if r.IsErrorRetryable(err) {
				t.Fatalf("%T retries %T", r, err)
			}
		}
	}
}
