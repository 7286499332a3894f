package pool_test

import (
	"fmt"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestRunsListNewestFirstToTheLimit(t *testing.T) {
	// A page size of 2 makes Runs follow LastEvaluatedKey to reach the limit.
	p := pooltest.NewWith(t, pool.Options{PageSize: 2, HistoryTTL: 30 * 24 * time.Hour})
	start := time.Unix(1_800_000_000, 0).UTC()
	var want []pool.RunRecord
	for i := range 5 {
		r := pool.RunRecord{
			Job: "cleanup", RunID: fmt.Sprintf("run-%d", i), StartedAt: start.Add(time.Duration(i) * time.Minute),
			DurationMS: int64(100 * i), Outcome: "ok", Counts: map[string]int{"deleted": i},
		}
		if i == 3 {
			r.Outcome, r.Reason, r.Alarm, r.Errors = "partial", "csp circuit breaker open", "cleanup_breaker_open", []string{"HTTP 500"}
		}
		if err := p.RecordRun(ctx, r); err != nil {
			t.Fatal(err)
		}
		want = append([]pool.RunRecord{r}, want...)
	}
	// Another job's runs stay apart.
	if err := p.RecordRun(ctx, pool.RunRecord{Job: "sync", RunID: "s", StartedAt: start, Outcome: "ok"}); err != nil {
		t.Fatal(err)
	}

	got, err := p.Runs(ctx, "cleanup", 3)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want[:3]) {
		t.Fatalf("Runs(3):\n got %+v\nwant %+v", got, want[:3])
	}
	all, err := p.Runs(ctx, "cleanup", 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(all, want) {
		t.Fatalf("Runs(0) returned %d runs, want all 5 newest first", len(all))
	}

	// The record expires with the history TTL.
	out, err := pooltest.Client().Query(ctx, &dynamodb.QueryInput{
		TableName:                 aws.String(p.Table()),
		KeyConditionExpression:    aws.String("PK = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: "JOB#sync"}},
	})
	if err != nil || len(out.Items) != 1 {
		t.Fatalf("raw run item: %v (%d items)", err, len(out.Items))
	}
	ttl, _ := out.Items[0]["ttl"].(*types.AttributeValueMemberN)
	if ttl == nil || ttl.Value != strconv.FormatInt(start.Add(30*24*time.Hour).Unix(), 10) {
		t.Fatalf("ttl attribute %v, want start + 30 days", out.Items[0]["ttl"])
	}
	pooltest.Check(t, p)
}
