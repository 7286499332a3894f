package config_test

import (
	"strings"
	"testing"

	"github.com/sandbox-broker/broker/internal/testkit"
	"github.com/sandbox-broker/broker/pkg/config"
)

func TestLoadUsagePlans(t *testing.T) {
	u, err := config.LoadUsagePlans(testkit.Env(map[string]string{"REST_API_ID": "a1b2c3d4e5", "REST_API_STAGE": "api"}))
	if err != nil || u.RestAPIID != "a1b2c3d4e5" || u.Stage != "api" {
		t.Fatalf("%+v, %v", u, err)
	}
	for _, c := range []struct {
		env  map[string]string
		want []string
	}{
		{nil, []string{"REST_API_ID: is required", "REST_API_STAGE: is required"}},
		{map[string]string{"REST_API_ID": "A1/../x", "REST_API_STAGE": "a stage"}, []string{"REST_API_ID: \"A1/../x\"", "REST_API_STAGE: \"a stage\""}},
	} {
		_, err := config.LoadUsagePlans(testkit.Env(c.env))
		for _, w := range c.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%v: error %v, want one naming %q", c.env, err, w)
			}
		}
	}
}
