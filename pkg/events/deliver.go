package events

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"
)

// Deliverer publishes the events of stream records in the stream's order, and keeps what
// the bus will not take in the dead-letter queue. It is the whole work of the function
// that consumes the table's stream (Lambda's event source mapping hands it a shard's
// batch) and of the local stack's poller.
type Deliverer struct {
	Bus         Publisher
	DeadLetters DeadLetters
	// DeadLetterAfter is how old a record may grow while the bus keeps failing its event
	// (throttled, down) before the event goes to the dead-letter queue; until then the
	// batch is handed back to be retried from it, so the shard's order holds.
	DeadLetterAfter time.Duration
	// Attempts is how many times one call tries an event the bus failed for a reason
	// worth retrying, Backoff the first pause between tries (doubled each time, jittered).
	Attempts int
	Backoff  time.Duration
	Now      func() time.Time
	Log      *slog.Logger
}

// Result is what one Deliver did.
type Result struct {
	// Published counts events the bus accepted, DeadLettered those (and unreadable
	// records) kept in the dead-letter queue, Skipped the records that are no transition.
	Published, DeadLettered, Skipped int
	// RetryFrom is the sequence number of the first record whose event is neither on the
	// bus nor dead-lettered: the batch must be delivered again from it (the records before
	// it are done). Empty when the whole batch is done.
	RetryFrom string
}

// Response is r as the function's answer with ReportBatchItemFailures.
func (r Result) Response() BatchResponse {
	resp := BatchResponse{BatchItemFailures: []BatchItemFailure{}}
	if r.RetryFrom != "" {
		resp.BatchItemFailures = append(resp.BatchItemFailures, BatchItemFailure{ItemIdentifier: r.RetryFrom})
	}
	return resp
}

type pendingEvent struct {
	record int
	event  Event
}

// Deliver publishes the events of records, which are one shard's, in order. A sandbox's
// (or a drain prefix's) events go to the bus one call after another, never two in one
// call, so the bus receives them in the order of the stream, which is the order of their
// writes; a consumer orders them by Event.Sequence all the same (EventBridge does not
// keep the order of delivery to a target).
//
// An event the bus refuses for good, and one whose record is older than DeadLetterAfter,
// is dead-lettered; a record Map cannot read is dead-lettered as it is. Any other failure
// stops the delivery at the first record not done (Result.RetryFrom): a redelivery from
// it publishes again what was published after it, under the same event IDs. Deliver
// returns an error only with a Result whose RetryFrom says where to go on.
func (d *Deliverer) Deliver(ctx context.Context, records []Record) (Result, error) {
	var res Result
	var queue []pendingEvent
	var unreadable []Letter
	for i, r := range records {
		e, ok, err := Map(r)
		switch {
		case err != nil:
			lr := r.Lambda()
			unreadable = append(unreadable, Letter{Record: &lr, Reason: err.Error()})
		case ok:
			queue = append(queue, pendingEvent{record: i, event: e})
		default:
			res.Skipped++
		}
	}
	for start := 0; start < len(unreadable); start += MaxBatch {
		chunk := unreadable[start:min(start+MaxBatch, len(unreadable))]
		if err := d.DeadLetters.Send(ctx, chunk); err != nil {
			res.RetryFrom = records[0].Sequence
			return res, err
		}
		res.DeadLettered += len(chunk)
		d.Log.Error("stream record unreadable, dead-lettered", "records", len(chunk), "reason", chunk[0].Reason)
	}
	for len(queue) > 0 {
		chunk := distinctKeys(queue)
		errs := d.publish(ctx, chunk)
		var letters []Letter
		failed := -1
		for i, err := range errs {
			switch {
			case err == nil:
				res.Published++
			case Permanent(err) || d.Now().Sub(records[chunk[i].record].Created) >= d.DeadLetterAfter:
				ev := chunk[i].event
				letters = append(letters, Letter{Event: &ev, Reason: err.Error()})
			case failed < 0:
				failed = chunk[i].record
			}
		}
		if len(letters) > 0 {
			if err := d.DeadLetters.Send(ctx, letters); err != nil {
				return d.stop(res, records, chunk[0].record, fmt.Errorf("events: dead-letter %d events: %w", len(letters), err))
			}
			res.DeadLettered += len(letters)
			d.Log.Warn("events dead-lettered", "events", len(letters), "reason", letters[0].Reason)
		}
		if failed >= 0 {
			return d.stop(res, records, failed, fmt.Errorf("events: the bus did not take the event of record %s", records[failed].Sequence))
		}
		queue = queue[len(chunk):]
	}
	return res, nil
}

func (d *Deliverer) stop(res Result, records []Record, at int, err error) (Result, error) {
	res.RetryFrom = records[at].Sequence
	d.Log.Warn("delivery stopped; the batch is retried from a record", "sequence", res.RetryFrom, "error", err.Error())
	return res, err
}

// publish publishes chunk, retrying the events the bus failed for a passing reason.
func (d *Deliverer) publish(ctx context.Context, chunk []pendingEvent) []error {
	errs := make([]error, len(chunk))
	todo := make([]int, len(chunk))
	for i := range todo {
		todo[i] = i
	}
	pause := d.Backoff
	for attempt := 1; ; attempt++ {
		batch := make([]Event, len(todo))
		for j, i := range todo {
			batch[j] = chunk[i].event
		}
		var again []int
		for j, err := range d.Bus.Publish(ctx, batch) {
			errs[todo[j]] = err
			if err != nil && !Permanent(err) {
				again = append(again, todo[j])
			}
		}
		if len(again) == 0 || attempt >= d.Attempts {
			return errs
		}
		todo = again
		select {
		case <-ctx.Done():
			return errs
		case <-time.After(pause/2 + rand.N(pause/2+1)):
		}
		pause *= 2
	}
}

// distinctKeys is the longest run from the head of queue, at most MaxBatch events, with
// no two of one sandbox (or drain prefix).
func distinctKeys(queue []pendingEvent) []pendingEvent {
	seen := map[string]bool{}
	n := 0
	for n < len(queue) && n < MaxBatch && !seen[queue[n].event.Key()] {
		seen[queue[n].event.Key()] = true
		n++
	}
	return queue[:n]
}
