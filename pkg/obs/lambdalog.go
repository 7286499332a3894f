package obs

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-xray-sdk-go/v2/xray"
)

// Lambda's JSON log format filters application lines by their "level" field and gives a
// line without one (an EMF metric line) the level INFO.
// So the function-level filter must never be stricter than INFO, or it would drop every
// metric: the broker's own LOG_LEVEL does the stricter filtering of log lines, and Lambda's
// ApplicationLogLevel is LambdaApplicationLogLevel(LOG_LEVEL).
const lambdaLevelOfUnlevelledLines = slog.LevelInfo

// LambdaApplicationLogLevel is the ApplicationLogLevel of a function whose LOG_LEVEL is
// level: level itself when it is more detailed than INFO, INFO otherwise, so that EMF
// lines always pass Lambda's filter.
func LambdaApplicationLogLevel(level slog.Level) string {
	return strings.ToUpper(min(level, lambdaLevelOfUnlevelledLines).String())
}

// lambdaHandler adds the invocation's identity to every line, the fields Lambda's own JSON
// logs use for a request: function_name, and inside an invocation function_request_id and
// cold_start (the first invocation of this process, and the start-up before it), and
// xray_trace_id when the invocation is traced. Outside Lambda it adds nothing.
type lambdaHandler struct {
	slog.Handler
	function string
	first    *firstInvocation
}

// firstInvocation remembers the request id of the first invocation a process served.
type firstInvocation struct {
	mu        sync.Mutex
	requestID string
}

// cold reports whether requestID is the process's first invocation; "" asks whether no
// invocation has started yet (start-up).
func (f *firstInvocation) cold(requestID string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.requestID == "" {
		f.requestID = requestID
	}
	return f.requestID == requestID
}

func newLambdaHandler(h slog.Handler, function string) slog.Handler {
	if function == "" {
		return h
	}
	return lambdaHandler{Handler: h, function: function, first: &firstInvocation{}}
}

func (h lambdaHandler) Handle(ctx context.Context, r slog.Record) error {
	r = r.Clone()
	r.AddAttrs(slog.String("function_name", h.function))
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String("function_request_id", lc.AwsRequestID), slog.Bool("cold_start", h.first.cold(lc.AwsRequestID)))
	} else {
		r.AddAttrs(slog.Bool("cold_start", h.first.cold("")))
	}
	if id := traceID(ctx); id != "" {
		r.AddAttrs(slog.String("xray_trace_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h lambdaHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return lambdaHandler{Handler: h.Handler.WithAttrs(attrs), function: h.function, first: h.first}
}

func (h lambdaHandler) WithGroup(name string) slog.Handler {
	return lambdaHandler{Handler: h.Handler.WithGroup(name), function: h.function, first: h.first}
}

// traceID is the X-Ray trace id (the Root of the trace header) of ctx's invocation: from
// the segment, the header the runtime puts in the context, or the _X_AMZN_TRACE_ID it
// sets for the invocation; "" when untraced.
func traceID(ctx context.Context) string {
	if seg := xray.GetSegment(ctx); seg != nil && seg.TraceID != "" {
		return seg.TraceID
	}
	header, _ := ctx.Value(xray.LambdaTraceHeaderKey).(string) //nolint:staticcheck // the runtime's own key
	if header == "" {
		header = os.Getenv("_X_AMZN_TRACE_ID")
	}
	for _, part := range strings.Split(header, ";") {
		if root, ok := strings.CutPrefix(part, "Root="); ok {
			return root
		}
	}
	return ""
}
