// Package ddblimits is a proxy in front of DynamoDB Local that applies what AWS applies to
// a table and DynamoDB Local does not: throughput limits, transaction conflicts, and the
// faults of a remote service. It speaks DynamoDB's wire protocol (JSON 1.0 over HTTP, the
// operation in X-Amz-Target), so any DynamoDB client can be pointed at it: the test
// harness (pooltest.NewBehindLimits), the local stack (DYNAMODB_LIMITS, docs/configuration.md)
// and a bootstrap under the runtime emulator (its DYNAMODB_ENDPOINT). Each limit is a
// switch of Config; the zero Config forwards everything as it is.
//
// # Throughput
//
// A request is billed as DynamoDB bills it, per table or global secondary index and per
// partition key value (capacity.go): a write one unit per KB of the larger of the item
// before and after it, plus, on each index whose entry it adds, removes or changes, one
// unit per KB of that entry (a changed index key is a delete and a put); a transactional
// write twice that; a write whose condition fails, or a cancelled transaction, its table
// units all the same. A read costs what DynamoDB Local reports for it (ReturnConsumedCapacity,
// which applies the 4 KB rule, halved for an eventually consistent read), at least half a
// unit. To know the images of a write, the proxy reads its items from DynamoDB Local
// before forwarding it and, for an update, after: those reads are the proxy's own and are
// not billed. An item another client changes between the read and the write is billed
// as read: close enough for a limit, never a correctness question.
//
// Token buckets, each holding one second of its rate and starting full, admit a request
// while every bucket it draws from has capacity left and then draw its cost, which may
// leave a bucket in debt, as DynamoDB admits on capacity left and bills what was consumed:
//   - per partition key value of the table and of each index, KeyWriteUnits and
//     KeyReadUnits a second (PartitionLimits). A write whose index entry's partition is
//     over its limit is refused too: DynamoDB throttles the table's writes when an index
//     cannot take them;
//   - per table and index as a whole, TableWriteUnits and TableReadUnits a second: a new
//     on-demand table's initial throughput (NewTableWriteUnits, NewTableReadUnits) or the
//     warm throughput given to it. On-demand scaling beyond it (to twice the previous peak)
//     is not modelled: a warm throughput stands for a table that has scaled.
//
// Scale multiplies every rate: DynamoDB Local serves a small share of AWS's throughput, so a
// local rush reaches AWS's limits only when they are scaled down in proportion.
//
// A refusal is what an on-demand table answers (errors.go): a transaction is cancelled with
// TransactionCanceledException, ThrottlingError on each item refused; a single request gets
// ProvisionedThroughputExceededException for a hot partition key and ThrottlingException
// when the table or index is over its throughput, both with ThrottlingReasons
// (TableWriteKeyRangeThroughputExceeded, IndexReadKeyRangeThroughputExceeded, …). The AWS
// SDK for Go v2 retries the last two, with its throttling backoff, and not the first.
//
// # Transaction conflicts
//
// DynamoDB runs a TransactWriteItems as a two-phase commit and, while it runs, cancels
// another transaction that touches one of its items (TransactionCanceledException,
// TransactionConflict for that item, None for the others) and refuses a PutItem, UpdateItem
// or DeleteItem of one of them (TransactionConflictException); a read is never refused and a
// single-item write holds nothing. DynamoDB Local runs one transaction at a time, so none of
// this happens there. The proxy models "in flight" with holds (conflicts.go): a transaction
// holds its items from the moment the proxy forwards it until it answers, and it answers no
// sooner than TransactionTime after forwarding, so transactions overlap as they do in AWS
// although DynamoDB Local runs them one by one. The default, 20 ms, is an assumption of the
// order of a small transaction's latency in AWS, not a measurement: conflicts grow with it. The hold ends with the answer, not after it: DynamoDB answers a
// TransactWriteItems once it has committed, and the same client's next write of the item
// does not conflict with it. A transaction refused by a conflict or by the throughput
// holds nothing.
//
// # Faults
//
// InternalErrorRate answers 500 InternalServerError after DynamoDB Local carried the request
// out (the write happened, its answer was lost: what a retry's idempotency is for);
// UnavailableRate answers 503 ServiceUnavailable without forwarding; LatencyRate holds a
// request back for Latency first. The SDK retries both errors. DynamoDB Local's own
// lock-wait timeout, which AWS never answers, the proxy sends again instead of passing it on
// (ddblocal.RetryLockTimeouts): a client behind it sees only what AWS would answer.
//
// # Not modelled
//
// Batch operations (BatchGetItem, BatchWriteItem), PartiQL, TransactGetItems and the
// control plane are forwarded without limits; so are local secondary indexes' writes. The
// broker uses none of them on its paths. Counts says what the proxy refused, how many
// requests an SDK sent as retries, and the units consumed per table and index.
package ddblimits
