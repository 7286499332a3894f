package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"

	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/niosxaas"
)

// StackConfig is the deployment's configuration, from CDK context (cdk.json or -c key=value).
type StackConfig struct {
	AssetDir           string // folder holding <function>/bootstrap, built by `make build`
	LabDurationHours   int
	GracePeriodMinutes int
	// LabExtensionHours and MaxLabDurationHours are extend's (LAB_EXTENSION_HOURS,
	// MAX_LAB_DURATION_HOURS).
	LabExtensionHours    int
	MaxLabDurationHours  int
	CSPBaseURL           string
	CORSAllowedOrigins   string   // comma-separated; empty allows no cross-origin caller
	CORSOrigins          []string // CORSAllowedOrigins, validated as the functions read it
	PoolLowWaterMark     int      // alarm when fewer sandboxes are available
	AlarmEmail           string   // optional subscription to the alarm topic
	WAF                  bool
	WAFRequestsPer5MinIP int
	APIThrottleRate      int
	APIThrottleBurst     int
	AuthorizerCacheSecs  int
	LogLevel             slog.Level // every function's LOG_LEVEL; Lambda's filter follows it
	// The cleanup job's NIOSXaaS pre-delete step (docs/configuration.md, NIOSXAAS_*): off
	// by default and, when on, in shadow mode by default. Its credentials are never
	// context: they are put into the stack's NIOSXaaS secret.
	NIOSXaaSEnabled     bool
	NIOSXaaSShadowMode  bool
	NIOSXaaSBaseURL     string
	NIOSXaaSServiceName string
	// PeakAllocationsPerSecond sizes the table's warm throughput (warmthroughput.go).
	PeakAllocationsPerSecond int
	// AccountConcurrency is the account's Lambda concurrency quota in the region, as the
	// operator states it (a new account's may be as low as 10). JobReservedConcurrency
	// reserves that many executions for each job function; 0, the default, reserves none:
	// the job lease already keeps a job's runs from overlapping. Synth refuses reservations
	// Lambda would refuse (checkReservations).
	AccountConcurrency     int
	JobReservedConcurrency int
}

// lambdaMinUnreserved is what Lambda keeps unreserved: it refuses a reservation that would
// leave fewer than 100 of the account's concurrent executions to the functions without one.
const lambdaMinUnreserved = 100

// smallestAccountConcurrency is the smallest concurrency quota a new account may have.
const smallestAccountConcurrency = 10

// checkReservations fails when the job functions' reservations cannot fit the stated
// account quota: at synth, not half way through a deploy (docs/operations.md shows the
// arithmetic).
func checkReservations(cfg StackConfig) error {
	reserved := cfg.JobReservedConcurrency * len(jobs.Table)
	if reserved == 0 || cfg.AccountConcurrency-reserved >= lambdaMinUnreserved {
		return nil
	}
	return fmt.Errorf("jobReservedConcurrency: %d for each of the %d jobs reserves %d of the account's %d concurrent executions (accountConcurrency) "+
		"and leaves %d; Lambda refuses any reservation that leaves fewer than %d unreserved. Raise the account's quota and state it "+
		"(-c accountConcurrency=%d or more), or reserve nothing (jobReservedConcurrency=0: the job lease keeps runs from overlapping)",
		cfg.JobReservedConcurrency, len(jobs.Table), reserved, cfg.AccountConcurrency, cfg.AccountConcurrency-reserved,
		lambdaMinUnreserved, reserved+lambdaMinUnreserved)
}

func configFromContext(node constructs.Node) (StackConfig, error) {
	c := contextReader{node: node}
	cfg := StackConfig{
		AssetDir:             c.str("assetDir", "build"),
		LabDurationHours:     c.int("labDurationHours", 48, 1, 720),
		GracePeriodMinutes:   c.int("gracePeriodMinutes", 30, 0, 1440),
		LabExtensionHours:    c.int("labExtensionHours", config.DefaultLabExtensionHours, 1, 24*30),
		MaxLabDurationHours:  c.int("maxLabDurationHours", config.DefaultMaxLabDurationHours, 1, 24*90),
		CSPBaseURL:           c.str("cspBaseUrl", "https://csp.infoblox.com/v2"),
		CORSAllowedOrigins:   c.str("corsAllowedOrigins", ""),
		PoolLowWaterMark:     c.int("poolLowWaterMark", 20, 0, 1_000_000),
		AlarmEmail:           c.str("alarmEmail", ""),
		WAF:                  c.bool("waf"),
		WAFRequestsPer5MinIP: c.int("wafRequestsPer5MinPerIp", 2000, 100, 2_000_000_000),
		// The defaults are api.StageThrottle, which the local emulator enforces too; cdk.json
		// does not repeat them. The maxima are API Gateway's default account limits.
		APIThrottleRate:          c.int("apiThrottleRate", api.StageThrottle.Rate, 1, 10_000),
		APIThrottleBurst:         c.int("apiThrottleBurst", api.StageThrottle.Burst, 1, 5_000),
		AuthorizerCacheSecs:      c.int("authorizerCacheSeconds", 300, 0, 3600),
		LogLevel:                 c.logLevel("logLevel"),
		NIOSXaaSEnabled:          c.bool("niosxaasEnabled"),
		NIOSXaaSShadowMode:       c.boolOr("niosxaasShadowMode", true),
		NIOSXaaSBaseURL:          c.str("niosxaasBaseUrl", niosxaas.DefaultBaseURL),
		NIOSXaaSServiceName:      c.str("niosxaasServiceName", "Instrqt-SaaS"),
		PeakAllocationsPerSecond: c.int("peakAllocationsPerSecond", 1000, 1, 100_000),
		AccountConcurrency:       c.int("accountConcurrency", smallestAccountConcurrency, smallestAccountConcurrency, 10_000_000),
		JobReservedConcurrency:   c.int("jobReservedConcurrency", 0, 0, 1000),
	}
	if err := checkReservations(cfg); err != nil {
		c.errs = append(c.errs, err)
	}
	if u, err := url.Parse(cfg.NIOSXaaSBaseURL); err != nil || u.Scheme != "https" || u.Host == "" {
		c.errs = append(c.errs, fmt.Errorf("niosxaasBaseUrl: %q is not an https URL", cfg.NIOSXaaSBaseURL))
	} else if cfg.NIOSXaaSBaseURL, err = niosxaas.ValidateBaseURL(cfg.NIOSXaaSBaseURL); err != nil {
		c.errs = append(c.errs, fmt.Errorf("niosxaasBaseUrl: %w", err))
	}
	if a, err := config.LoadAPI(onlyVar("CORS_ALLOWED_ORIGINS", cfg.CORSAllowedOrigins)); err != nil {
		c.errs = append(c.errs, fmt.Errorf("corsAllowedOrigins: %w", err))
	} else {
		cfg.CORSOrigins = a.CORSOrigins
	}
	// The pool settings are checked together as the functions check them (pkg/config).
	if _, err := config.LoadPool(vars(map[string]string{
		"TABLE_NAME": "synth", "LAB_DURATION_HOURS": strconv.Itoa(cfg.LabDurationHours),
		"LAB_EXTENSION_HOURS": strconv.Itoa(cfg.LabExtensionHours), "MAX_LAB_DURATION_HOURS": strconv.Itoa(cfg.MaxLabDurationHours),
	})); err != nil {
		c.errs = append(c.errs, fmt.Errorf("labDurationHours, labExtensionHours, maxLabDurationHours: %w", err))
	}
	if u, err := url.Parse(cfg.CSPBaseURL); err != nil || u.Scheme != "https" || u.Host == "" {
		c.errs = append(c.errs, fmt.Errorf("cspBaseUrl: %q is not an https URL", cfg.CSPBaseURL))
	}
	return cfg, errors.Join(c.errs...)
}

type contextReader struct {
	node constructs.Node
	errs []error
}

// raw returns the context value as text: cdk.json gives JSON values, -c gives strings.
func (c *contextReader) raw(key string) (string, bool) {
	v := c.node.TryGetContext(jsii.String(key))
	if v == nil {
		return "", false
	}
	return fmt.Sprint(v), true
}

func (c *contextReader) str(key, def string) string {
	if v, ok := c.raw(key); ok {
		return v
	}
	return def
}

func (c *contextReader) int(key string, def, min, max int) int {
	v, ok := c.raw(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		c.errs = append(c.errs, fmt.Errorf("%s: %q is not an integer in %d..%d", key, v, min, max))
		return def
	}
	return n
}

// logLevel reads a level as LOG_LEVEL takes it (pkg/config): debug, info, warn or error.
func (c *contextReader) logLevel(key string) slog.Level {
	v, ok := c.raw(key)
	if !ok {
		return slog.LevelInfo
	}
	level, err := config.LoadObs(onlyVar("LOG_LEVEL", v))
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("%s: %q is not one of debug, info, warn, error", key, v))
		return slog.LevelInfo
	}
	return level.LogLevel
}

func (c *contextReader) bool(key string) bool { return c.boolOr(key, false) }

func (c *contextReader) boolOr(key string, def bool) bool {
	v, ok := c.raw(key)
	if !ok {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		c.errs = append(c.errs, fmt.Errorf("%s: %q is not true or false", key, v))
		return def
	}
	return b
}

// vars is an environment holding exactly m.
func vars(m map[string]string) config.Env { return func(k string) string { return m[k] } }

// onlyVar is an environment holding one variable: context values are checked by the same
// pkg/config rules the functions apply to the variables they become.
func onlyVar(name, value string) config.Env {
	return func(k string) string {
		if k == name {
			return value
		}
		return ""
	}
}
