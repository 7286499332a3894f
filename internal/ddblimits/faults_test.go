package ddblimits_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/internal/ddblimits"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func exists(t *testing.T, tbl, pk string) bool {
	t.Helper()
	out, err := pooltest.Client().GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(tbl),
		Key: map[string]types.AttributeValue{"PK": s(pk), "SK": s("x")}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item != nil
}

// An injected 500 comes after DynamoDB Local carried the write out (its answer is lost);
// an injected 503 before (nothing happened). Both are counted by their code.
func TestInjectedErrors(t *testing.T) {
	for _, c := range []struct {
		cfg     ddblimits.Config
		code    string
		written bool
	}{
		{ddblimits.Config{InternalErrorRate: 1}, ddblimits.CodeInternalServerError, true},
		{ddblimits.Config{UnavailableRate: 1}, ddblimits.CodeServiceUnavailable, false},
	} {
		t.Run(c.code, func(t *testing.T) {
			proxy, db := start(t, c.cfg)
			tbl := table(t)
			err := put(db, tbl, "a", "")
			if !isStatus(map[bool]int{true: http.StatusInternalServerError, false: http.StatusServiceUnavailable}[c.written], c.code)(err) {
				t.Fatalf("%v, want %s", err, c.code)
			}
			if exists(t, tbl, "a") != c.written {
				t.Fatalf("item written: %v, want %v", !c.written, c.written)
			}
			if got := proxy.Counts().Refused[ddblimits.Refusal{Kind: ddblimits.Injected, Code: c.code}]; got != 1 {
				t.Fatalf("counts:\n%s", proxy.Counts())
			}
		})
	}
}

// With a share of requests injected, about that share fails; the faults are drawn from
// the seed, so two proxies of one seed fail the same requests.
func TestInjectedErrorRateAndSeed(t *testing.T) {
	failures := func() []bool {
		_, db := start(t, ddblimits.Config{UnavailableRate: 0.3, Seed: 7})
		var out []bool
		for range 200 {
			_, err := db.ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
			out = append(out, err != nil)
		}
		return out
	}
	a, b := failures(), failures()
	n := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("request %d: the same seed failed one and not the other", i)
		}
		if a[i] {
			n++
		}
	}
	if n < 30 || n > 90 { // 200 draws of 0.3: 60 ± 6.5, so this is beyond 4 deviations
		t.Fatalf("%d of 200 failed at a rate of 0.3", n)
	}
}

// Injected latency holds a request back before it is forwarded, and counts it.
func TestInjectedLatency(t *testing.T) {
	proxy, db := start(t, ddblimits.Config{LatencyRate: 1, Latency: time.Millisecond})
	tbl := table(t)
	if err := put(db, tbl, "a", ""); err != nil {
		t.Fatal(err)
	}
	if c := proxy.Counts(); c.Delayed != 1 || c.Requests != 1 {
		t.Fatalf("counts:\n%s", c)
	}
}

// The zero Config forwards everything as it is: the control plane, writes, a refused
// condition with DynamoDB Local's own error, every answer with a CRC32 the SDK checks. It
// reads nothing of its own and bills nothing.
func TestZeroConfigForwardsEverything(t *testing.T) {
	proxy, db := start(t, ddblimits.Config{})
	tbl := table(t)
	if err := put(db, tbl, "a", "g1"); err != nil {
		t.Fatal(err)
	}
	_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tbl), Item: itemOf("a", ""), ConditionExpression: aws.String("attribute_not_exists(PK)")})
	var ccf *types.ConditionalCheckFailedException
	if !errors.As(err, &ccf) {
		t.Fatalf("a refused condition: %v", err)
	}
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tbl)})
	if err != nil || aws.ToString(out.Table.TableName) != tbl {
		t.Fatalf("DescribeTable: %+v %v", out, err)
	}
	c := proxy.Counts()
	if c.Requests != 3 || len(c.Refused) != 0 || len(c.Units) != 0 || !strings.HasPrefix(c.String(), "3 requests, 0 SDK retries") {
		t.Fatalf("counts:\n%s", c)
	}
}
