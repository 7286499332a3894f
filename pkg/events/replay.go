package events

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
)

// FailedBatch is the record Lambda's event source mapping sends its on-failure
// destination (the dead-letter queue) when it gives up on a batch (its retries or the
// record age ran out): it names the batch, not its records, which stay in the stream for
// 24 hours.
type FailedBatch struct {
	Info *struct {
		ShardID             string `json:"shardId"`
		StartSequenceNumber string `json:"startSequenceNumber"`
		EndSequenceNumber   string `json:"endSequenceNumber"`
		StreamARN           string `json:"streamArn"`
		BatchSize           int    `json:"batchSize"`
	} `json:"DDBStreamBatchInfo"`
}

// Replayer publishes the dead-letter queue's letters again.
type Replayer struct {
	DeadLetters DeadLetters
	Bus         Publisher
	// Streams reads a FailedBatch's records back from the stream.
	Streams *dynamodbstreams.Client
	// Limit bounds the messages one Replay takes (a route's answer must come in time).
	Limit int
}

// ReplayResult is what one Replay did.
type ReplayResult struct {
	// Messages counts the messages taken; Published the events the bus accepted;
	// Deleted the messages done with (their events all on the bus, or none to publish).
	Messages, Published, Deleted int
	// Kept counts the messages left in the queue: an event the bus refused again, a batch
	// the stream no longer holds, or a message that is none of the known shapes. They
	// come back once their visibility timeout passes.
	Kept int
	// Errors says why, a few examples.
	Errors []string
}

type replayMessage struct {
	handle string
	events int
	failed bool
}

// Replay takes up to Limit messages and publishes their events, each sandbox's in
// sequence order, deleting each message whose events are all on the bus. Events go out
// under their own IDs: a consumer that already has one drops it.
func (r *Replayer) Replay(ctx context.Context) (ReplayResult, error) {
	var res ReplayResult
	var msgs []*replayMessage
	var queue []replayEvent
	for len(msgs) < r.Limit {
		page, err := r.DeadLetters.Receive(ctx)
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			break
		}
		for _, m := range page {
			rm := &replayMessage{handle: m.Handle}
			msgs = append(msgs, rm)
			evs, err := r.eventsOf(ctx, m.Body)
			if err != nil {
				rm.failed = true
				res.note(err)
			}
			for _, e := range evs {
				queue = append(queue, replayEvent{msg: rm, event: e})
			}
			rm.events = len(evs)
		}
	}
	res.Messages = len(msgs)
	sortForReplay(queue)
	// A key whose event failed keeps its later events back too, so they stay in order.
	blocked := map[string]bool{}
	for len(queue) > 0 {
		var batch []replayEvent
		seen := map[string]bool{}
		for len(queue) > 0 && len(batch) < MaxBatch && !seen[queue[0].event.Key()] {
			e := queue[0]
			queue = queue[1:]
			if blocked[e.event.Key()] {
				e.msg.failed = true
				continue
			}
			seen[e.event.Key()] = true
			batch = append(batch, e)
		}
		evs := make([]Event, len(batch))
		for i, e := range batch {
			evs[i] = e.event
		}
		for i, err := range r.Bus.Publish(ctx, evs) {
			if err != nil {
				batch[i].msg.failed, blocked[batch[i].event.Key()] = true, true
				res.note(err)
				continue
			}
			res.Published++
		}
	}
	var done []string
	for _, m := range msgs {
		if m.failed {
			res.Kept++
			continue
		}
		done = append(done, m.handle)
	}
	for start := 0; start < len(done); start += MaxBatch {
		if err := r.DeadLetters.Delete(ctx, done[start:min(start+MaxBatch, len(done))]); err != nil {
			return res, err
		}
		res.Deleted += min(MaxBatch, len(done)-start)
	}
	return res, nil
}

func (res *ReplayResult) note(err error) {
	if len(res.Errors) < 5 {
		res.Errors = append(res.Errors, err.Error())
	}
}

type replayEvent struct {
	msg   *replayMessage
	event Event
}

// eventsOf reads one message: a Letter's event, a Letter's record mapped, or the records
// of a FailedBatch read back from the stream and mapped.
func (r *Replayer) eventsOf(ctx context.Context, body []byte) ([]Event, error) {
	var l Letter
	if err := json.Unmarshal(body, &l); err == nil && l.Event != nil {
		return []Event{*l.Event}, nil
	}
	var records []Record
	switch {
	case l.Record != nil:
		var err error
		if records, err = (Batch{Records: []LambdaRecord{*l.Record}}).Decode(); err != nil {
			return nil, err
		}
	default:
		var fb FailedBatch
		if err := json.Unmarshal(body, &fb); err != nil || fb.Info == nil {
			return nil, fmt.Errorf("events: replay: a message that is neither a letter nor a failed batch")
		}
		var err error
		records, err = ReadRange(ctx, r.Streams, fb.Info.StreamARN, fb.Info.ShardID, fb.Info.StartSequenceNumber, fb.Info.EndSequenceNumber)
		if err != nil {
			return nil, fmt.Errorf("events: replay: the failed batch of shard %s is no longer in the stream: %w", fb.Info.ShardID, err)
		}
	}
	var out []Event
	for _, rec := range records {
		e, ok, err := Map(rec)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// sortForReplay puts each key's events in sequence order and interleaves the keys, so
// the batches of distinct keys come out full: the first event of every key, then the
// second, and so on.
func sortForReplay(queue []replayEvent) {
	sort.SliceStable(queue, func(i, j int) bool {
		a, b := queue[i].event, queue[j].event
		if a.Key() != b.Key() {
			return a.Key() < b.Key()
		}
		return a.Sequence < b.Sequence
	})
	rank := make([]int, len(queue))
	for i := 1; i < len(queue); i++ {
		if queue[i].event.Key() == queue[i-1].event.Key() {
			rank[i] = rank[i-1] + 1
		}
	}
	idx := make([]int, len(queue))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return rank[idx[i]] < rank[idx[j]] })
	sorted := make([]replayEvent, len(queue))
	for i, k := range idx {
		sorted[i] = queue[k]
	}
	copy(queue, sorted)
}
