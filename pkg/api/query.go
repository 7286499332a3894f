package api

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/internal/printable"
	"github.com/sandbox-broker/broker/pkg/pool"
)

// query is a request's query string, read strictly: a parameter the route does not take,
// or one given more than once, is refused rather than ignored or resolved by picking one
// (a mistyped ?stauts= on a listing would otherwise list everything). An empty value
// counts as absent.
type query map[string]string

// readQuery reads the query parameters of ev; allowed names the ones the route takes.
// API Gateway fills the multi-value map with every value and the single-value map with the
// last one; a hand-made event may carry only the single-value map.
func readQuery(ev *events.APIGatewayProxyRequest, allowed ...string) (query, *Error) {
	values := ev.MultiValueQueryStringParameters
	if values == nil {
		values = map[string][]string{}
		for k, v := range ev.QueryStringParameters {
			values[k] = []string{v}
		}
	}
	q := query{}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		vs := values[name]
		switch {
		case !slices.Contains(allowed, name):
			return nil, unknownParameter(name, allowed)
		case len(vs) > 1:
			return nil, validationError("Query parameter %s is given more than once; give it once", name)
		case len(vs) == 1 && vs[0] != "":
			q[name] = vs[0]
		}
	}
	return q, nil
}

// need refuses a request without the parameter name, saying what it is.
func (q query) need(name, what string) *Error {
	if _, ok := q[name]; !ok {
		return validationError("Query parameter %s is required: %s", name, what)
	}
	return nil
}

// integer reads an optional integer in [min, max], def when absent.
func (q query) integer(name string, def, min, max int) (int, *Error) {
	v, ok := q[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < min || n > max {
		return 0, validationError("Query parameter %s must be an integer from %d to %d", name, min, max)
	}
	return n, nil
}

// status reads an optional sandbox status ("" when absent).
func (q query) status(name string) (pool.Status, *Error) {
	v, ok := q[name]
	if !ok {
		return "", nil
	}
	if s := pool.Status(v); s.Valid() {
		return s, nil
	}
	return "", validationError("Query parameter %s must be one of %s", name, statusList(pool.Statuses))
}

// text reads an optional text value of at most max printable characters.
func (q query) text(name string, max int) (string, *Error) {
	v := q[name]
	if v != "" && !printable.Text(v, max) {
		return "", validationError("Query parameter %s must be at most %d printable characters", name, max)
	}
	return v, nil
}

func statusList(ss []pool.Status) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// unknownParameter names the parameter only when it is short and printable.
func unknownParameter(name string, allowed []string) *Error {
	takes := "no query parameters"
	if len(allowed) > 0 {
		takes = "only " + strings.Join(allowed, ", ")
	}
	if printable.Text(name, 40) {
		return validationError("Unknown query parameter %q: this route takes %s", name, takes)
	}
	return validationError("Unknown query parameter: this route takes %s", takes)
}
