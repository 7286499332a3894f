package obs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-xray-sdk-go/v2/strategy/sampling"
	"github.com/aws/aws-xray-sdk-go/v2/xray"
	"github.com/aws/aws-xray-sdk-go/v2/xraylog"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/obs"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

func TestMain(m *testing.M) { pooltest.Main(m) }

// daemon is a stand-in for the X-Ray daemon: it collects the UDP documents the SDK
// emits.
type daemon struct {
	conn *net.UDPConn
	mu   sync.Mutex
	docs []string
}

func startDaemon(t *testing.T) *daemon {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{conn: conn}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			d.mu.Lock()
			d.docs = append(d.docs, string(buf[:n]))
			d.mu.Unlock()
		}
	}()
	return d
}

// received waits for the daemon to have n distinct segments in all and returns their
// documents in the order they first arrived. The SDK may send a segment again: a
// subsegment whose context ends after it closed sends its parent once more
// (xray.Segment.handleContextDone, seen in loaded runs, sometimes with the subsegment
// listed twice). X-Ray keeps one document per segment ID, so the first one counts.
func (d *daemon) received(t *testing.T, n int) []string {
	t.Helper()
	var docs []string
	testkit.Eventually(t, fmt.Sprintf("%d X-Ray segments", n), func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		docs = docs[:0]
		seen := map[string]bool{}
		for _, doc := range d.docs {
			// A daemon document is a header line, then the segment.
			_, body, _ := strings.Cut(doc, "\n")
			var id struct {
				TraceID string `json:"trace_id"`
				ID      string `json:"id"`
			}
			if err := json.Unmarshal([]byte(body), &id); err != nil || id.ID == "" {
				docs = append(docs, doc) // not a segment: kept, for the assertions to show
				continue
			}
			if key := id.TraceID + "/" + id.ID; !seen[key] {
				seen[key] = true
				docs = append(docs, doc)
			}
		}
		return len(docs) >= n
	})
	return docs
}

// marker closes a segment of its own and returns its trace ID. The SDK sends each document
// on one UDP socket as it closes, and loopback keeps their order, so a document that
// arrives before the marker's was sent before it: waiting for the marker's proves what
// was not sent, without waiting an arbitrary time.
func marker() string {
	_, seg := xray.BeginSegment(context.Background(), "marker")
	seg.Close(nil)
	return seg.TraceID
}

// traceHeaders records the X-Ray trace header of each request to DynamoDB.
type traceHeaders struct {
	mu   sync.Mutex
	seen []string
}

func (h *traceHeaders) Do(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Get("X-Amzn-Trace-Id"))
	h.mu.Unlock()
	return http.DefaultClient.Do(r)
}

// A traced DynamoDB client against DynamoDB Local: with no trace in the context it
// records nothing, sends no trace header and logs nothing; inside a segment each call is a
// DynamoDB subsegment and the trace header goes with the request.
func TestAWSAPIOptionsTraceOnlyInsideATrace(t *testing.T) {
	d := startDaemon(t)
	// Every segment sampled: the SDK's default samples one a second and 5 % of the rest.
	everything, err := sampling.NewLocalizedStrategyFromJSONBytes([]byte(`{"version": 2, "default": {"fixed_target": 0, "rate": 1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := xray.Configure(xray.Config{DaemonAddr: d.conn.LocalAddr().String(), SamplingStrategy: everything}); err != nil {
		t.Fatal(err)
	}
	var xrayLog bytes.Buffer
	xray.SetLogger(xraylog.NewDefaultLogger(&xrayLog, xraylog.LogLevelDebug))
	headers := &traceHeaders{}
	db, err := pool.NewClient(context.Background(), pool.ClientOptions{
		Endpoint: pooltest.Endpoint(), Region: "us-east-1", APIOptions: obs.AWSAPIOptions(), HTTPClient: headers,
	})
	if err != nil {
		t.Fatal(err)
	}

	// No trace: a plain context, and the empty trace header a runtime emulator passes.
	//lint:ignore SA1029 the key is the X-Ray SDK's own (a string), which it reads back
	for _, ctx := range []context.Context{context.Background(), context.WithValue(context.Background(), xray.LambdaTraceHeaderKey, "")} {
		if obs.Traced(ctx) {
			t.Fatal("a context without a trace counts as traced")
		}
		if _, err := db.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
			t.Fatalf("an untraced call failed: %v", err)
		}
	}
	first := marker()
	if docs := d.received(t, 1); len(docs) != 1 || !strings.Contains(docs[0], first) ||
		strings.Contains(xrayLog.String(), "segment cannot be found") || strings.Contains(xrayLog.String(), "context missing") {
		t.Fatalf("untraced calls were recorded or complained about: %q, log %q", docs, xrayLog.String())
	}
	for _, h := range headers.seen {
		if h != "" {
			t.Fatalf("an untraced call sent a trace header %q", h)
		}
	}

	ctx, seg := xray.BeginSegment(context.Background(), "allocate")
	if !obs.Traced(ctx) {
		t.Fatal("a context with a segment does not count as traced")
	}
	if _, err := db.ListTables(ctx, &dynamodb.ListTablesInput{}); err != nil {
		t.Fatal(err)
	}
	seg.Close(nil)
	if last := headers.seen[len(headers.seen)-1]; !strings.Contains(last, seg.TraceID) {
		t.Fatalf("the traced call sent trace header %q, want the trace %s", last, seg.TraceID)
	}
	last := marker()
	docs := d.received(t, 3)
	if len(docs) != 3 || !strings.Contains(docs[2], last) {
		t.Fatalf("documents after the first marker: %q, want the one segment, then the marker", docs[1:])
	}
	_, body, _ := strings.Cut(docs[1], "\n")
	var doc struct {
		TraceID     string            `json:"trace_id"`
		Subsegments []json.RawMessage `json:"subsegments"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil || doc.TraceID != seg.TraceID || len(doc.Subsegments) != 1 {
		t.Fatalf("segment %s (%v), want trace %s with one subsegment", body, err, seg.TraceID)
	}
	if sub := string(doc.Subsegments[0]); !strings.Contains(sub, `"name":"DynamoDB"`) || !strings.Contains(sub, `"operation":"ListTables"`) {
		t.Fatalf("the subsegment is not the DynamoDB call: %s", sub)
	}
}
