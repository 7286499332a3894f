package local

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sandbox-broker/broker/internal/sqsfake"
	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/eventfn"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/events"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// streamPollInterval is how often the poller reads each shard: as often as Lambda's event
// source mapping polls a stream (four times a second).
const streamPollInterval = 250 * time.Millisecond

// startEvents runs the domain events as in AWS, on DynamoDB Local's stream: a poller
// reads the table's stream shard by shard, as the event source mapping does, and hands
// each batch to the publish-events function, whose instances are built as eventfn.Consumer
// builds them, with the stack's bus and queue (eventfn.Serve). The bus is the
// JSON-lines file EVENTS_FILE; the dead-letter queue a fake SQS, which the replay route
// (admin-replay-events) reads. Without a stream on the table (an external one), events
// are off and the banner says why.
func (s *Stack) startEvents(ctx context.Context, cfg config.Local, env config.Env, logs io.Writer, endpoint string) (part, error) {
	db, err := pool.NewClient(ctx, pool.ClientOptions{Endpoint: endpoint, Region: "us-east-1"})
	if err != nil {
		return part{}, err
	}
	arn, err := events.StreamARN(ctx, db, cfg.TableName)
	if err != nil {
		return part{"Events", "off", err.Error()}, nil
	}
	sink, err := events.OpenFileSink(cfg.EventsFile)
	if err != nil {
		return part{}, err
	}
	s.shutdowns = append(s.shutdowns, func() { _ = sink.Close() })
	dlq := sqsfake.New()
	if err := dlq.Start("127.0.0.1:0"); err != nil {
		return part{}, err
	}
	s.shutdowns = append(s.shutdowns, func() { _ = dlq.Close() })
	queue := events.NewSQS(sqs.New(sqs.Options{Region: "us-east-1", BaseEndpoint: aws.String(dlq.URL()),
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", "")}), dlq.QueueURL("sandbox-broker-events-dlq"))
	streams := events.NewStreamsClient(db)
	consumer, err := addFunction(ctx, s.lambda, api.EventConsumerFunction, 0, func(context.Context) (handler[events.Batch, events.BatchResponse], error) {
		o, err := app.NewObservability(env, logs)
		if err != nil {
			return nil, err
		}
		return eventfn.Serve(eventfn.NewDeliverer(config.Events{DeadLetterAfter: 15 * time.Minute},
			eventfn.Clients{Bus: sink, DeadLetters: queue}, o.Log), o.Log), nil
	})
	if err != nil {
		return part{}, err
	}
	poller := &events.Poller{Streams: streams, StreamARN: arn, BatchSize: 100, Interval: streamPollInterval, Log: s.log.With("function", api.EventConsumerFunction),
		Deliver: func(ctx context.Context, records []events.Record) (events.Result, error) {
			batch := events.Batch{Records: make([]events.LambdaRecord, len(records))}
			for i, r := range records {
				batch.Records[i] = r.Lambda()
			}
			resp, err := consumer.invoke(ctx, batch)
			if len(resp.BatchItemFailures) > 0 {
				return events.Result{RetryFrom: resp.BatchItemFailures[0].ItemIdentifier}, err
			}
			return events.Result{}, err
		}}
	// The first poll takes each shard's position before anything else writes: the events
	// of the first sync are the first in the file.
	if _, err := poller.Poll(ctx); err != nil {
		return part{}, err
	}
	pollCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = poller.Run(pollCtx)
	}()
	s.shutdowns = append(s.shutdowns, func() { cancel(); <-done })
	s.replayer = eventfn.Replayer{R: &events.Replayer{DeadLetters: queue, Bus: sink, Streams: streams, Limit: 500}}
	return part{"Events", "started", fmt.Sprintf("%s — the table's stream as Lambda reads it; dead letters in a fake SQS at %s; watch: go run ./cmd/brokerctl events --follow",
		sink.Path(), dlq.URL())}, nil
}

// withEvents gives the API the replayer of the events' dead-letter queue, once
// startEvents made one.
func (s *Stack) withEvents(d *api.Deps) {
	if s.replayer != nil {
		d.Events = s.replayer
	}
}
