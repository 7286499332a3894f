package ddblimits

import "sync"

// itemID identifies an item across the tables of a DynamoDB Local namespace.
type itemID string

func newItemID(namespace, table string, t *tableSchema, key item) itemID {
	id := namespace + "\x00" + table + "\x00" + key[t.hash].keyString()
	if t.sort != "" {
		id += "\x00" + key[t.sort].keyString()
	}
	return itemID(id)
}

// holds are the items of the transactions in flight (doc.go, "Transaction conflicts").
type holds struct {
	mu   sync.Mutex
	held map[itemID]bool
}

func (h *holds) busyLocked(ids []itemID) []int {
	var busy []int
	for i, id := range ids {
		if h.held[id] {
			busy = append(busy, i)
		}
	}
	return busy
}

// busy returns the positions of the items a transaction in flight holds.
func (h *holds) busy(ids []itemID) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.busyLocked(ids)
}

// hold takes the items of a transaction, unless another holds one of them: then it takes
// none and returns the positions of those held.
func (h *holds) hold(ids []itemID) []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	busy := h.busyLocked(ids)
	if len(busy) == 0 {
		for _, id := range ids {
			h.held[id] = true
		}
	}
	return busy
}

func (h *holds) release(ids []itemID) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, id := range ids {
		delete(h.held, id)
	}
}
