// Command poolbench measures allocation under a burst of students arriving at once, in
// Lambda's instance model: broker.Allocate with a new Broker per allocation in this
// process ("instances"), and the allocate function of the local stack in its instance
// model over HTTP ("http", cold starts with their init), with upstream's strategy as the
// baseline (docs/upstream.md, upstream's allocate), at an exact-fit pool, a pool of twice
// the burst, a prefix variant, an exact fit set aside for the students' lab by a
// reservation (in process only), and the exact fit and the pool of 2B again with the
// students arriving as the Instruqt script sends them (each after a random 1–5 s), each
// against DynamoDB Local alone and behind the ddblimits proxy applying AWS's limits. Per
// row: success, 409s, 5xx, DynamoDB requests, read and write capacity units per
// allocation (capacity.go), lost claims, latency and cold starts. It prints one table
// (table.go); every row comes from the same run, each against a DynamoDB Local of its own,
// warmed first (freshDB).
package main
