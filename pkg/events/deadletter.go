package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Letter is what the dead-letter queue keeps of what could not be delivered: an event
// the bus refused (or did not take in time), or a record that could not be read. Replay
// publishes it again.
type Letter struct {
	Event  *Event        `json:"event,omitempty"`
	Record *LambdaRecord `json:"record,omitempty"`
	Reason string        `json:"reason"`
}

// DeadLetters is the dead-letter queue: SQS in AWS (NewSQS), a local one in the local stack.
type DeadLetters interface {
	// Send keeps at most MaxBatch letters.
	Send(ctx context.Context, letters []Letter) error
	// Receive takes up to MaxBatch messages out of sight for a while; each must be deleted
	// once dealt with, or it comes back.
	Receive(ctx context.Context) ([]Message, error)
	Delete(ctx context.Context, handles []string) error
}

// Message is one message of the queue: a Letter, or the record Lambda's event source
// mapping sends its on-failure destination (FailedBatch).
type Message struct {
	Handle string
	Body   []byte
}

// SQS is the dead-letter queue in AWS.
type SQS struct {
	client *sqs.Client
	url    string
	// visibility is how long a received message stays out of sight: long enough for a
	// replay to publish it and delete it.
	visibility int32
}

// NewSQS keeps letters in the queue at url.
func NewSQS(client *sqs.Client, url string) *SQS {
	return &SQS{client: client, url: url, visibility: 120}
}

func (q *SQS) Send(ctx context.Context, letters []Letter) error {
	entries := make([]types.SendMessageBatchRequestEntry, len(letters))
	for i, l := range letters {
		body, err := json.Marshal(l)
		if err != nil {
			return fmt.Errorf("events: dead letter: %w", err)
		}
		entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))}
	}
	out, err := q.client.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
	if err != nil {
		return fmt.Errorf("events: dead-letter queue: %w", err)
	}
	if len(out.Failed) > 0 {
		f := out.Failed[0]
		return fmt.Errorf("events: dead-letter queue kept %d of %d letters: %s: %s", len(out.Successful), len(letters),
			aws.ToString(f.Code), aws.ToString(f.Message))
	}
	return nil
}

func (q *SQS) Receive(ctx context.Context) ([]Message, error) {
	out, err := q.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl: aws.String(q.url), MaxNumberOfMessages: MaxBatch, VisibilityTimeout: q.visibility,
	})
	if err != nil {
		return nil, fmt.Errorf("events: dead-letter queue: %w", err)
	}
	msgs := make([]Message, len(out.Messages))
	for i, m := range out.Messages {
		msgs[i] = Message{Handle: aws.ToString(m.ReceiptHandle), Body: []byte(aws.ToString(m.Body))}
	}
	return msgs, nil
}

func (q *SQS) Delete(ctx context.Context, handles []string) error {
	if len(handles) == 0 {
		return nil
	}
	entries := make([]types.DeleteMessageBatchRequestEntry, len(handles))
	for i, h := range handles {
		entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h)}
	}
	out, err := q.client.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(q.url), Entries: entries})
	if err != nil {
		return fmt.Errorf("events: dead-letter queue: %w", err)
	}
	if len(out.Failed) > 0 {
		return fmt.Errorf("events: dead-letter queue deleted %d of %d messages: %s", len(out.Successful), len(handles), aws.ToString(out.Failed[0].Code))
	}
	return nil
}
