package local

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/config"
)

// startTokens makes the track and admin tokens: the configured ones or generated ones.
func (s *Stack) startTokens(cfg config.Local) (auth.Static, []part, error) {
	trackToken, trackHow, err := token(cfg.TrackToken, "BROKER_TRACK_TOKEN")
	if err != nil {
		return nil, nil, err
	}
	adminToken, adminHow, err := token(cfg.AdminToken, "BROKER_ADMIN_TOKEN")
	if err != nil {
		return nil, nil, err
	}
	s.TrackToken, s.AdminToken = trackToken, adminToken
	tokens := auth.Static{}
	for _, t := range []struct {
		name  string
		scope auth.Scope
		plain string
	}{{TrackClient, auth.Track, trackToken}, {AdminClient, auth.Admin, adminToken}} {
		tok, err := auth.NewToken(t.name, t.scope, t.plain)
		if err != nil {
			return nil, nil, err
		}
		tokens = append(tokens, tok)
	}
	return tokens, []part{
		{"Tokens", "", fmt.Sprintf("track: %s (%s)", trackToken, trackHow)},
		{"", "", fmt.Sprintf("admin: %s (%s)", adminToken, adminHow)},
	}, nil
}

// token returns the configured plain token or a generated one, and says which.
func token(configured, variable string) (string, string, error) {
	if configured == "" {
		return randomToken(), "generated; set " + variable + " to choose it", nil
	}
	return configured, "from " + variable, nil
}

// randomToken is 256 random bits, URL-safe base64: a valid bearer token.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
