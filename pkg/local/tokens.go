package local

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/config"
)

// startTokens makes the track, admin and metrics tokens: the configured ones or generated
// ones.
func (s *Stack) startTokens(cfg config.Local) (auth.Static, []part, error) {
	tokens := auth.Static{}
	var lines []part
	for _, t := range []struct {
		name       string
		scope      auth.Scope
		configured string
		variable   string
		plain      *string
	}{
		{TrackClient, auth.Track, cfg.TrackToken, "BROKER_TRACK_TOKEN", &s.TrackToken},
		{AdminClient, auth.Admin, cfg.AdminToken, "BROKER_ADMIN_TOKEN", &s.AdminToken},
		{MetricsClient, auth.Metrics, cfg.MetricsToken, "BROKER_METRICS_TOKEN", &s.MetricsToken},
	} {
		plain, how := token(t.configured, t.variable)
		tok, err := auth.NewToken(t.name, t.scope, plain)
		if err != nil {
			return nil, nil, err
		}
		*t.plain = plain
		if t.scope == auth.Track {
			tok.Limits = auth.ClientLimits{Rate: cfg.TrackRate, Burst: cfg.TrackBurst}
		}
		tokens = append(tokens, tok)
		title := ""
		if len(lines) == 0 {
			title = "Tokens"
		}
		lines = append(lines, part{title, "", fmt.Sprintf("%s: %s (%s)", t.scope, plain, how)})
	}
	return tokens, lines, nil
}

// token returns the configured plain token or a generated one, and says which.
func token(configured, variable string) (string, string) {
	if configured == "" {
		return randomToken(), "generated; set " + variable + " to choose it"
	}
	return configured, "from " + variable
}

// randomToken is 256 random bits, URL-safe base64: a valid bearer token.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
