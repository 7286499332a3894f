// Package events publishes the broker's domain events (docs/events.md) from the pool
// table's DynamoDB stream: each transition is one write of a sandbox's record, so one
// stream record, and Map turns it into its one event. Deliver puts a shard's events on the
// bus in order (EventBridge, or the local stack's FileSink), keeps what the bus will not
// take in the dead-letter queue (SQS), and names the record a batch must be retried from;
// Replay puts the dead letters on the bus again. Poller reads a stream as Lambda's event
// source mapping does, for the local stack and the tests.
//
//	record.go      stream records: from Lambda's batch JSON and from GetRecords
//	mapping.go     a record → its event (Map); errorclass.go the class of a failed delete
//	event.go       the event and its types
//	publish.go     PutEvents; file.go the local sink
//	deliver.go     in-order delivery, retries and dead letters
//	deadletter.go  the dead-letter queue (SQS); replay.go its replay
//	stream.go      the stream poller and the reads of a failed batch
package events
