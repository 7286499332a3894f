package events_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/sandbox-broker/broker/internal/eventbridgefake"
	"github.com/sandbox-broker/broker/internal/eventcheck"
	"github.com/sandbox-broker/broker/internal/sqsfake"
	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/events"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestMain(m *testing.M) { pooltest.Main(m) }

var ctx = context.Background()

// bus is what a test of the events has: a table with its stream (DynamoDB Local), the
// poller reading it as Lambda's event source mapping would, the Deliverer the function
// runs, the fake EventBridge it publishes to and the fake SQS dead-letter queue.
type bus struct {
	pool     *pool.Pool
	clock    *testkit.Clock
	eb       *eventbridgefake.Server
	sqs      *sqsfake.Server
	dlqURL   string
	deliver  *events.Deliverer
	poller   *events.Poller
	replayer *events.Replayer
	logs     *testkit.Buffer
}

var t0 = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)

func newBus(t *testing.T) *bus {
	t.Helper()
	b := &bus{clock: testkit.NewClock(t0), logs: &testkit.Buffer{}}
	b.pool = pooltest.NewWithStream(t, pool.Options{Now: b.clock.Now})
	b.eb = eventbridgefake.Start(t)
	b.sqs = sqsfake.New()
	if err := b.sqs.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.sqs.Close() })
	b.dlqURL = b.sqs.QueueURL("broker-events-dlq")
	creds := credentials.NewStaticCredentialsProvider("test", "test", "")
	ebClient := eventbridge.New(eventbridge.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(b.eb.URL())})
	sqsClient := sqs.New(sqs.Options{Region: "us-east-1", Credentials: creds, BaseEndpoint: aws.String(b.sqs.URL())})
	publisher := events.NewEventBridge(ebClient, "broker-events")
	dlq := events.NewSQS(sqsClient, b.dlqURL)
	log := slog.New(slog.NewJSONHandler(b.logs, nil))
	b.deliver = &events.Deliverer{Bus: publisher, DeadLetters: dlq, DeadLetterAfter: 15 * time.Minute,
		Attempts: 3, Backoff: 5 * time.Millisecond, Now: time.Now, Log: log}
	streams := events.NewStreamsClient(pooltest.Client())
	arn, err := events.StreamARN(ctx, pooltest.Client(), b.pool.Table())
	if err != nil {
		t.Fatal(err)
	}
	b.poller = &events.Poller{Streams: streams, StreamARN: arn, FromStart: true, BatchSize: 100, Deliver: b.deliver.Deliver, Log: log}
	b.replayer = &events.Replayer{DeadLetters: dlq, Bus: publisher, Streams: streams, Limit: 1000}
	return b
}

// drain polls until a whole poll delivers nothing and no batch is left to retry.
func (b *bus) drain(t *testing.T) {
	t.Helper()
	quiet := 0
	for range 200 {
		n, err := b.poller.Poll(ctx)
		switch {
		case err != nil:
			quiet = 0
		case n == 0:
			quiet++
		default:
			quiet = 0
		}
		if quiet == 2 {
			return
		}
	}
	t.Fatal("the stream never went quiet")
}

// published is every event the fake EventBridge accepted, decoded, in acceptance order.
func (b *bus) published(t *testing.T) []events.Event {
	t.Helper()
	var out []events.Event
	for _, e := range b.eb.Events() {
		var ev events.Event
		if err := json.Unmarshal(e.Detail, &ev); err != nil {
			t.Fatalf("detail of %s: %v", e.DetailType, err)
		}
		if e.Source != events.Source || e.DetailType != string(ev.Type) || e.Bus != "broker-events" {
			t.Errorf("entry source %q detail-type %q bus %q for a %s event", e.Source, e.DetailType, e.Bus, ev.Type)
		}
		out = append(out, ev)
	}
	return out
}

// unique drops redeliveries as a consumer does, by event ID, keeping the first; it fails
// the test if two deliveries of one ID differ.
func unique(t *testing.T, evs []events.Event) []events.Event {
	t.Helper()
	first := map[string]events.Event{}
	var out []events.Event
	for _, e := range evs {
		if prev, ok := first[e.ID]; ok {
			a, _ := json.Marshal(prev)
			b, _ := json.Marshal(e)
			if !bytes.Equal(a, b) {
				t.Errorf("event %s delivered twice with different content:\n%s\n%s", e.ID, a, b)
			}
			continue
		}
		first[e.ID] = e
		out = append(out, e)
	}
	return out
}

// inOrder checks that each key's events came in increasing sequence.
func inOrder(t *testing.T, evs []events.Event) {
	t.Helper()
	last := map[string]int64{}
	for _, e := range evs {
		if prev, ok := last[e.Key()]; ok && e.Sequence <= prev {
			t.Errorf("%s (sequence %d) came after sequence %d of the same key", e.ID, e.Sequence, prev)
		}
		last[e.Key()] = e.Sequence
	}
}

// validate checks every event the fake EventBridge accepted against its type's schema,
// as the registry holds it, and returns how many it checked.
func validate(t *testing.T, eb *eventbridgefake.Server) int {
	t.Helper()
	n := 0
	for _, e := range eb.Events() {
		raw, _ := json.Marshal(e)
		if err := eventcheck.Validate(raw); err != nil {
			t.Errorf("%v\n%s", err, raw)
		}
		n++
	}
	return n
}

// typesOf lists the events' types in order.
func typesOf(evs []events.Event) []events.Type {
	out := make([]events.Type, len(evs))
	for i, e := range evs {
		out[i] = e.Type
	}
	return out
}

// of keeps the events of one sandbox.
func of(evs []events.Event, sandboxID string) []events.Event {
	return slices.DeleteFunc(slices.Clone(evs), func(e events.Event) bool { return e.Sandbox == nil || e.Sandbox.ID != sandboxID })
}
