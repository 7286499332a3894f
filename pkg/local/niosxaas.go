package local

import (
	"fmt"
	"reflect"

	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/csp/cspfake"
	"github.com/sandbox-broker/broker/pkg/niosxaas/niosxaasfake"
)

// fakeNIOSXaaSService is the service the fake NIOSXaaS gives every seeded sandbox: the
// default NIOSXAAS_SERVICE_NAME, so the step has something to clean.
const fakeNIOSXaaSService = "Instrqt-SaaS"

// startNIOSXaaS starts the fake NIOSXaaS with generated credentials and the faults of
// FAKE_NIOSXAAS_*, gives each sandbox of the fake CSP one service, and returns the
// settings that turn the cleanup step on against it. NIOSXAAS_SHADOW_MODE is left as
// set (default true: the step only reports).
func (s *Stack) startNIOSXaaS(cfg config.Local, env config.Env) (map[string]string, part, error) {
	faults, err := niosxaasfake.FaultsFromEnv(env)
	if err != nil {
		return nil, part{}, err
	}
	email, password := "local-cleanup@example.com", randomToken()
	fake := niosxaasfake.New(niosxaasfake.Options{Email: email, Password: password})
	if err := fake.Start(); err != nil {
		return nil, part{}, err
	}
	s.shutdowns = append(s.shutdowns, func() { _ = fake.Close() })
	if err := fake.SetFaults(faults); err != nil {
		return nil, part{}, err
	}
	// The fake CSP seeds the same accounts (cspfake.Generate is deterministic).
	for _, a := range cspfake.Generate(cfg.SeedSandboxes, cfg.SeedPrefixes) {
		fake.Seed(a.ID, niosxaasfake.Service{ID: "universalinfra/universalservice/" + a.UUID(), Name: fakeNIOSXaaSService})
	}
	detail := fmt.Sprintf("fake NIOSXaaS at %s, one %s service per sandbox; the cleanup step is on", fake.URL(), fakeNIOSXaaSService)
	if !reflect.DeepEqual(faults, niosxaasfake.Faults{}) {
		detail += ", with injected faults (FAKE_NIOSXAAS_*)"
	}
	return map[string]string{
		"NIOSXAAS_ENABLED": "true", "NIOSXAAS_BASE_URL": fake.URL(),
		"NIOSXAAS_EMAIL": email, "NIOSXAAS_PASSWORD": password, "NIOSXAAS_CREDENTIALS_SECRET_ARN": "",
	}, part{"NIOSXaaS", "started", detail}, nil
}
