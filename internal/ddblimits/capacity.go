package ddblimits

import "math"

// charge is capacity a request consumes on one resource (the table, or one of its global
// secondary indexes) under one partition key value.
type charge struct {
	table string
	index string // "" for the table itself
	// pk identifies the partition key value (value.keyString); "" when the request reads
	// every one (a Scan) or the proxy could not tell which.
	pk    string
	write bool
	units float64
	// pos is the position in the request of the write that costs it (a transaction's
	// CancellationReasons are per item).
	pos int
}

// resource names the table or index of a charge in counts.
func (c charge) resource() string {
	if c.index == "" {
		return c.table
	}
	return c.table + "/" + c.index
}

// writeCharges is what the write of one item costs, as DynamoDB bills it (developer guide,
// "DynamoDB capacity modes" and "Global secondary indexes: provisioned throughput"): the
// table one unit per KB of the larger of the item before and after the write; each global
// secondary index, for an entry the write adds, removes or changes, one unit per KB of that
// entry (an entry whose key changes is a delete and a put). A transactional write costs
// twice as much everywhere. An image is nil when the item does not exist. A write that changed nothing (its condition failed, or its
// transaction was cancelled) passes the same image as before and after: the table is
// charged, no index is.
func writeCharges(t *tableSchema, w write, pos int, before, after item, transactional bool) []charge {
	factor := 1.0
	if transactional {
		factor = 2
	}
	pk := w.key[t.hash].keyString()
	out := []charge{{table: w.table, pk: pk, write: true, pos: pos,
		units: factor * writeUnits(max(before.size(), after.size()))}}
	for i := range t.indexes {
		ix := &t.indexes[i]
		old, cur := ix.entry(before), ix.entry(after)
		add := func(e item, units float64) {
			out = append(out, charge{table: w.table, index: ix.name, pk: e[ix.hash].keyString(), write: true, pos: pos, units: factor * units})
		}
		switch {
		case old != nil && cur != nil && sameKey(ix, old, cur):
			if !projectedEqual(old, cur, ix.projected) {
				add(cur, writeUnits(max(old.size(), cur.size())))
			}
		default:
			if old != nil {
				add(old, writeUnits(old.size()))
			}
			if cur != nil {
				add(cur, writeUnits(cur.size()))
			}
		}
	}
	return out
}

func sameKey(ix *indexSchema, a, b item) bool {
	return a[ix.hash].keyString() == b[ix.hash].keyString() && (ix.sort == "" || a[ix.sort].keyString() == b[ix.sort].keyString())
}

// minReadUnits is the least a read costs: one unit (4 KB) strongly consistent, half of it
// eventually consistent.
func minReadUnits(consistent bool) float64 {
	if consistent {
		return 1
	}
	return 0.5
}

// readCharge is what a read costs its table or index, under the partition key value it
// reads: units as DynamoDB Local reported them (it applies DynamoDB's 4 KB rule to the
// items it read, whatever the projection), at least minReadUnits.
func readCharge(t *tableSchema, rd *read, units float64) charge {
	hash := t.hash
	if ix := t.index(rd.index); ix != nil {
		hash = ix.hash
	}
	c := charge{table: rd.table, index: rd.index, units: math.Max(units, minReadUnits(rd.consistent))}
	if v, ok := rd.equal[hash]; ok && !rd.scan {
		c.pk = v.keyString()
	}
	return c
}
