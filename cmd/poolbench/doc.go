// Command poolbench measures allocation under a burst of concurrent students against one
// DynamoDB Local: this broker's engine in one process and with one process per student,
// the engine as it was before the page dealer (previous.go) and, as the baseline,
// upstream's strategy (docs/upstream.md, upstream's allocate), at an exact-fit pool, a pool
// of twice the burst and a prefix variant. Per row: success, DynamoDB requests, read and
// write capacity units per allocation (capacity.go) and latency. It prints one table
// (table.go); every row comes from the same run. With -http it drives the local stack
// instead (http.go).
package main
