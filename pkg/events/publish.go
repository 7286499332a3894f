package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
)

// MaxBatch is the most events one Publish takes: PutEvents' limit of entries per call.
const MaxBatch = 10

// Publisher puts events on a bus: EventBridge in AWS, the local stack's sink on a laptop.
// Publish takes at most MaxBatch events and returns one error per event, nil for each the
// bus accepted.
type Publisher interface {
	Publish(ctx context.Context, events []Event) []error
}

// EntryError is the bus's refusal of one event (PutEvents' ErrorCode and ErrorMessage).
type EntryError struct {
	Code, Message string
}

func (e *EntryError) Error() string { return "the bus refused the event: " + e.Code + ": " + e.Message }

// Permanent reports whether the bus will refuse the event again, whenever asked: only
// InternalFailure and ThrottlingException are worth retrying (PutEventsResultEntry). A
// failed call (no answer per entry) is retried.
func Permanent(err error) bool {
	var ee *EntryError
	return errors.As(err, &ee) && ee.Code != "InternalFailure" && ee.Code != "ThrottlingException"
}

// EventBridge publishes to one event bus with PutEvents.
type EventBridge struct {
	client *eventbridge.Client
	bus    string
}

// NewEventBridge publishes on bus (its name or ARN) with client.
func NewEventBridge(client *eventbridge.Client, bus string) *EventBridge {
	return &EventBridge{client: client, bus: bus}
}

// Entry is the PutEvents entry of e: source Source, detail-type its type, the event as
// its detail.
func Entry(e Event, bus string) (types.PutEventsRequestEntry, error) {
	detail, err := json.Marshal(e)
	if err != nil {
		return types.PutEventsRequestEntry{}, err
	}
	t := e.Time
	return types.PutEventsRequestEntry{
		Source: aws.String(Source), DetailType: aws.String(string(e.Type)), Detail: aws.String(string(detail)),
		EventBusName: aws.String(bus), Time: &t,
	}, nil
}

func (b *EventBridge) Publish(ctx context.Context, events []Event) []error {
	errs := make([]error, len(events))
	entries := make([]types.PutEventsRequestEntry, 0, len(events))
	index := make([]int, 0, len(events))
	for i, e := range events {
		entry, err := Entry(e, b.bus)
		if err != nil {
			errs[i] = &EntryError{Code: "MalformedDetail", Message: err.Error()}
			continue
		}
		entries, index = append(entries, entry), append(index, i)
	}
	if len(entries) == 0 {
		return errs
	}
	out, err := b.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
	if err == nil && len(out.Entries) != len(entries) {
		err = fmt.Errorf("events: PutEvents answered %d entries for %d", len(out.Entries), len(entries))
	}
	for j, i := range index {
		switch {
		case err != nil:
			errs[i] = fmt.Errorf("events: PutEvents: %w", err)
		case out.Entries[j].ErrorCode != nil:
			errs[i] = &EntryError{Code: aws.ToString(out.Entries[j].ErrorCode), Message: aws.ToString(out.Entries[j].ErrorMessage)}
		}
	}
	return errs
}
