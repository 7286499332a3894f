package obs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandbox-broker/broker/pkg/obs"
)

func TestLogRequestLevels(t *testing.T) {
	for _, c := range []struct {
		status int
		level  string
	}{
		{200, "INFO"}, {201, "INFO"}, {404, "INFO"}, {409, "INFO"},
		{400, "WARN"}, {401, "WARN"}, {403, "WARN"}, {413, "WARN"},
		{500, "ERROR"}, {503, "ERROR"},
	} {
		var buf bytes.Buffer
		obs.LogRequest(context.Background(), obs.NewLogger(&buf, 0), obs.Request{
			RequestID: "r-1", Route: "allocate", Method: "POST", Status: c.status, Latency: 1500 * time.Microsecond,
			Student: "alice", SandboxID: "42", Client: "instruqt", Outcome: "x", Cause: errors.New("cause"),
		})
		var line map[string]any
		if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
			t.Fatalf("not one JSON line: %q", buf.String())
		}
		if line["level"] != c.level {
			t.Errorf("status %d logged at %v, want %s", c.status, line["level"], c.level)
		}
		for k, v := range map[string]any{"request_id": "r-1", "route": "allocate", "status": float64(c.status), "latency_ms": 1.5,
			"student": "alice", "sandbox_id": "42", "client": "instruqt", "outcome": "x", "error": "cause"} {
			if line[k] != v {
				t.Errorf("%s = %v, want %v", k, line[k], v)
			}
		}
	}
}

func TestAllocationMetricIsEMF(t *testing.T) {
	var buf bytes.Buffer
	m := obs.NewMetrics(&buf, "SandboxBroker")
	m.Allocation(obs.AllocationCreated, 12*time.Millisecond+500*time.Microsecond)
	m.Allocation(obs.AllocationNoSandbox, time.Millisecond)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want one line per data point, got %q", buf.String())
	}
	var doc struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Outcome           string
		Allocations       float64
		AllocationLatency float64
	}
	if err := json.Unmarshal([]byte(lines[0]), &doc); err != nil {
		t.Fatal(err)
	}
	if time.Since(time.UnixMilli(doc.AWS.Timestamp)) > time.Minute || len(doc.AWS.CloudWatchMetrics) != 1 {
		t.Fatalf("metadata %+v", doc.AWS)
	}
	cw := doc.AWS.CloudWatchMetrics[0]
	if cw.Namespace != "SandboxBroker" || len(cw.Dimensions) != 1 || len(cw.Dimensions[0]) != 1 || cw.Dimensions[0][0] != "Outcome" {
		t.Fatalf("directive %+v", cw)
	}
	units := map[string]string{}
	for _, m := range cw.Metrics {
		units[m.Name] = m.Unit
	}
	if units[obs.MetricAllocations] != "Count" || units[obs.MetricAllocationLatency] != "Milliseconds" {
		t.Fatalf("metrics %+v", cw.Metrics)
	}
	if doc.Outcome != "created" || doc.Allocations != 1 || doc.AllocationLatency != 12.5 {
		t.Fatalf("values %+v", doc)
	}
	if !strings.Contains(lines[1], `"Outcome":"no_sandbox"`) {
		t.Fatalf("second point %s", lines[1])
	}
}

// emfDoc decodes one EMF line into its directive and its values.
func emfDoc(t *testing.T, line string) (dims [][]string, units map[string]string, values map[string]any) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal([]byte(line), &doc); err != nil {
		t.Fatal(err)
	}
	var meta struct {
		CloudWatchMetrics []struct {
			Namespace  string
			Dimensions [][]string
			Metrics    []struct{ Name, Unit string }
		}
	}
	raw, _ := json.Marshal(doc["_aws"])
	if err := json.Unmarshal(raw, &meta); err != nil || len(meta.CloudWatchMetrics) != 1 {
		t.Fatalf("directive %s: %v", raw, err)
	}
	units = map[string]string{}
	for _, m := range meta.CloudWatchMetrics[0].Metrics {
		units[m.Name] = m.Unit
	}
	return meta.CloudWatchMetrics[0].Dimensions, units, doc
}

func TestPoolGaugesAndJobRunsAreEMF(t *testing.T) {
	var buf bytes.Buffer
	m := obs.NewMetrics(&buf, "SandboxBroker")
	m.PoolGauges(map[string]int{"available": 7, "deletion_failed": 2}, 12)
	m.PublishRun("cleanup", map[string]int{"deleted": 3, "deletion_failed": 1}, "", 1500*time.Millisecond)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines %q", lines)
	}
	dims, units, values := emfDoc(t, lines[0])
	// CloudWatch needs one dimension set even for a metric without dimensions.
	if len(dims) != 1 || len(dims[0]) != 0 || units["PoolAvailable"] != "Count" || units[obs.MetricPoolTotal] != "Count" ||
		values["PoolAvailable"] != 7.0 || values["PoolDeletionFailed"] != 2.0 || values[obs.MetricPoolTotal] != 12.0 {
		t.Fatalf("pool gauges: dims %v units %v values %v", dims, units, values)
	}
	dims, units, values = emfDoc(t, lines[1])
	if len(dims) != 1 || len(dims[0]) != 1 || dims[0][0] != "Job" || values["Job"] != "cleanup" ||
		units[obs.MetricJobDuration] != "Milliseconds" || values[obs.MetricJobDuration] != 1500.0 ||
		values["JobDeleted"] != 3.0 || values["JobDeletionFailed"] != 1.0 {
		t.Fatalf("job run: dims %v units %v values %v", dims, units, values)
	}
	if obs.PoolMetric("pending_deletion") != "PoolPendingDeletion" || obs.JobCountMetric("rate_limited") != "JobRateLimited" {
		t.Fatal("metric names")
	}
}

// TestARaisedAlarmIsAMetricWithTheAlarmDimension: a run that raised an alarm adds one
// JobAlarm data point whose only dimension is Alarm, the dimension set the stack's
// CloudWatch alarms watch; a run without one adds none.
func TestARaisedAlarmIsAMetricWithTheAlarmDimension(t *testing.T) {
	var buf bytes.Buffer
	m := obs.NewMetrics(&buf, "SandboxBroker")
	m.PublishRun("cleanup", map[string]int{"failed": 1}, "cleanup_breaker_open", time.Second)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("lines %q", lines)
	}
	dims, units, values := emfDoc(t, lines[1])
	if len(dims) != 1 || !slices.Equal(dims[0], []string{"Alarm"}) || values["Alarm"] != "cleanup_breaker_open" ||
		units[obs.MetricJobAlarm] != "Count" || values[obs.MetricJobAlarm] != 1.0 || values["Job"] != "cleanup" {
		t.Fatalf("alarm metric: dims %v units %v values %v", dims, units, values)
	}
	buf.Reset()
	m.PublishRun("cleanup", map[string]int{"deleted": 1}, "", time.Second)
	if n := strings.Count(buf.String(), obs.MetricJobAlarm); n != 0 {
		t.Fatalf("a run without an alarm published JobAlarm: %s", buf.String())
	}
}

// TestTimesToDeleteIsADistribution checks that each deleted sandbox is one data point in
// seconds, and that a large run is split into EMF documents of at most 100 values.
func TestTimesToDeleteIsADistribution(t *testing.T) {
	var buf bytes.Buffer
	m := obs.NewMetrics(&buf, "SandboxBroker")
	times := make([]time.Duration, 150)
	for i := range times {
		times[i] = time.Duration(i+1) * 500 * time.Millisecond
	}
	m.TimesToDelete("cleanup", times)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d documents for 150 values, want 2", len(lines))
	}
	var got []float64
	for _, line := range lines {
		dims, units, values := emfDoc(t, line)
		if len(dims) != 1 || len(dims[0]) != 1 || dims[0][0] != "Job" || values["Job"] != "cleanup" || units[obs.MetricTimeToDelete] != "Seconds" {
			t.Fatalf("dims %v units %v values %v", dims, units, values)
		}
		points, ok := values[obs.MetricTimeToDelete].([]any)
		if !ok || len(points) > 100 {
			t.Fatalf("values %v: want an array of at most 100", values[obs.MetricTimeToDelete])
		}
		for _, p := range points {
			got = append(got, p.(float64))
		}
	}
	if len(got) != 150 || got[0] != 0.5 || got[149] != 75 {
		t.Fatalf("%d values, first %v, last %v; want 150 from 0.5 to 75", len(got), got[0], got[len(got)-1])
	}
}
