package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// StreamARN is the ARN of table's stream, or an error when it has none.
func StreamARN(ctx context.Context, db *dynamodb.Client, table string) (string, error) {
	out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)})
	if err != nil {
		return "", fmt.Errorf("events: describe table %s: %w", table, err)
	}
	if out.Table.LatestStreamArn == nil || out.Table.StreamSpecification == nil || !aws.ToBool(out.Table.StreamSpecification.StreamEnabled) {
		return "", fmt.Errorf("events: table %s has no stream: enable one with view type NEW_AND_OLD_IMAGES", table)
	}
	return *out.Table.LatestStreamArn, nil
}

// Poller reads a table's stream shard by shard, as Lambda's event source mapping does,
// and hands each batch to Deliver: a batch answered with RetryFrom is read again from
// that record, one that failed outright from its first. The local stack runs it (with the
// Deliverer the Lambda function runs), and so do the tests.
type Poller struct {
	Streams   *dynamodbstreams.Client
	StreamARN string
	// FromStart reads each shard from its oldest record (TRIM_HORIZON) rather than from
	// the records written after the poller started (LATEST).
	FromStart bool
	BatchSize int32
	Interval  time.Duration
	Deliver   func(ctx context.Context, records []Record) (Result, error)
	Log       *slog.Logger

	shards map[string]*shardState
}

type shardState struct {
	parent   string
	iterator *string
	// last is the sequence number of the last record delivered: an iterator that expired
	// (after 15 minutes) is taken again after it.
	last string
	done bool
}

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	for {
		if _, err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.Log.Warn("stream poll failed", "error", err.Error())
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(p.Interval):
		}
	}
}

// Poll reads every shard once, parents before their children, and delivers what it
// read; it returns how many records it delivered.
func (p *Poller) Poll(ctx context.Context) (int, error) {
	if err := p.discover(ctx); err != nil {
		return 0, err
	}
	total := 0
	for progress := true; progress; {
		progress = false
		for id, s := range p.shards {
			if s.done || (s.parent != "" && p.shards[s.parent] != nil && !p.shards[s.parent].done) {
				continue
			}
			n, closed, err := p.readShard(ctx, id, s)
			total += n
			if err != nil {
				return total, err
			}
			if closed {
				s.done, progress = true, true
			}
		}
	}
	return total, nil
}

func (p *Poller) discover(ctx context.Context) error {
	if p.shards == nil {
		p.shards = map[string]*shardState{}
	}
	var start *string
	for {
		out, err := p.Streams.DescribeStream(ctx, &dynamodbstreams.DescribeStreamInput{StreamArn: aws.String(p.StreamARN), ExclusiveStartShardId: start})
		if err != nil {
			return fmt.Errorf("events: describe stream: %w", err)
		}
		for _, sh := range out.StreamDescription.Shards {
			id := aws.ToString(sh.ShardId)
			if _, ok := p.shards[id]; !ok {
				p.shards[id] = &shardState{parent: aws.ToString(sh.ParentShardId)}
			}
		}
		if start = out.StreamDescription.LastEvaluatedShardId; start == nil {
			return nil
		}
	}
}

// readShard delivers the shard's records until it has no more for now; closed reports
// a shard that will never have more.
func (p *Poller) readShard(ctx context.Context, id string, s *shardState) (n int, closed bool, err error) {
	if s.iterator == nil {
		kind, after := types.ShardIteratorTypeLatest, ""
		switch {
		case s.last != "":
			kind, after = types.ShardIteratorTypeAfterSequenceNumber, s.last
		case p.FromStart || s.parent != "":
			kind = types.ShardIteratorTypeTrimHorizon // a child shard holds what came after its parent
		}
		if s.iterator, err = p.iterator(ctx, id, kind, after); err != nil {
			return 0, false, err
		}
	}
	for {
		out, err := p.Streams.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: s.iterator, Limit: aws.Int32(p.BatchSize)})
		var expired *types.ExpiredIteratorException
		if errors.As(err, &expired) {
			s.iterator = nil
			return n, false, nil
		}
		if err != nil {
			return n, false, fmt.Errorf("events: get records of %s: %w", id, err)
		}
		if len(out.Records) == 0 {
			s.iterator = out.NextShardIterator
			return n, out.NextShardIterator == nil, nil
		}
		records := make([]Record, len(out.Records))
		for i, sr := range out.Records {
			if records[i], err = FromStream(sr); err != nil {
				return n, false, err
			}
		}
		res, derr := p.Deliver(ctx, records)
		switch {
		case res.RetryFrom != "":
			// As the event source mapping does: the records before it are done, the rest
			// is read again from it.
			if i := indexOf(records, res.RetryFrom); i > 0 {
				n, s.last = n+i, records[i-1].Sequence
			}
			s.iterator, err = p.iterator(ctx, id, types.ShardIteratorTypeAtSequenceNumber, res.RetryFrom)
			if err == nil {
				err = derr
			}
			return n, false, err
		case derr != nil:
			s.iterator, err = p.iterator(ctx, id, types.ShardIteratorTypeAtSequenceNumber, records[0].Sequence)
			return n, false, errors.Join(derr, err)
		}
		n, s.last = n+len(records), records[len(records)-1].Sequence
		s.iterator = out.NextShardIterator
		if s.iterator == nil {
			return n, true, nil
		}
	}
}

func (p *Poller) iterator(ctx context.Context, shard string, kind types.ShardIteratorType, at string) (*string, error) {
	in := &dynamodbstreams.GetShardIteratorInput{StreamArn: aws.String(p.StreamARN), ShardId: aws.String(shard), ShardIteratorType: kind}
	if at != "" {
		in.SequenceNumber = aws.String(at)
	}
	out, err := p.Streams.GetShardIterator(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("events: shard iterator of %s: %w", shard, err)
	}
	return out.ShardIterator, nil
}

func indexOf(records []Record, sequence string) int {
	for i, r := range records {
		if r.Sequence == sequence {
			return i
		}
	}
	return 0
}

// ReadRange reads the records of one shard from sequence number first to last, both
// included: the batch a FailedBatch names, while the stream still holds it (24 hours).
func ReadRange(ctx context.Context, client *dynamodbstreams.Client, streamARN, shard, first, last string) ([]Record, error) {
	p := Poller{Streams: client, StreamARN: streamARN}
	it, err := p.iterator(ctx, shard, types.ShardIteratorTypeAtSequenceNumber, first)
	if err != nil {
		return nil, err
	}
	var out []Record
	for empty := 0; it != nil && empty < 10; {
		page, err := client.GetRecords(ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: it})
		if err != nil {
			return nil, fmt.Errorf("events: get records of %s: %w", shard, err)
		}
		if len(page.Records) == 0 {
			empty++
		}
		for _, sr := range page.Records {
			r, err := FromStream(sr)
			if err != nil {
				return nil, err
			}
			if sequenceAfter(r.Sequence, last) {
				return out, nil
			}
			out = append(out, r)
		}
		it = page.NextShardIterator
	}
	return out, nil
}

// sequenceAfter compares two sequence numbers, decimal strings of any length.
func sequenceAfter(a, b string) bool {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return len(a) > len(b)
	}
	return a > b
}

// NewStreamsClient is a DynamoDB Streams client that talks to where db does: its region,
// credentials, endpoint (DynamoDB Local serves streams on its own port), HTTP client,
// retryer and middleware.
func NewStreamsClient(db *dynamodb.Client) *dynamodbstreams.Client {
	o := db.Options()
	return dynamodbstreams.New(dynamodbstreams.Options{
		Region: o.Region, Credentials: o.Credentials, BaseEndpoint: o.BaseEndpoint, HTTPClient: o.HTTPClient,
		APIOptions: o.APIOptions, Retryer: o.Retryer,
	})
}

// Shards lists the IDs of the stream's shards.
func Shards(ctx context.Context, client *dynamodbstreams.Client, streamARN string) ([]string, error) {
	p := Poller{Streams: client, StreamARN: streamARN}
	if err := p.discover(ctx); err != nil {
		return nil, err
	}
	var out []string
	for id := range p.shards {
		out = append(out, id)
	}
	return out, nil
}
