package ddblimits

import (
	"fmt"
	"time"
)

// DynamoDB's documented throughput, in capacity units per second.
const (
	// KeyWriteUnits and KeyReadUnits are the most one partition key value of a table or of
	// a global secondary index serves, in either capacity mode: a partition's limit
	// (developer guide, "Best practices for designing and using partition keys
	// effectively").
	KeyWriteUnits = 1000
	KeyReadUnits  = 3000
	// NewTableWriteUnits and NewTableReadUnits are what a new on-demand table (and each of
	// its indexes) serves at once, before it scales or is given warm throughput (developer
	// guide, "On-demand capacity mode": initial throughput).
	NewTableWriteUnits = 4000
	NewTableReadUnits  = 12000
)

// DefaultTransactionTime is the least time a TransactWriteItems takes through the proxy,
// holding its items: of the order of a small transaction's latency in AWS (doc.go).
const DefaultTransactionTime = 20 * time.Millisecond

// Config says which of DynamoDB's limits the proxy applies; each is a switch of its own.
// The zero value applies none and forwards every request as it is.
type Config struct {
	// PartitionLimits applies KeyWriteUnits and KeyReadUnits to every partition key value
	// of every table and global secondary index.
	PartitionLimits bool
	// TableWriteUnits and TableReadUnits are the throughput of a table, and of each of its
	// indexes, as a whole; 0 applies none. NewTableWriteUnits and NewTableReadUnits are an
	// on-demand table's until it scales; a warm throughput set on the table raises them.
	TableWriteUnits, TableReadUnits float64
	// Scale multiplies every throughput above (0 means 1). A DynamoDB Local on a laptop
	// serves a small share of what AWS serves, so a rush that throttles in AWS does not
	// reach AWS's limits here: a scale of 0.1 applies them as if the machine were ten
	// times faster.
	Scale float64
	// Conflicts refuses a write to an item that a transaction in flight holds, as DynamoDB
	// does. TransactionTime is the least time a transaction is in flight (0 means
	// DefaultTransactionTime): the proxy answers it no sooner.
	Conflicts       bool
	TransactionTime time.Duration
	// InternalErrorRate is the share of requests answered 500 InternalServerError after
	// DynamoDB Local carried them out: the write happened, its answer was lost.
	InternalErrorRate float64
	// UnavailableRate is the share of requests answered 503 ServiceUnavailable without
	// being forwarded.
	UnavailableRate float64
	// LatencyRate is the share of requests held back by Latency before they are
	// forwarded; a transaction holds its items meanwhile.
	LatencyRate float64
	Latency     time.Duration
	// Seed makes the injected faults repeatable; 0 draws one.
	Seed uint64
	// Now is the clock of the throughput and the conflict window; nil is time.Now.
	Now func() time.Time
}

// AsAWS applies everything AWS applies to a new on-demand table: the partition limits,
// the table's initial throughput and transaction conflicts. It injects no faults.
func AsAWS() Config {
	return Config{
		PartitionLimits: true,
		TableWriteUnits: NewTableWriteUnits, TableReadUnits: NewTableReadUnits,
		Conflicts: true,
	}
}

func (c Config) validate() error {
	for name, rate := range map[string]float64{"InternalErrorRate": c.InternalErrorRate, "UnavailableRate": c.UnavailableRate, "LatencyRate": c.LatencyRate} {
		if rate < 0 || rate > 1 {
			return fmt.Errorf("ddblimits: %s %g is not a share between 0 and 1", name, rate)
		}
	}
	if c.Scale < 0 || c.TableWriteUnits < 0 || c.TableReadUnits < 0 || c.TransactionTime < 0 || c.Latency < 0 {
		return fmt.Errorf("ddblimits: negative scale, throughput, transaction time or latency in %+v", c)
	}
	return nil
}

// limitsThroughput reports whether any throughput limit applies: the proxy then reads
// the items a write touches, before and after, to bill it as DynamoDB does.
func (c Config) limitsThroughput() bool {
	return c.PartitionLimits || c.TableWriteUnits > 0 || c.TableReadUnits > 0
}

func (c Config) transactionTime() time.Duration {
	if c.TransactionTime == 0 {
		return DefaultTransactionTime
	}
	return c.TransactionTime
}

func (c Config) newThroughput() *throughput {
	scale := c.Scale
	if scale == 0 {
		scale = 1
	}
	t := &throughput{buckets: map[bucketID]*bucket{}}
	if c.PartitionLimits {
		t.keyRate = [2]float64{KeyReadUnits * scale, KeyWriteUnits * scale}
	}
	t.tableRate = [2]float64{c.TableReadUnits * scale, c.TableWriteUnits * scale}
	return t
}
