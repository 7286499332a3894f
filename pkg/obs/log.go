package obs

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// NewLogger returns the JSON logger of every function and of the local stack: one object
// per line, which CloudWatch Logs Insights reads field by field. In Lambda each line also
// names the function, invocation, cold start and trace (lambdaHandler), taken from the
// context of the *Context logging calls.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(newLambdaHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}), lambdacontext.FunctionName))
}

// Request is the one log line written per API request. It never holds a token: the
// client is the token's configured name.
type Request struct {
	RequestID string
	Route     string
	Method    string
	Status    int
	Latency   time.Duration
	Student   string
	SandboxID string
	Client    string
	// Outcome is the handler's word for what happened ("created", "replay", "not_owner").
	Outcome string
	// Code is the error code of an error response.
	Code string
	// Cause is the internal error behind a 5xx; it is logged, never returned.
	Cause error
}

// LogRequest writes r. Client errors are not incidents: 404 and 409 are part of normal
// operation and log at INFO, other 4xx at WARN; only 5xx logs at ERROR, so an alarm on
// ERROR lines counts the broker's failures, not its callers' (docs/upstream.md D23).
func LogRequest(ctx context.Context, log *slog.Logger, r Request) {
	level := slog.LevelInfo
	switch {
	case r.Status >= 500:
		level = slog.LevelError
	case r.Status >= 400 && r.Status != 404 && r.Status != 409:
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{
		slog.String("request_id", r.RequestID),
		slog.String("route", r.Route),
		slog.String("method", r.Method),
		slog.Int("status", r.Status),
		slog.Float64("latency_ms", float64(r.Latency.Microseconds())/1000),
		slog.String("outcome", r.Outcome),
	}
	for _, f := range []struct{ key, value string }{
		{"student", r.Student}, {"sandbox_id", r.SandboxID}, {"client", r.Client}, {"code", r.Code},
	} {
		if f.value != "" {
			attrs = append(attrs, slog.String(f.key, f.value))
		}
	}
	if r.Cause != nil {
		attrs = append(attrs, slog.String("error", r.Cause.Error()))
	}
	log.LogAttrs(ctx, level, "request", attrs...)
}
