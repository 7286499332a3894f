package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Env looks a variable up; os.Getenv in production, a map in tests.
type Env func(string) string

// reader collects every problem instead of stopping at the first, so an operator fixes a
// broken deployment in one pass.
type reader struct {
	env  Env
	errs []error
}

func (r *reader) fail(name, format string, args ...any) {
	r.errs = append(r.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

func (r *reader) err() error {
	if len(r.errs) == 0 {
		return nil
	}
	return fmt.Errorf("invalid configuration: %w", errors.Join(r.errs...))
}

func (r *reader) str(name, def string) string {
	if v := strings.TrimSpace(r.env(name)); v != "" {
		return v
	}
	return def
}

func (r *reader) required(name string) string {
	v := r.str(name, "")
	if v == "" {
		r.fail(name, "is required")
	}
	return v
}

func (r *reader) int(name string, def, min, max int) int {
	raw := r.str(name, "")
	if raw == "" {
		return def
	}
	v, err := strconv.Atoi(raw)
	if err != nil {
		r.fail(name, "%q is not an integer", raw)
		return def
	}
	if v < min || v > max {
		r.fail(name, "%d is outside %d..%d", v, min, max)
		return def
	}
	return v
}

func (r *reader) float(name string, def, min, max float64) float64 {
	raw := r.str(name, "")
	if raw == "" {
		return def
	}
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		r.fail(name, "%q is not a number", raw)
		return def
	}
	if v < min || v > max {
		r.fail(name, "%g is outside %g..%g", v, min, max)
		return def
	}
	return v
}

// duration reads a whole number of units (the variable names carry the unit, e.g. _HOURS).
func (r *reader) duration(name string, def int, unit time.Duration, min, max int) time.Duration {
	return time.Duration(r.int(name, def, min, max)) * unit
}
