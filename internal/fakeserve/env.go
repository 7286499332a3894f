package fakeserve

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Env reads fault variables. An unset or empty variable gives the zero value (or the
// default given); a malformed one is kept as an error naming it, so Err reports every bad
// variable at once.
type Env struct {
	getenv func(string) string
	errs   []error
}

// NewEnv reads variables through getenv (os.Getenv, or a map in tests).
func NewEnv(getenv func(string) string) *Env { return &Env{getenv: getenv} }

// Err is every malformed variable read so far, or nil.
func (p *Env) Err() error { return errors.Join(p.errs...) }

// Str is the variable, trimmed.
func (p *Env) Str(name string) string { return strings.TrimSpace(p.getenv(name)) }

func (p *Env) fail(name, v, want string) {
	p.errs = append(p.errs, fmt.Errorf("%s=%q: want %s", name, v, want))
}

// Duration is a Go duration such as "250ms"; def when unset.
func (p *Env) Duration(name string, def time.Duration) time.Duration {
	v := p.Str(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(name, v, `a duration such as "250ms"`)
	}
	return d
}

// Int is an integer; 0 when unset.
func (p *Env) Int(name string) int {
	v := p.Str(name)
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(name, v, "an integer")
	}
	return n
}

// Float is a number; 0 when unset.
func (p *Env) Float(name string) float64 {
	v := p.Str(name)
	if v == "" {
		return 0
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil {
		p.fail(name, v, "a number")
	}
	return x
}

// Bool is true or false; false when unset.
func (p *Env) Bool(name string) bool {
	v := p.Str(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, v, "true or false")
	}
	return b
}

// List is a comma-separated list, its items trimmed, empty ones dropped.
func (p *Env) List(name string) []string {
	var out []string
	for s := range strings.SplitSeq(p.Str(name), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
