package config

import (
	"net/url"
	"strings"
)

// API is what the route functions need besides the pool.
type API struct {
	// CORSOrigins are the browser origins allowed to call the API. Empty (the default)
	// sends no CORS headers at all: the lab platforms call from servers, not browsers.
	CORSOrigins []string
}

// LoadAPI reads CORS_ALLOWED_ORIGINS: a comma-separated list of origins
// (scheme://host[:port]), or "*" alone when every origin is meant.
func LoadAPI(env Env) (API, error) {
	r := &reader{env: env}
	var a API
	for _, o := range strings.Split(r.str("CORS_ALLOWED_ORIGINS", ""), ",") {
		if o = strings.TrimSpace(o); o != "" {
			a.CORSOrigins = append(a.CORSOrigins, o)
		}
	}
	for _, o := range a.CORSOrigins {
		if o == "*" {
			if len(a.CORSOrigins) > 1 {
				r.fail("CORS_ALLOWED_ORIGINS", `"*" cannot be combined with other origins`)
			}
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil {
			r.fail("CORS_ALLOWED_ORIGINS", "%q is not an origin like https://example.com", o)
		}
	}
	return a, r.err()
}
