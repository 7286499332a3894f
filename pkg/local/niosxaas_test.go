package local

import (
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// TestLocalNIOSXaaSRunsTheStepBeforeTheDelete: LOCAL_NIOSXAAS starts the fake NIOSXaaS
// (banner line), the cleanup job runs the step against it, admin inspect shows the
// outcome and stats the oldest pending deletion until it is drained.
func TestLocalNIOSXaaSRunsTheStepBeforeTheDelete(t *testing.T) {
	_, banner, _ := startStack(t, map[string]string{"LOCAL_NIOSXAAS": "1"})
	if !strings.Contains(banner, "NIOSXaaS    [started] fake NIOSXaaS at http://127.0.0.1:") {
		t.Fatalf("the banner lacks the fake NIOSXaaS:\n%s", banner)
	}

	s := startAdminStack(t, nil, map[string]string{"LOCAL_NIOSXAAS": "1", "NIOSXAAS_SHADOW_MODE": "false", "SEED_SANDBOXES": "3", "SEED_PREFIXES": "lab"})
	id := allocateFor(t, s, "participant-1", "lab")
	release(t, s, "participant-1", id)
	if st := adminCall[map[string]any](t, s, "GET", "/v1/admin/stats"); st["oldest_pending_deletion_at"] == nil {
		t.Fatalf("stats with a pending deletion: %v", st)
	}
	run := runJob(t, s, "cleanup")
	if run.Outcome != "ok" || run.Counts["niosxaas_cleaned"] != 1 || run.Counts["deleted"] != 1 {
		t.Fatalf("cleanup %+v", run)
	}
	detail := adminCall[struct {
		Sandbox map[string]any
		History []map[string]any
	}](t, s, "GET", "/v1/admin/sandboxes/"+id)
	if detail.Sandbox["niosxaas_outcome"] != "cleaned" || detail.Sandbox["niosxaas_services"] != 1.0 || detail.Sandbox["niosxaas_at"] == nil ||
		detail.Sandbox["niosxaas_failures"] != 0.0 || detail.Sandbox["niosxaas_reason"] != nil {
		t.Fatalf("inspect %v", detail.Sandbox)
	}
	if detail.History[1]["reason"] != "niosxaas cleaned 1" {
		t.Fatalf("history %v", detail.History)
	}
	if st := adminCall[map[string]any](t, s, "GET", "/v1/admin/stats"); st["oldest_pending_deletion_at"] != nil {
		t.Fatalf("stats with nothing pending: %v", st)
	}
	pooltest.Check(t, s.pool)
}
