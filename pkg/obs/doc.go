// Package obs is the broker's observability: JSON logs (log/slog), CloudWatch metrics in
// the embedded metric format, and X-Ray tracing of AWS calls. It is the only package that
// imports the X-Ray SDK (its v2 module, which links no AWS SDK for Go v1), so the move to
// Lambda's built-in tracing or OpenTelemetry before the SDK's end of support changes this
// package alone (docs/operations.md, "Tracing, and the end of the X-Ray SDK").
package obs
