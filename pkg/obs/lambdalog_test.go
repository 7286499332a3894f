package obs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-xray-sdk-go/v2/xray"

	"github.com/sandbox-broker/broker/pkg/obs"
)

// inLambda makes the process look like a Lambda function named name, as the runtime's
// AWS_LAMBDA_FUNCTION_NAME does for lambdacontext.
func inLambda(t *testing.T, name string) {
	before := lambdacontext.FunctionName
	lambdacontext.FunctionName = name
	t.Cleanup(func() { lambdacontext.FunctionName = before })
}

func invocation(requestID, traceHeader string) context.Context {
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: requestID})
	if traceHeader != "" {
		//lint:ignore SA1029 the key is the X-Ray SDK's own (a string), which it reads back
		ctx = context.WithValue(ctx, xray.LambdaTraceHeaderKey, traceHeader)
	}
	return ctx
}

func jsonLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		out = append(out, m)
	}
	return out
}

// TestLambdaLinesCarryTheInvocation: in Lambda every line names the function; lines of an
// invocation name its request id, whether it is the cold start (the process's first
// invocation, and the start-up before it), and its X-Ray trace id when traced, also through
// a logger derived with With.
func TestLambdaLinesCarryTheInvocation(t *testing.T) {
	inLambda(t, "allocate")
	t.Setenv("_X_AMZN_TRACE_ID", "")
	var buf bytes.Buffer
	log := obs.NewLogger(&buf, slog.LevelInfo)
	log.Info("starting")
	log.InfoContext(invocation("req-1", "Root=1-6b0ef29c-fe3d63fe9e8aaecb8a786ffe;Parent=8b6d55bbcd240a88;Sampled=1"), "first")
	log.With("route", "allocate").WarnContext(invocation("req-2", ""), "second")
	obs.LogRequest(invocation("req-2", ""), log, obs.Request{RequestID: "a", Status: 200})

	lines := jsonLines(t, &buf)
	want := []map[string]any{
		{"function_name": "allocate", "cold_start": true},
		{"function_name": "allocate", "function_request_id": "req-1", "cold_start": true, "xray_trace_id": "1-6b0ef29c-fe3d63fe9e8aaecb8a786ffe"},
		{"function_name": "allocate", "function_request_id": "req-2", "cold_start": false, "route": "allocate"},
		{"function_name": "allocate", "function_request_id": "req-2", "cold_start": false},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	for i, w := range want {
		for k, v := range w {
			if lines[i][k] != v {
				t.Errorf("line %d %s = %v, want %v: %s", i, k, lines[i][k], v, buf.String())
			}
		}
		if _, traced := lines[i]["xray_trace_id"]; traced != (w["xray_trace_id"] != nil) {
			t.Errorf("line %d: xray_trace_id present %v, want %v", i, traced, !traced)
		}
	}
}

// TestTraceIDFromTheRuntimeEnvironment: without a header in the context, the id comes from
// the _X_AMZN_TRACE_ID the runtime sets for the invocation.
func TestTraceIDFromTheRuntimeEnvironment(t *testing.T) {
	inLambda(t, "sync")
	t.Setenv("_X_AMZN_TRACE_ID", "Root=1-aaaaaaaa-bbbbbbbbbbbbbbbbbbbbbbbb;Parent=1;Sampled=1")
	var buf bytes.Buffer
	obs.NewLogger(&buf, slog.LevelInfo).InfoContext(invocation("req-9", ""), "run")
	if line := jsonLines(t, &buf)[0]; line["xray_trace_id"] != "1-aaaaaaaa-bbbbbbbbbbbbbbbbbbbbbbbb" {
		t.Fatalf("line %v", line)
	}
}

// TestOutsideLambdaLinesAreUnchanged: the local stack and tests get no Lambda fields.
func TestOutsideLambdaLinesAreUnchanged(t *testing.T) {
	inLambda(t, "")
	var buf bytes.Buffer
	obs.NewLogger(&buf, slog.LevelInfo).InfoContext(invocation("req-1", "Root=1-x"), "local")
	for _, k := range []string{"function_name", "function_request_id", "cold_start", "xray_trace_id"} {
		if _, ok := jsonLines(t, &buf)[0][k]; ok {
			t.Errorf("a line outside Lambda has %s: %s", k, buf.String())
		}
	}
}

// lambdaKeeps is Lambda's application log-level filter for a function with the JSON log
// format: a line is kept when its "level" is at least the configured level, and a line
// without a valid level counts as INFO.
func lambdaKeeps(t *testing.T, line map[string]any, applicationLogLevel string) bool {
	t.Helper()
	order := []string{"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"}
	rank := func(level string) int {
		for i, l := range order {
			if strings.EqualFold(l, level) {
				return i
			}
		}
		return -1
	}
	configured := rank(applicationLogLevel)
	if configured < 0 {
		t.Fatalf("%q is not a Lambda application log level", applicationLogLevel)
	}
	level, _ := line["level"].(string)
	r := rank(level)
	if r < 0 {
		r = rank("INFO")
	}
	return r >= configured
}

// TestEMFLinesSurviveTheStrictestLogLevel: with LOG_LEVEL at its strictest (ERROR), the
// broker drops an INFO log line but still writes the metric, as a line without a level
// field, and Lambda's filter at the ApplicationLogLevel the stack derives keeps it (and
// keeps the ERROR lines); at DEBUG the function-level filter lets DEBUG lines through.
func TestEMFLinesSurviveTheStrictestLogLevel(t *testing.T) {
	inLambda(t, "cleanup")
	for _, level := range []slog.Level{slog.LevelError, slog.LevelWarn, slog.LevelInfo, slog.LevelDebug} {
		var buf bytes.Buffer
		log := obs.NewLogger(&buf, level)
		log.Info("routine")
		obs.NewMetrics(&buf, "SandboxBroker").PublishRun("cleanup", map[string]int{"deleted": 1}, "cleanup_breaker_open", time.Second)
		log.Error("broken")
		lines := jsonLines(t, &buf)
		appLevel := obs.LambdaApplicationLogLevel(level)
		var metrics, errors int
		for _, line := range lines {
			if line["_aws"] != nil {
				metrics++
				if _, ok := line["level"]; ok {
					t.Errorf("an EMF line has a level field: %v", line)
				}
			}
			if line["msg"] == "broken" {
				errors++
			}
			if line["msg"] == "routine" && level > slog.LevelInfo {
				t.Errorf("LOG_LEVEL %v wrote an INFO line", level)
			}
			if !lambdaKeeps(t, line, appLevel) {
				t.Errorf("LOG_LEVEL %v, ApplicationLogLevel %s drops %v", level, appLevel, line)
			}
		}
		if metrics != 2 || errors != 1 {
			t.Fatalf("LOG_LEVEL %v: %d metric lines, %d error lines: %s", level, metrics, errors, buf.String())
		}
	}
	if got := obs.LambdaApplicationLogLevel(slog.LevelDebug); got != "DEBUG" {
		t.Fatalf("DEBUG maps to %s", got)
	}
}
