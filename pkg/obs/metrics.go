package obs

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// AllocationOutcome is the Outcome dimension of the allocation metrics.
type AllocationOutcome string

const (
	AllocationCreated   AllocationOutcome = "created"
	AllocationReplay    AllocationOutcome = "replay"
	AllocationNoSandbox AllocationOutcome = "no_sandbox"
	AllocationBusy      AllocationOutcome = "busy"
	AllocationError     AllocationOutcome = "error"
)

// Metric names, in the namespace given to NewMetrics.
const (
	MetricAllocations       = "Allocations"
	MetricAllocationLatency = "AllocationLatency"
)

// Metrics writes CloudWatch metrics in the embedded metric format (EMF): one JSON line per
// data point on the function's output, which CloudWatch turns into metrics without an API
// call (and which costs nothing but a log line when run locally).
type Metrics struct {
	namespace string
	now       func() time.Time

	mu sync.Mutex
	w  io.Writer
}

// NewMetrics writes to w (stdout in Lambda) under namespace.
func NewMetrics(w io.Writer, namespace string) *Metrics {
	return &Metrics{namespace: namespace, now: time.Now, w: w}
}

// Allocation records one allocation request: a count and its latency, by outcome.
func (m *Metrics) Allocation(outcome AllocationOutcome, latency time.Duration) {
	m.emit([]string{"Outcome"}, map[string]string{"Outcome": string(outcome)}, []metricValue{
		{MetricAllocations, "Count", 1},
		{MetricAllocationLatency, "Milliseconds", float64(latency.Microseconds()) / 1000},
	})
}

type metricValue struct {
	name  string
	unit  string
	value float64
}

// emit writes one EMF document: the _aws metadata naming the metrics and their dimension,
// with the dimension values and metric values as top-level members.
func (m *Metrics) emit(dimensions []string, values map[string]string, metrics []metricValue) {
	type definition struct {
		Name string `json:"Name"`
		Unit string `json:"Unit"`
	}
	defs := make([]definition, len(metrics))
	doc := map[string]any{}
	for i, mv := range metrics {
		defs[i] = definition{mv.name, mv.unit}
		doc[mv.name] = mv.value
	}
	for k, v := range values {
		doc[k] = v
	}
	doc["_aws"] = map[string]any{
		"Timestamp": m.now().UnixMilli(),
		"CloudWatchMetrics": []any{map[string]any{
			"Namespace":  m.namespace,
			"Dimensions": [][]string{dimensions},
			"Metrics":    defs,
		}},
	}
	line, _ := json.Marshal(doc) // strings, numbers and slices of them: Marshal cannot fail
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = m.w.Write(append(line, '\n'))
}
