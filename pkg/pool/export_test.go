package pool

import (
	"context"
	"reflect"
	"runtime"
	"strings"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// StoredItems are the items the transitions store for s (the record and, unless s has no
// AccountUUID, its UUID item), for tests that load thousands of sandboxes with
// BatchWriteItem instead of one transaction each, or that write a record as it was
// before UUID items existed. It covers the statuses that need no owner record.
func StoredItems(s Sandbox) []map[string]types.AttributeValue {
	item, err := recordItem(s, shardOf(s.ID))
	if err != nil {
		panic(err)
	}
	if s.AccountUUID == "" {
		return []map[string]types.AttributeValue{item}
	}
	u, err := attributevalue.MarshalMap(uuidItem{UUID: s.AccountUUID, SandboxID: s.ID, TTL: s.TTL})
	if err != nil {
		panic(err)
	}
	for k, v := range uuidKey(s.AccountUUID) {
		u[k] = v
	}
	return []map[string]types.AttributeValue{item, u}
}

// LimitsFor is the split of cap over the shards as they are (SplitCap).
func (cs CapCounters) LimitsFor(cap int) [CounterShards]int { return cs.limits(cap) }

// SetAfterGateRead makes p's gated writes (Create, Unstale, a renaming Refresh) call f
// after each read of the drain state, before their write.
func SetAfterGateRead(p *Pool, f func()) { p.gates.afterRead = f }

// Violations takes one census of the table and runs each invariant of CheckInvariants over
// it alone, returning what each found by the name of its method.
func (p *Pool) Violations(ctx context.Context) (map[string][]error, error) {
	c, err := p.takeCensus(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string][]error{}
	for _, check := range invariants {
		name := runtime.FuncForPC(reflect.ValueOf(check).Pointer()).Name()
		out[name[strings.LastIndexByte(name, '.')+1:]] = check(c)
	}
	return out, nil
}
