package app_test

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/app/job"
	"github.com/sandbox-broker/broker/pkg/broker"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/jobs"
	"github.com/sandbox-broker/broker/pkg/niosxaas/niosxaasfake"
	"github.com/sandbox-broker/broker/pkg/pool"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// TestCleanupFunctionRunsTheNIOSXaaSStep builds the cleanup function from an environment
// with NIOSXAAS_ENABLED and runs it: the matching service goes before the account, and the
// function's logs hold no credential. The sync function, built from the same
// environment, never reads the NIOSXaaS settings.
func TestCleanupFunctionRunsTheNIOSXaaSStep(t *testing.T) {
	const (
		token    = "jobfn-nios-token"
		email    = "step@example.com"
		password = "pw-step-Zk2!"
	)
	accounts := cspfake.Generate(1, nil)
	csp := cspfake.Started(t, cspfake.Options{Token: token}, accounts...)
	nios := niosxaasfake.Started(t, niosxaasfake.Options{Email: email, Password: password})
	nios.Seed(accounts[0].ID, niosxaasfake.Service{ID: "universalinfra/universalservice/s1", Name: "Instrqt-SaaS"})

	table := pooltest.NewTable(t)
	env := map[string]string{
		"TABLE_NAME": table, "DYNAMODB_ENDPOINT": pooltest.Endpoint(), "AWS_REGION": "us-east-1",
		"CSP_BASE_URL": csp.URL(), "CSP_API_TOKEN": token,
		"NIOSXAAS_ENABLED": "true", "NIOSXAAS_SHADOW_MODE": "false", "NIOSXAAS_BASE_URL": nios.URL(),
		"NIOSXAAS_EMAIL": email, "NIOSXAAS_PASSWORD": password,
	}
	logs := &testkit.Buffer{}
	if _, _, err := job.NIOSXaaSStep(ctx, testkit.Env(map[string]string{"NIOSXAAS_ENABLED": "false", "NIOSXAAS_MAX_ATTEMPTS": "nope"}), nil, nil); err != nil {
		t.Fatalf("a disabled step read its settings: %v", err)
	}
	run := func(name string) jobs.Summary {
		t.Helper()
		h, err := job.Function(ctx, testkit.Env(env), logs, name)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := h(ctx, json.RawMessage(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		return sum
	}
	run("sync")
	poolCfg, err := config.LoadPool(testkit.Env(env))
	if err != nil {
		t.Fatal(err)
	}
	b := broker.New(pool.New(pooltest.Client(), table, pool.Options{}), poolCfg)
	id := strconv.FormatInt(accounts[0].CSPID, 10)
	if _, err := b.Allocate(ctx, broker.AllocateRequest{Student: "s", NamePrefix: accounts[0].Name}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Release(ctx, id, pool.Holder{Student: "s"}, "req-1"); err != nil {
		t.Fatal(err)
	}
	if sum := run("cleanup"); sum.Counts["niosxaas_cleaned"] != 1 || sum.Counts["deleted"] != 1 {
		t.Fatalf("cleanup: %+v", sum)
	}
	if left := nios.Services(accounts[0].ID); len(left) != 0 || !csp.Deleted(accounts[0].UUID()) {
		t.Fatalf("services left %v; account deleted %v", left, csp.Deleted(accounts[0].UUID()))
	}
	if c := nios.Counters(); c.SignIns != 1 {
		t.Fatalf("%d sign-ins", c.SignIns)
	}
	for _, secret := range []string{password, email, "eyJ"} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("the function's logs hold %q", secret)
		}
	}
	pooltest.Check(t, pool.New(pooltest.Client(), table, pool.Options{}))
}
