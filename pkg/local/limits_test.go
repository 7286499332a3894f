package local

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// With DYNAMODB_LIMITS the functions reach DynamoDB through the proxy that applies AWS's
// limits: the banner says where, an allocation goes through it (here delayed by its
// injected latency), and the stack logs the proxy's counts when it stops.
func TestStackBehindDynamoDBLimits(t *testing.T) {
	s, banner, logs := startStack(t, map[string]string{"DYNAMODB_LIMITS": "true", "DYNAMODB_LIMITS_LATENCY_MS": "1"})
	if !strings.Contains(banner, "behind DynamoDB's limits at http://127.0.0.1:") {
		t.Fatalf("the banner does not name the proxy:\n%s", banner)
	}
	c := client{t, s.URL}
	wantStatus(t, "allocate", c.do("POST", "/v1/allocate", track(s.TrackToken, "participant-1"), nil), http.StatusCreated, "")
	s.Stop()
	m := regexp.MustCompile(`"msg":"DynamoDB limits","counts":"(\d+) requests, \d+ SDK retries, (\d+) delayed`).FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no counts logged at stop:\n%s", logs.String())
	}
	if requests, _ := strconv.Atoi(m[1]); requests == 0 || m[2] != m[1] {
		t.Fatalf("the proxy counted %s requests, %s delayed; want the functions' requests, each delayed", m[1], m[2])
	}
}
