package main

import (
	"debug/buildinfo"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"testing"

	"github.com/sandbox-broker/broker/pkg/app"
)

// recordedSizes is testdata/bootstrap-sizes.json, written by `make bootstrap-sizes`
// (cmd/coldstart): bytes of the bootstrap of each kind of function (app.KindOf), by
// GOOS/GOARCH, built with the flags of `make build`. A kind's functions differ only in the
// name their main passes, so one size per kind: adding a route or a job records nothing
// unless it is of a new kind. The test compares the figures of the host's platform,
// because it measures the bootstraps it builds to run under the emulator (same flags, so
// the same code; one build serves both tests).
const recordedSizes = "../testdata/bootstrap-sizes.json"

// maxGrowth is how much a bootstrap may grow over its kind's recorded size before the test fails.
const maxGrowth = 1.10

func TestBootstrapsStayWithinTheirRecordedSize(t *testing.T) {
	bins := buildBootstraps(t)
	var recorded struct {
		Command string                        `json:"command"`
		Sizes   map[string]map[app.Kind]int64 `json:"sizes"`
	}
	readJSON(t, recordedSizes, &recorded)
	platform := runtime.GOOS + "/" + runtime.GOARCH
	want, ok := recorded.Sizes[platform]
	if !ok {
		t.Fatalf("%s records no sizes for %s: run %s", recordedSizes, platform, recorded.Command)
	}
	var names []string
	for name := range bins.size {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		kind := functionKind(t, name)
		got := bins.size[name]
		t.Logf("%s (%s): %d bytes (recorded %d)", name, kind, got, want[kind])
		switch {
		case want[kind] == 0:
			t.Errorf("functions/%s is a %s, a kind with no recorded size for %s in %s: run %s", name, kind, platform, recordedSizes, recorded.Command)
		case float64(got) > maxGrowth*float64(want[kind]):
			t.Errorf("functions/%s grew to %d bytes, more than %.0f %% over the %d recorded for a %s: link less, or run %s and give the reason in docs/benchmark.md",
				name, got, (maxGrowth-1)*100, want[kind], kind, recorded.Command)
		}
	}
	for kind := range want {
		if !slices.Contains(app.Kinds, kind) {
			t.Errorf("%s records a size for %q, which is no kind of function", recordedSizes, kind)
		}
	}
}

// functionKind is the kind of functions/<name>, from the route and job tables.
func functionKind(t *testing.T, name string) app.Kind {
	t.Helper()
	kind, ok := app.KindOf(name)
	if !ok {
		t.Fatalf("functions/%s is of no kind of function (app.KindOf)", name)
	}
	return kind
}

// TestEachBootstrapLinksOnlyTheClientsItCalls reads the modules linked into each bootstrap
// (its build information, as `go version -m` shows it): the Lambda client only in the
// trigger routes, the Secrets Manager client only in the authorizer and the jobs, the API
// Gateway client only in the usage-plans job, the EventBridge and SQS clients only in the
// events' consumer and replay route, and in none the AWS SDK for Go v1, out of
// support since 2025-07-31 (the X-Ray SDK's v1 module linked it).
func TestEachBootstrapLinksOnlyTheClientsItCalls(t *testing.T) {
	bins := buildBootstraps(t)
	const (
		lambdaClient     = "github.com/aws/aws-sdk-go-v2/service/lambda"
		secretsClient    = "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
		apigatewayClient = "github.com/aws/aws-sdk-go-v2/service/apigateway"
		eventsClient     = "github.com/aws/aws-sdk-go-v2/service/eventbridge"
		sqsClient        = "github.com/aws/aws-sdk-go-v2/service/sqs"
		sdkV1            = "github.com/aws/aws-sdk-go"
	)
	// The DynamoDB Streams client is not among them: the build info lists modules, and every
	// function links that module's types through attributevalue.
	wants := map[app.Kind][]string{
		app.KindRoute:         nil,
		app.KindTriggerRoute:  {lambdaClient},
		app.KindAuthorizer:    {secretsClient},
		app.KindJob:           {secretsClient},
		app.KindUsagePlansJob: {secretsClient, apigatewayClient},
		app.KindReplayRoute:   {eventsClient, sqsClient},
		app.KindEventConsumer: {eventsClient, sqsClient},
	}
	for name := range bins.size {
		want := wants[functionKind(t, name)]
		info, err := buildinfo.ReadFile(filepath.Join(bins.dir, name, "bootstrap"))
		if err != nil {
			t.Fatal(err)
		}
		linked := map[string]bool{}
		for _, dep := range info.Deps {
			linked[dep.Path] = true
		}
		for _, client := range []string{lambdaClient, secretsClient, apigatewayClient, eventsClient, sqsClient} {
			if linked[client] != slices.Contains(want, client) {
				t.Errorf("functions/%s links %s: %v, want %v", name, client, linked[client], !linked[client])
			}
		}
		if linked[sdkV1] {
			t.Errorf("functions/%s links %s (v1), out of support: `go version -m` shows what brings it in", name, sdkV1)
		}
	}
}
