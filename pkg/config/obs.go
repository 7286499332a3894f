package config

import (
	"log/slog"
	"regexp"
	"strings"
)

// Obs configures logs and metrics.
type Obs struct {
	LogLevel slog.Level
	// MetricsNamespace is the CloudWatch namespace of the EMF metrics.
	MetricsNamespace string
}

// DefaultMetricsNamespace is the namespace the CDK stack's alarms and dashboard read.
const DefaultMetricsNamespace = "SandboxBroker"

var metricsNamespace = regexp.MustCompile(`^[A-Za-z0-9._/#:-]{1,255}$`)

// LoadObs reads LOG_LEVEL (info; debug, info, warn or error) and METRICS_NAMESPACE
// (SandboxBroker).
func LoadObs(env Env) (Obs, error) {
	r := &reader{env: env}
	o := Obs{MetricsNamespace: r.str("METRICS_NAMESPACE", DefaultMetricsNamespace)}
	level := strings.ToLower(r.str("LOG_LEVEL", "info"))
	if err := o.LogLevel.UnmarshalText([]byte(level)); err != nil || strings.ContainsAny(level, "+-") {
		r.fail("LOG_LEVEL", "%q is not one of debug, info, warn, error", level)
	}
	if !metricsNamespace.MatchString(o.MetricsNamespace) {
		r.fail("METRICS_NAMESPACE", "%q is not a CloudWatch namespace", o.MetricsNamespace)
	}
	return o, r.err()
}
