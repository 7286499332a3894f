package ddblimits

import (
	"sync"
	"time"
)

// bucketID names one token bucket: the reads or writes of one partition key value of a
// table or index, or (pk "") of the whole table or index.
type bucketID struct {
	table, index, pk string
	write            bool
}

type bucket struct {
	tokens float64
	at     time.Time
}

// throughput keeps the token buckets. Each holds one second of its rate and starts full:
// DynamoDB states its partition limits per second, and a partition at its limit has no
// credit to burst beyond it.
type throughput struct {
	mu sync.Mutex
	// keyRate and tableRate are units per second, [0] reads and [1] writes; 0 is no limit.
	keyRate, tableRate [2]float64
	buckets            map[bucketID]*bucket
	swept              time.Time
}

// sweepEvery is how often buckets that have refilled are dropped (a full bucket is the
// same as none), so a table of many keys does not grow the map without end.
const sweepEvery = 10 * time.Second

func rw(write bool) int {
	if write {
		return 1
	}
	return 0
}

func (t *throughput) rate(id bucketID) float64 {
	if id.pk == "" {
		return t.tableRate[rw(id.write)]
	}
	return t.keyRate[rw(id.write)]
}

// bucketsOf lists the buckets a charge draws from: its partition key value's, when the
// value is known, and its table's or index's.
func (t *throughput) bucketsOf(c charge) []bucketID {
	var ids []bucketID
	if c.pk != "" && t.keyRate[rw(c.write)] > 0 {
		ids = append(ids, bucketID{c.table, c.index, c.pk, c.write})
	}
	if t.tableRate[rw(c.write)] > 0 {
		ids = append(ids, bucketID{c.table, c.index, "", c.write})
	}
	return ids
}

// level refills the bucket up to now.
func (t *throughput) level(id bucketID, now time.Time) *bucket {
	rate := t.rate(id)
	b := t.buckets[id]
	if b == nil {
		b = &bucket{tokens: rate, at: now}
		t.buckets[id] = b
		return b
	}
	if now.After(b.at) {
		b.tokens = min(rate, b.tokens+rate*now.Sub(b.at).Seconds())
		b.at = now
	}
	return b
}

// refusal is a charge a bucket refused, and whether it was the table's (or index's)
// bucket rather than the partition key's.
type refusal struct {
	charge
	tableWide bool
}

// take admits a request when every bucket its charges draw from has capacity left, and
// draws the charges from them; otherwise it draws nothing and returns what was refused.
// Like DynamoDB, it admits on capacity left and bills what the request costs, which can
// leave a bucket below zero: the requests after it are refused until it refills.
func (t *throughput) take(charges []charge, now time.Time) []refusal {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sweep(now)
	var refused []refusal
	for _, c := range charges {
		for _, id := range t.bucketsOf(c) {
			if t.level(id, now).tokens <= 0 {
				refused = append(refused, refusal{c, id.pk == ""})
			}
		}
	}
	if len(refused) == 0 {
		t.draw(charges, 1, now)
	}
	return refused
}

// settle replaces what was drawn at admission (an estimate) by what the request cost.
func (t *throughput) settle(drawn, cost []charge, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.draw(drawn, -1, now)
	t.draw(cost, 1, now)
}

func (t *throughput) draw(charges []charge, sign float64, now time.Time) {
	for _, c := range charges {
		for _, id := range t.bucketsOf(c) {
			b := t.level(id, now)
			b.tokens = min(t.rate(id), b.tokens-sign*c.units)
		}
	}
}

func (t *throughput) sweep(now time.Time) {
	if now.Sub(t.swept) < sweepEvery {
		return
	}
	t.swept = now
	for id := range t.buckets {
		if t.level(id, now).tokens >= t.rate(id) {
			delete(t.buckets, id)
		}
	}
}
