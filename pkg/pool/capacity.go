package pool

// Cost is the capacity units, read and write, that one allocation costs a table or index.
type Cost struct {
	Read, Write float64
}

// AllocationCost is what one allocation costs the table ("") and each index at the worst
// burst the benchmark measures: B = 500 students at once on a pool of exactly 500, lost
// claims included, 1.91 claim transactions per allocation, the most a run has measured (a
// reservation's wave behind AWS's limits), and the candidate pages of a pool of 2B, the
// largest (make bench, docs/benchmark.md; docs/operations.md turns it into warm
// throughput). The table pays 2 units per item of every claim transaction, won or lost,
// each item under 1 KB: 2 items for a client without a cap (the sandbox and the owner
// record, 7.6 units), 3 for a capped client, whose claim also takes room in a counter shard
// (11.5). The table is sized for the capped client, the dearer of the two, so that a rush
// by either meets no throttle. AvailableIndex pays the candidate pages (half a unit per
// 4 KB, eventually consistent) and the removal of the claimed entry; StatusIndex re-keys
// the claimed sandbox from available#k to allocated#k (a delete and a put, each entry under
// 1 KB). The table's reads are the lab settings (LabSettings, one eventually consistent
// query of a partition under 4 KB: half a unit), which each fresh instance makes once and
// a warm one once per broker's cache period, so at most once per allocation in a wave of
// fresh instances; besides them, only replays and a capped client's full shard read the
// table. docs/operations.md spreads these over the partitions (pool.Shards per index and
// status, CounterShards per capped client).
var AllocationCost = map[string]Cost{
	"":             {Read: 0.5, Write: 11.5},
	AvailableIndex: {Read: 2.5, Write: 1},
	StatusIndex:    {Read: 0, Write: 2},
}
