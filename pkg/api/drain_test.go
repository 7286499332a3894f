package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/pkg/api/wire"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/pool/pooltest"
)

// A drain over the routes: PUT answers once it is in force; allocate then answers 503
// POOL_DRAINING with Retry-After, a replay 200; stats, /metrics and GET /v1/admin/drain
// show it, with its history as admin actions; DELETE ends it.
func TestDrainRoutes(t *testing.T) {
	f := newFixture(t, config.API{})
	fill(t, f.pool, "lab", 3)
	if resp := f.call(t, event(t, "allocate", student("held"), nil)); resp.StatusCode != http.StatusCreated {
		t.Fatalf("allocate: %d %s", resp.StatusCode, resp.Body)
	}
	for _, bad := range []string{``, `{}`, `{"prefix":1}`, `{"prefix":"lab","extra":1}`, `{"prefix":"` + strings.Repeat("x", 129) + `"}`, `{"prefix":"a\u0007"}`} {
		ev := adminEvent(t, "admin-drain", nil, nil)
		ev.Body = bad
		wantError(t, f.call(t, ev), http.StatusBadRequest, CodeValidation)
	}
	ev := adminEvent(t, "admin-drain", nil, nil)
	ev.Body = `{"prefix":"","reason":"CSP maintenance"}`
	put := f.call(t, ev)
	if d := decode[wire.Drain](t, put.Body); put.StatusCode != http.StatusOK || d.Prefix != "" || *d.Reason != "CSP maintenance" || *d.By != "ops" {
		t.Fatalf("PUT drain: %d %s", put.StatusCode, put.Body)
	}

	refused := f.call(t, event(t, "allocate", student("new-student"), nil))
	if d := wantError(t, refused, http.StatusServiceUnavailable, CodePoolDraining); d.RetryAfter == nil || *d.RetryAfter != retryDraining || refused.Headers["Retry-After"] != "60" {
		t.Fatalf("a drained allocate: %+v %v", d, refused.Headers)
	}
	if replay := f.call(t, event(t, "allocate", student("held"), nil)); replay.StatusCode != http.StatusOK {
		t.Fatalf("a replay while draining: %d %s", replay.StatusCode, replay.Body)
	}
	if st := decode[wire.Stats](t, f.call(t, adminEvent(t, "admin-stats", nil, nil)).Body); len(st.Drains) != 1 || st.Drains[0].Prefix != "" {
		t.Fatalf("stats drains %+v", st.Drains)
	}
	if m := f.call(t, adminEvent(t, "metrics", nil, nil)).Body; !strings.Contains(m, "broker_pool_draining{prefix=\"\"} 1\n") {
		t.Fatalf("metrics lack the drain:\n%s", m)
	}
	ended := f.call(t, adminEvent(t, "admin-undrain", nil, nil))
	if e := decode[wire.DrainsEnded](t, ended.Body); ended.StatusCode != http.StatusOK || len(e.Ended) != 1 || e.Ended[0] != "" {
		t.Fatalf("DELETE drain: %d %s", ended.StatusCode, ended.Body)
	}
	state := decode[wire.DrainState](t, f.call(t, adminEvent(t, "admin-drain-state", nil, nil)).Body)
	if len(state.Drains) != 0 || len(state.History) != 2 || *state.History[0].ActorKind != "admin" || *state.History[0].Actor != "ops" ||
		!strings.Contains(*state.History[1].Reason, "CSP maintenance") {
		t.Fatalf("drain state %+v", state)
	}
	pooltest.Check(t, f.pool)
}
