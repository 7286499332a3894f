package ddblimits

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
)

// Kinds of refusal.
const (
	Throttle = "throttle"
	Conflict = "conflict"
	Injected = "injected"
)

// Refusal is one kind of answer the proxy gave instead of DynamoDB Local's.
type Refusal struct {
	Kind string // Throttle, Conflict or Injected
	// Code is what the client read: the error code, with a cancelled transaction's reasons.
	Code string
	// Detail says which limit refused a throttled request: its throttling reasons, each
	// with the index (or table) and whether its partition key or its whole throughput was
	// over.
	Detail string
}

// Counts are what the proxy did since it started.
type Counts struct {
	Requests int
	// Retries are the requests an AWS SDK sent again after a failed attempt (its
	// Amz-Sdk-Request header says attempt=2 or more).
	Retries int
	// Delayed are the requests held back by the injected latency.
	Delayed int
	Refused map[Refusal]int
	// Units are the capacity units consumed, per "<table or table/index> read|write".
	Units map[string]float64
}

// Total is the number of refusals of a kind.
func (c Counts) Total(kind string) int {
	n := 0
	for r, k := range c.Refused {
		if r.Kind == kind {
			n += k
		}
	}
	return n
}

// String prints the counts, one line per refusal and per resource.
func (c Counts) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d requests, %d SDK retries, %d delayed; %d throttled, %d conflicts, %d injected errors\n",
		c.Requests, c.Retries, c.Delayed, c.Total(Throttle), c.Total(Conflict), c.Total(Injected))
	refusals := slices.SortedFunc(maps.Keys(c.Refused), func(a, b Refusal) int {
		return strings.Compare(a.Kind+a.Code+a.Detail, b.Kind+b.Code+b.Detail)
	})
	for _, r := range refusals {
		fmt.Fprintf(&b, "  %-8s %6d  %s", r.Kind, c.Refused[r], r.Code)
		if r.Detail != "" {
			fmt.Fprintf(&b, ": %s", r.Detail)
		}
		b.WriteByte('\n')
	}
	for _, res := range slices.Sorted(maps.Keys(c.Units)) {
		fmt.Fprintf(&b, "  units    %8.1f  %s\n", c.Units[res], res)
	}
	return b.String()
}

// counter keeps Counts under a lock.
type counter struct {
	mu sync.Mutex
	c  Counts
}

func newCounter() *counter {
	return &counter{c: Counts{Refused: map[Refusal]int{}, Units: map[string]float64{}}}
}

func (k *counter) update(f func(c *Counts)) {
	k.mu.Lock()
	defer k.mu.Unlock()
	f(&k.c)
}

func (k *counter) snapshot() Counts {
	k.mu.Lock()
	defer k.mu.Unlock()
	c := k.c
	c.Refused = maps.Clone(k.c.Refused)
	c.Units = maps.Clone(k.c.Units)
	return c
}

func (k *counter) refused(r Refusal) { k.update(func(c *Counts) { c.Refused[r]++ }) }

func (k *counter) consumed(charges []charge) {
	k.update(func(c *Counts) {
		for _, ch := range charges {
			rw := " read"
			if ch.write {
				rw = " write"
			}
			c.Units[ch.resource()+rw] += ch.units
		}
	})
}

// throttleDetail names the limits that refused a request.
func throttleDetail(refused []refusal) string {
	var parts []string
	for _, f := range refused {
		what := "partition key " + f.pk[strings.Index(f.pk, ":")+1:] // the value, without its type
		if f.tableWide {
			what = "throughput"
		}
		where := "table"
		if f.index != "" {
			where = f.index
		}
		if p := fmt.Sprintf("%s (%s %s)", f.reason(), where, what); !slices.Contains(parts, p) {
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	return strings.Join(parts, "; ")
}
