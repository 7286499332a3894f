// Package obs is the broker's observability: JSON logs (log/slog), CloudWatch metrics in
// the embedded metric format, and X-Ray tracing of AWS calls. It is the only package that
// imports the X-Ray SDK, so moving to OpenTelemetry changes this package alone.
package obs
