package obs

import (
	"context"

	"github.com/aws/aws-xray-sdk-go/v2/instrumentation/awsv2"
	"github.com/aws/aws-xray-sdk-go/v2/strategy/ctxmissing"
	"github.com/aws/aws-xray-sdk-go/v2/xray"
	"github.com/aws/smithy-go/middleware"
)

// AWSAPIOptions returns AWS SDK middleware (for aws.Config.APIOptions or
// pool.ClientOptions.APIOptions) that records every AWS call as an X-Ray subsegment of the
// current trace and passes the trace header on.
//
// Without a trace context (the local stack, tests, a Lambda function with tracing off)
// it does nothing: no subsegment, no trace header, and no "context missing" complaint,
// which the X-Ray SDK would otherwise log on every call.
func AWSAPIOptions() []func(*middleware.Stack) error {
	opts := []func(*middleware.Stack) error{untracedGate}
	awsv2.AWSV2Instrumentor(&opts)
	return opts
}

// untraced is the recorder configuration of a call outside any trace: it tells the X-Ray
// middleware that a missing segment is expected.
var untraced = &xray.Config{ContextMissingStrategy: ctxmissing.NewDefaultIgnoreErrorStrategy()}

// untracedGate runs first in the Initialize step, before the X-Ray middleware.
func untracedGate(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("obs.UntracedGate",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if !Traced(ctx) {
				ctx = context.WithValue(ctx, xray.RecorderContextKey{}, untraced)
				// An empty trace header (a runtime emulator sends one) must not start a
				// facade segment; shadow it.
				//lint:ignore SA1029 the key is the X-Ray SDK's own (a string), which it reads back
				ctx = context.WithValue(ctx, xray.LambdaTraceHeaderKey, nil)
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// Traced reports whether ctx carries a trace: an X-Ray segment, or the trace header the
// Lambda runtime puts in the invocation's context.
func Traced(ctx context.Context) bool {
	if xray.GetSegment(ctx) != nil {
		return true
	}
	header, _ := ctx.Value(xray.LambdaTraceHeaderKey).(string)
	return header != ""
}
