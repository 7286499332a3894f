// Package eventfn builds the functions of the domain events (pkg/events, docs/events.md):
// Consumer, which Lambda's event source mapping hands the table stream's batches, and
// ReplayRoute, the admin route that publishes the dead letters again. They are the only
// functions that link the EventBridge and SQS clients.
package eventfn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/events"
	"github.com/sandbox-broker/broker/pkg/obs"
)

// Handler serves one batch of the table's stream and answers with the record to retry
// the batch from (ReportBatchItemFailures). Its error is only for a batch it cannot read.
type Handler func(ctx context.Context, batch events.Batch) (events.BatchResponse, error)

// Clients are the AWS clients of the events' functions.
type Clients struct {
	Bus         events.Publisher
	DeadLetters events.DeadLetters
	Streams     *dynamodbstreams.Client
}

// NewClients builds the bus and the dead-letter queue of cfg, and the DynamoDB Streams
// client, from the default AWS configuration (traced, as every AWS call).
func NewClients(ctx context.Context, cfg config.Events) (Clients, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return Clients{}, fmt.Errorf("load AWS config: %w", err)
	}
	awsCfg.APIOptions = append(awsCfg.APIOptions, obs.AWSAPIOptions()...)
	return Clients{
		Bus:         events.NewEventBridge(eventbridge.NewFromConfig(awsCfg), cfg.BusName),
		DeadLetters: events.NewSQS(sqs.NewFromConfig(awsCfg), cfg.DeadLetterURL),
		Streams:     dynamodbstreams.NewFromConfig(awsCfg),
	}, nil
}

// NewDeliverer is the Deliverer of cfg over c, logging to log.
func NewDeliverer(cfg config.Events, c Clients, log *slog.Logger) *events.Deliverer {
	return &events.Deliverer{Bus: c.Bus, DeadLetters: c.DeadLetters, DeadLetterAfter: cfg.DeadLetterAfter,
		Attempts: 3, Backoff: 100 * time.Millisecond, Now: time.Now, Log: log}
}

// Consumer is the Lambda handler of the function that consumes the table's stream
// (api.EventConsumerFunction): config.LoadEvents and the logs from env.
func Consumer(ctx context.Context, env config.Env, out io.Writer) (Handler, error) {
	o, obsErr := app.NewObservability(env, out)
	cfg, cfgErr := config.LoadEvents(env)
	if err := errors.Join(obsErr, cfgErr); err != nil {
		return nil, err
	}
	clients, err := NewClients(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return Serve(NewDeliverer(cfg, clients, o.Log), o.Log), nil
}

// Serve answers each batch with d, logging one line per batch (counts and the record
// to retry from, never an event's content).
func Serve(d *events.Deliverer, log *slog.Logger) Handler {
	return func(ctx context.Context, batch events.Batch) (events.BatchResponse, error) {
		records, err := batch.Decode()
		if err != nil {
			return events.BatchResponse{}, err
		}
		res, err := d.Deliver(ctx, records)
		attrs := []any{"records", len(records), "published", res.Published, "dead_lettered", res.DeadLettered, "skipped", res.Skipped}
		if res.RetryFrom != "" {
			attrs = append(attrs, "retry_from", res.RetryFrom)
		}
		if err != nil {
			attrs = append(attrs, "error", err.Error())
		}
		log.Info("stream batch", attrs...)
		return res.Response(), nil
	}
}

// ReplayRoute is the Lambda handler of a route with ReplaysEvents, with the clients its
// replayer needs.
func ReplayRoute(ctx context.Context, env config.Env, out io.Writer, name string) (api.LambdaHandler, error) {
	route, ok := api.RouteByName(name)
	if !ok || !route.ReplaysEvents {
		return nil, fmt.Errorf("app: %q is no route that replays events", name)
	}
	cfg, err := config.LoadEvents(env)
	var clients Clients
	if err == nil {
		clients, err = NewClients(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	replayer := Replayer{&events.Replayer{DeadLetters: clients.DeadLetters, Bus: clients.Bus, Streams: clients.Streams, Limit: cfg.ReplayLimit}}
	a, err := app.NewAPI(ctx, env, out, nil, nil, func(d *api.Deps) { d.Events = replayer })
	if err != nil {
		return nil, err
	}
	return a.Function(name)
}

// Replayer is an events.Replayer as the replay route calls it (api.EventReplayer).
type Replayer struct {
	R *events.Replayer
}

func (r Replayer) Replay(ctx context.Context) (wire.EventReplay, []string, error) {
	res, err := r.R.Replay(ctx)
	return wire.EventReplay{Messages: res.Messages, Published: res.Published, Deleted: res.Deleted, Kept: res.Kept}, res.Errors, err
}
