package local

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/config"
)

// startTokens makes the track, admin and metrics tokens: the configured ones or generated
// ones, and adds those of BROKER_TOKENS_FILE.
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
	if cfg.TokensFile == "" {
		return tokens, lines, nil
	}
	more, err := tokensFile(cfg.TokensFile, tokens)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range more {
		line := fmt.Sprintf("%s: client %s (from BROKER_TOKENS_FILE)", t.Scope, t.Name)
		if n := t.Limits.MaxLiveAllocations; n > 0 {
			line += fmt.Sprintf(", max_live_allocations %d", n)
		}
		lines = append(lines, part{"", "", line})
	}
	return append(tokens, more...), lines, nil
}

// tokensFile reads a file in the token secret's format (auth.ParseSecret). Unlike the
// secret in AWS, which keeps its valid entries, it must be valid as a whole: the stack
// fails fast at start, naming the bad entries. No entry may share a digest with a token
// the stack made.
func tokensFile(path string, made []auth.Token) ([]auth.Token, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("BROKER_TOKENS_FILE: %w", err)
	}
	tokens, problems, err := auth.ParseSecret(raw)
	if err != nil {
		return nil, fmt.Errorf("BROKER_TOKENS_FILE %s: %w", path, err)
	}
	for _, t := range tokens {
		for _, m := range made {
			if subtle.ConstantTimeCompare(t.Digest[:], m.Digest[:]) == 1 {
				problems = append(problems, fmt.Sprintf("entry %q: the same token as the stack's %s token", t.Name, m.Scope))
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("BROKER_TOKENS_FILE %s: %s", path, strings.Join(problems, "; "))
	}
	return tokens, nil
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
