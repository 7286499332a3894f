package niosxaas_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/pkg/niosxaas"
	"github.com/sandbox-broker/broker/pkg/niosxaas/niosxaasfake"
)

func TestCleanDeletesTheMatchingServicesOnly(t *testing.T) {
	t.Parallel()
	fake := startFake(t, niosxaasfake.Options{})
	id := sandboxID(1)
	other := svc("c3", "customer-dns")
	fake.Seed(id, svc("a1", serviceName), other, svc("b2", serviceName))
	c, logs := newClient(t, fake.URL(), nil)

	got := c.Clean(context.Background(), id)
	want := niosxaas.Outcome{Result: niosxaas.Cleaned, Services: 2, Kept: 1,
		ServiceIDs: []string{"universalinfra/universalservice/a1", "universalinfra/universalservice/b2"}}
	if got.Result != want.Result || got.Services != want.Services || got.Kept != want.Kept || !slices.Equal(got.ServiceIDs, want.ServiceIDs) {
		t.Fatalf("outcome %+v, want %+v", got, want)
	}
	if left := fake.Services(id); !slices.Equal(left, []niosxaasfake.Service{other}) {
		t.Fatalf("services left %v, want only the non-matching %v", left, other)
	}
	n := fake.Counters()
	if n.SignIns != 1 || n.Switches[id] != 1 || n.Lists[id] != 1 || n.Deletes[id] != 2 {
		t.Fatalf("counters %+v, want 1 sign-in, 1 switch, 1 list, 2 deletes", n)
	}
	if !strings.Contains(logs.String(), "niosxaas deleted service") {
		t.Fatalf("no log line per deleted service:\n%s", logs)
	}
}

func TestCleanWithoutServiceNameDeletesEveryService(t *testing.T) {
	t.Parallel()
	fake := startFake(t, niosxaasfake.Options{})
	id := sandboxID(1)
	fake.Seed(id, svc("a1", serviceName), svc("c3", "customer-dns"))
	c, _ := newClient(t, fake.URL(), func(o *niosxaas.Options) { o.ServiceName = "" })
	if got := c.Clean(context.Background(), id); got.Result != niosxaas.Cleaned || got.Services != 2 || got.Kept != 0 {
		t.Fatalf("outcome %+v, want cleaned 2", got)
	}
	if left := fake.Services(id); len(left) != 0 {
		t.Fatalf("services left %v", left)
	}
}

func TestShadowModeReportsAndDeletesNothing(t *testing.T) {
	t.Parallel()
	fake := startFake(t, niosxaasfake.Options{})
	id := sandboxID(1)
	seeded := []niosxaasfake.Service{svc("a1", serviceName), svc("c3", "customer-dns"), svc("b2", serviceName)}
	fake.Seed(id, seeded...)
	c, logs := newClient(t, fake.URL(), func(o *niosxaas.Options) { o.ShadowMode = true })

	got := c.Clean(context.Background(), id)
	if got.Result != niosxaas.Shadow || got.Services != 2 || got.Kept != 1 || len(got.ServiceIDs) != 2 {
		t.Fatalf("outcome %+v, want shadow 2 with their ids", got)
	}
	if left := fake.Services(id); !slices.Equal(left, seeded) {
		t.Fatalf("shadow mode changed the services: %v", left)
	}
	if n := fake.Counters().Deletes[id]; n != 0 {
		t.Fatalf("shadow mode sent %d deletes", n)
	}
	var wouldDelete []string
	for _, line := range logs.JSONLines(t) {
		if line["msg"] == "niosxaas shadow mode: would delete service" && line["external_id"] == id {
			wouldDelete = append(wouldDelete, line["service_id"].(string))
		}
	}
	if !slices.Equal(wouldDelete, got.ServiceIDs) {
		t.Fatalf("logged would-be deletes %v, want %v", wouldDelete, got.ServiceIDs)
	}
}

func TestNothingToClean(t *testing.T) {
	t.Parallel()
	fake := startFake(t, niosxaasfake.Options{})
	empty, others := sandboxID(1), sandboxID(2)
	fake.Seed(others, svc("c3", "customer-dns"))
	for _, shadow := range []bool{false, true} {
		c, _ := newClient(t, fake.URL(), func(o *niosxaas.Options) { o.ShadowMode = shadow })
		if got := c.Clean(context.Background(), empty); got.Result != niosxaas.NoneToClean || got.Services != 0 || got.Kept != 0 {
			t.Fatalf("shadow=%v, empty listing: outcome %+v, want none_to_clean", shadow, got)
		}
		if got := c.Clean(context.Background(), others); got.Result != niosxaas.NoneToClean || got.Kept != 1 {
			t.Fatalf("shadow=%v, no matching service: outcome %+v, want none_to_clean keeping 1", shadow, got)
		}
	}
	if n := fake.Counters(); n.Deletes[others] != 0 || len(fake.Services(others)) != 1 {
		t.Fatalf("a non-matching service was deleted: %+v", n)
	}
}

// The services of one account are deleted by an account-scoped jwt; a 404 means someone
// else already deleted the service, which is what the step wanted.
func TestDeleteAnsweringNotFoundIsSuccess(t *testing.T) {
	t.Parallel()
	fake := startFake(t, niosxaasfake.Options{})
	id := sandboxID(1)
	fake.Seed(id, svc("a1", serviceName), svc("b2", serviceName))
	if err := fake.SetFaults(niosxaasfake.Faults{Delete: niosxaasfake.Endpoint{Fail: niosxaasfake.Failure{Trigger: niosxaasfake.Trigger{Next: 1}, Status: 404}}}); err != nil {
		t.Fatal(err)
	}
	c, _ := newClient(t, fake.URL(), nil)
	if got := c.Clean(context.Background(), id); got.Result != niosxaas.Cleaned || got.Services != 2 {
		t.Fatalf("outcome %+v, want cleaned 2 (the first delete answers 404)", got)
	}
	if n := fake.Counters().Deletes[id]; n != 2 {
		t.Fatalf("%d deletes, want 2", n)
	}
}
