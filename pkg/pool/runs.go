package pool

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
)

// RunRecord is the stored summary of one run of a background job. Runs of a job share the
// partition JOB#<job> and sort by start time, so the admin API reads the last ones with
// one query; they expire with the history TTL.
type RunRecord struct {
	Job        string         `dynamodbav:"job"`
	RunID      string         `dynamodbav:"run_id"`
	StartedAt  time.Time      `dynamodbav:"started_at"`
	DurationMS int64          `dynamodbav:"duration_ms"`
	Outcome    string         `dynamodbav:"outcome"`
	Reason     string         `dynamodbav:"reason,omitempty"`
	Alarm      string         `dynamodbav:"alarm,omitempty"`
	Counts     map[string]int `dynamodbav:"counts,omitempty"`
	Errors     []string       `dynamodbav:"errors,omitempty"`
}

const (
	prefixJob = "JOB#"
	prefixRun = "RUN#"
)

// RecordRun stores a run's summary. The sort key is the zero-padded start time in
// nanoseconds plus the run ID, so runs list in start order and two runs never collide.
func (p *Pool) RecordRun(ctx context.Context, r RunRecord) error {
	item, err := attributevalue.MarshalMap(r)
	if err != nil {
		return err
	}
	for k, v := range key(prefixJob+r.Job, fmt.Sprintf("%s%020d#%s", prefixRun, r.StartedAt.UnixNano(), r.RunID)) {
		item[k] = v
	}
	item[AttrTTL] = av(r.StartedAt.Add(p.historyTTL).Unix())
	_, err = p.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(p.table), Item: item})
	if err != nil {
		return wrapAPIError("record run of "+r.Job, err)
	}
	return nil
}

// Runs lists the recorded runs of a job, newest first, at most limit of them (all when
// limit <= 0).
func (p *Pool) Runs(ctx context.Context, job string, limit int) ([]RunRecord, error) {
	in := &dynamodb.QueryInput{ScanIndexForward: aws.Bool(false)}
	if limit > 0 {
		in.Limit = aws.Int32(int32(min(limit, 1000)))
	}
	var out []RunRecord
	for r, err := range decode[RunRecord](p.itemsUnder(ctx, prefixJob+job, prefixRun, in)) {
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		if len(out) == limit {
			break
		}
	}
	return out, nil
}
