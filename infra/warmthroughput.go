package main

import (
	"math"

	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/jsii-runtime-go"

	"github.com/sandbox-broker/broker/pkg/pool"
)

// What a new on-demand table or index serves at once without pre-warming; warm throughput
// can only raise it.
const (
	onDemandReadUnits  = 12_000
	onDemandWriteUnits = 4_000
)

// warmThroughput is the warm throughput of the table ("") or an index at peak allocations
// per second: peak × pool.AllocationCost (the table's writes as a capped client's claims
// cost them, counter shard included), never below what a new on-demand table has anyway
// (docs/operations.md shows the arithmetic).
func warmThroughput(peak int, index string) *awsdynamodb.WarmThroughput {
	read, write := warmUnits(peak, index)
	return &awsdynamodb.WarmThroughput{ReadUnitsPerSecond: jsii.Number(read), WriteUnitsPerSecond: jsii.Number(write)}
}

func warmUnits(peak int, index string) (read, write float64) {
	c := pool.AllocationCost[index]
	return math.Max(onDemandReadUnits, math.Ceil(float64(peak)*c.Read)),
		math.Max(onDemandWriteUnits, math.Ceil(float64(peak)*c.Write))
}
