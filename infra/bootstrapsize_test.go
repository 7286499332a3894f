package main

import (
	"debug/buildinfo"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"testing"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/events"
)

// recordedSizes is testdata/bootstrap-sizes.json: bytes per bootstrap, by GOOS/GOARCH. The
// linux/arm64 figures are those of `make build` (docs/benchmark.md); the test compares the
// figures of the host's platform, because it measures the bootstraps it builds to run under
// the emulator (same flags, so the same code; one build serves both tests).
const recordedSizes = "../testdata/bootstrap-sizes.json"

// maxGrowth is how much a bootstrap may grow over its recorded size before the test fails.
const maxGrowth = 1.10

func TestBootstrapsStayWithinTheirRecordedSize(t *testing.T) {
	bins := buildBootstraps(t)
	var recorded map[string]map[string]int64
	readJSON(t, recordedSizes, &recorded)
	platform := runtime.GOOS + "/" + runtime.GOARCH
	want, ok := recorded[platform]
	if !ok {
		t.Fatalf("%s records no sizes for %s: add the sizes this test logs", recordedSizes, platform)
	}
	var names []string
	for name := range bins.size {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		got := bins.size[name]
		t.Logf("%s: %d bytes (recorded %d)", name, got, want[name])
		switch {
		case want[name] == 0:
			t.Errorf("functions/%s has no recorded size for %s in %s", name, platform, recordedSizes)
		case float64(got) > maxGrowth*float64(want[name]):
			t.Errorf("functions/%s grew to %d bytes, more than %.0f %% over the recorded %d: link less, or record the new size with the reason in docs/benchmark.md",
				name, got, (maxGrowth-1)*100, want[name])
		}
	}
	for name := range want {
		if _, ok := bins.size[name]; !ok {
			t.Errorf("%s records functions/%s, which does not exist", recordedSizes, name)
		}
	}
}

// TestEachBootstrapLinksOnlyTheClientsItCalls reads the modules linked into each bootstrap
// (its build information, as `go version -m` shows it): the Lambda client only in the
// trigger routes, the Secrets Manager client only in the authorizer and the jobs, the API
// Gateway client only in the usage-plans job.
func TestEachBootstrapLinksOnlyTheClientsItCalls(t *testing.T) {
	bins := buildBootstraps(t)
	const (
		lambdaClient     = "github.com/aws/aws-sdk-go-v2/service/lambda"
		secretsClient    = "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
		apigatewayClient = "github.com/aws/aws-sdk-go-v2/service/apigateway"
		eventsClient     = "github.com/aws/aws-sdk-go-v2/service/eventbridge"
		sqsClient        = "github.com/aws/aws-sdk-go-v2/service/sqs"
	)
	// The DynamoDB Streams client is not among them: the build info lists modules, and every
	// function links that module's types through attributevalue.
	eventClients := []string{eventsClient, sqsClient}
	wants := map[string][]string{api.AuthorizerFunction: {secretsClient}, events.ConsumerFunction: eventClients}
	for _, r := range api.Routes {
		wants[r.Name] = nil
		switch {
		case r.Starts != "":
			wants[r.Name] = []string{lambdaClient}
		case r.ReplaysEvents:
			wants[r.Name] = eventClients
		}
	}
	for _, j := range broker.Jobs {
		wants[j.Name] = []string{secretsClient}
		if j.UsesAPIGateway {
			wants[j.Name] = append(wants[j.Name], apigatewayClient)
		}
	}
	for name := range bins.size {
		info, err := buildinfo.ReadFile(filepath.Join(bins.dir, name, "bootstrap"))
		if err != nil {
			t.Fatal(err)
		}
		linked := map[string]bool{}
		for _, dep := range info.Deps {
			linked[dep.Path] = true
		}
		for _, client := range append([]string{lambdaClient, secretsClient, apigatewayClient}, eventClients...) {
			if want := slices.Contains(wants[name], client); linked[client] != want {
				t.Errorf("functions/%s links %s: %v, want %v", name, client, linked[client], want)
			}
		}
	}
}
