package ddblimits

import (
	"sync"
	"time"
)

// itemID identifies an item across the tables of a DynamoDB Local namespace.
type itemID string

func newItemID(namespace, table string, t *tableSchema, key item) itemID {
	id := namespace + "\x00" + table + "\x00" + key[t.hash].keyString()
	if t.sort != "" {
		id += "\x00" + key[t.sort].keyString()
	}
	return itemID(id)
}

// holds are the items of the transactions in flight. DynamoDB runs a TransactWriteItems
// as a two-phase commit across its items' partitions and refuses, while it runs, a
// transaction or a single-item write that touches one of them (developer guide,
// "Transaction conflict handling"); DynamoDB Local runs one transaction at a time and
// never does. A transaction holds its items from the moment the proxy forwards it until
// DynamoDB Local has answered and the window has passed: the window stands for the part
// of a transaction's life in AWS that DynamoDB Local compresses.
type holds struct {
	mu     sync.Mutex
	window time.Duration
	// until is when a held item is free again; the zero time while its transaction is in
	// flight.
	until map[itemID]time.Time
}

// busyLocked returns the positions of the items a transaction holds, dropping the holds
// that have lapsed.
func (h *holds) busyLocked(ids []itemID, now time.Time) []int {
	var busy []int
	for i, id := range ids {
		until, ok := h.until[id]
		switch {
		case !ok:
		case until.IsZero() || now.Before(until):
			busy = append(busy, i)
		default:
			delete(h.until, id)
		}
	}
	return busy
}

// held reports which of the items a transaction holds (their positions).
func (h *holds) held(ids []itemID, now time.Time) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.busyLocked(ids, now)
}

// hold takes the items of a transaction, unless another holds one of them: then it takes
// none and returns the positions of those held.
func (h *holds) hold(ids []itemID, now time.Time) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	busy := h.busyLocked(ids, now)
	if len(busy) == 0 {
		for _, id := range ids {
			h.until[id] = time.Time{}
		}
	}
	return busy
}

// release frees the items of a transaction once the window after now has passed, or at
// once when the transaction never reached DynamoDB Local (refused by the throughput).
func (h *holds) release(ids []itemID, now time.Time, reached bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		if reached {
			h.until[id] = now.Add(h.window)
		} else {
			delete(h.until, id)
		}
	}
}
