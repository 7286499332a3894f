package niosxaas

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode"
)

// Password is a NIOSXaaS password. Every way of printing, logging or marshalling it
// shows "[REDACTED]"; only the sign-in request reads the value, through Reveal.
type Password string

const redacted = "[REDACTED]"

// Reveal returns the password itself, for the sign-in body only.
func (p Password) Reveal() string { return string(p) }

func (Password) String() string               { return redacted }
func (Password) GoString() string             { return `"` + redacted + `"` }
func (Password) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(redacted)) }
func (Password) MarshalJSON() ([]byte, error) { return json.Marshal(redacted) }
func (Password) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (Password) LogValue() slog.Value         { return slog.StringValue(redacted) }

// Credentials sign in to NIOSXaaS. The email is an account name, not a secret, but the
// client never logs it either; the password is a Password.
type Credentials struct {
	Email    string   `json:"email"`
	Password Password `json:"password"`
}

// CredentialsSource returns the credentials for a sign-in. The client calls it once per
// sign-in (at most once per session lifetime), so a source backed by a secret store picks
// up a rotated secret at the next sign-in.
type CredentialsSource func(ctx context.Context) (Credentials, error)

// Static is a CredentialsSource that always returns c.
func Static(c Credentials) CredentialsSource {
	return func(context.Context) (Credentials, error) { return c, nil }
}

// Validate names what is wrong without echoing either value.
func (c Credentials) Validate() error {
	var problems []string
	switch email := c.Email; {
	case strings.TrimSpace(email) == "":
		problems = append(problems, "email is empty")
	case strings.ContainsFunc(email, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		problems = append(problems, "email contains whitespace or control characters")
	case !strings.Contains(email, "@"):
		problems = append(problems, "email has no @")
	}
	if c.Password == "" {
		problems = append(problems, "password is empty")
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// ParseCredentials reads a secret holding {"email": "...", "password": "..."}. Its errors
// never quote the secret: a JSON syntax error would show the character it choked on.
func ParseCredentials(secret []byte) (Credentials, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(bytes.TrimSpace(secret), &raw); err != nil {
		return Credentials{}, errors.New(`secret is not a JSON object of the form {"email": "...", "password": "..."}`)
	}
	var c Credentials
	var problems []string
	for _, field := range []struct {
		name string
		dst  *string
	}{{"email", &c.Email}, {"password", (*string)(&c.Password)}} {
		v, ok := raw[field.name]
		if !ok {
			problems = append(problems, fmt.Sprintf("secret has no %q field", field.name))
			continue
		}
		if json.Unmarshal(v, field.dst) != nil {
			problems = append(problems, fmt.Sprintf("secret field %q is not a string", field.name))
		}
	}
	if len(problems) > 0 {
		return Credentials{}, errors.New(strings.Join(problems, "; "))
	}
	c.Email = strings.TrimSpace(c.Email)
	if err := c.Validate(); err != nil {
		return Credentials{}, fmt.Errorf("secret: %w", err)
	}
	return c, nil
}
