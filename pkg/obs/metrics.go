package obs

import (
	"encoding/json"
	"io"
	"slices"
	"strings"
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
	// AllocationLimit: refused by the student's or the client's limit.
	AllocationLimit AllocationOutcome = "limit"
	AllocationError AllocationOutcome = "error"
)

// Metric names, in the namespace given to NewMetrics.
const (
	MetricAllocations       = "Allocations"
	MetricAllocationLatency = "AllocationLatency"
	// MetricPoolTotal and PoolMetric(status) are the pool gauges, without dimensions.
	MetricPoolTotal = "PoolTotal"
	// MetricJobDuration and JobCountMetric(count) are per run, with dimension Job.
	MetricJobDuration = "JobRunDuration"
	// MetricJobAlarm counts the runs that raised an alarm, with the alarm's name as the one
	// dimension Alarm: each name belongs to one job, and a CloudWatch alarm must name the
	// exact dimension set it watches, so Alarm alone is what the stack's alarm matches.
	MetricJobAlarm = "JobAlarm"
	// MetricTimeToDelete is, per sandbox cleanup deleted, the seconds from its release
	// (mark-for-deletion or expiry) to the confirmed CSP delete, with dimension Job: a
	// distribution, so CloudWatch can chart its p50 and p99.
	MetricTimeToDelete = "TimeToDelete"
)

// emfMaxValues is the most values one EMF document may carry for a metric.
const emfMaxValues = 100

// PoolMetric names the gauge of one sandbox status: available → PoolAvailable,
// deletion_failed → PoolDeletionFailed.
func PoolMetric(status string) string { return "Pool" + camel(status) }

// JobCountMetric names a count of a job run's summary: deleted → JobDeleted.
func JobCountMetric(count string) string { return "Job" + camel(count) }

func camel(snake string) string {
	var b strings.Builder
	for _, part := range strings.Split(snake, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

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

// PoolGauges records the number of sandboxes per status and in total, the values of
// the pool-low and deletion_failed alarms.
func (m *Metrics) PoolGauges(byStatus map[string]int, total int) {
	values := []metricValue{{MetricPoolTotal, "Count", float64(total)}}
	for status, n := range byStatus {
		values = append(values, metricValue{PoolMetric(status), "Count", float64(n)})
	}
	m.emit(nil, nil, values)
}

// PublishRun records one run of a background job: its duration and each count of its summary
// (deleted, failed, created ...), with the job as dimension; and, when the run raised an
// alarm (non-empty alarm), one JobAlarm with the alarm as dimension and the job as a plain
// field for Logs Insights.
func (m *Metrics) PublishRun(job string, counts map[string]int, alarm string, duration time.Duration) {
	values := []metricValue{{MetricJobDuration, "Milliseconds", float64(duration.Milliseconds())}}
	for name, n := range counts {
		values = append(values, metricValue{JobCountMetric(name), "Count", float64(n)})
	}
	m.emit([]string{"Job"}, map[string]string{"Job": job}, values)
	if alarm != "" {
		m.emit([]string{"Alarm"}, map[string]string{"Alarm": alarm, "Job": job}, []metricValue{{MetricJobAlarm, "Count", 1}})
	}
}

// TimesToDelete records, for each sandbox a job run deleted, how long after its release the
// delete was confirmed: one value per sandbox, in documents of at most emfMaxValues.
func (m *Metrics) TimesToDelete(job string, times []time.Duration) {
	for chunk := range slices.Chunk(times, emfMaxValues) {
		seconds := make([]float64, len(chunk))
		for i, d := range chunk {
			seconds[i] = d.Seconds()
		}
		m.emit([]string{"Job"}, map[string]string{"Job": job}, []metricValue{{MetricTimeToDelete, "Seconds", seconds}})
	}
}

type metricValue struct {
	name string
	unit string
	// value is a float64, or a []float64 of several data points of one metric.
	value any
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
			"Namespace": m.namespace,
			// A metric without dimensions still needs one (empty) dimension set.
			"Dimensions": [][]string{append([]string{}, dimensions...)},
			"Metrics":    defs,
		}},
	}
	line, _ := json.Marshal(doc) // strings, numbers and slices of them: Marshal cannot fail
	m.mu.Lock()
	defer m.mu.Unlock()
	_, _ = m.w.Write(append(line, '\n'))
}
