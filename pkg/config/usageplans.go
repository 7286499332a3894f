package config

import "regexp"

// UsagePlans is what the usage-plans job needs besides the tokens secret (LoadAuth's
// TOKENS_SECRET_ARN): the REST API stage whose usage plans it keeps. The stack sets both.
type UsagePlans struct {
	RestAPIID string
	Stage     string
}

var (
	restAPIID = regexp.MustCompile(`^[a-z0-9]{1,32}$`)
	stageName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
)

// LoadUsagePlans reads REST_API_ID and REST_API_STAGE (both required).
func LoadUsagePlans(env Env) (UsagePlans, error) {
	r := &reader{env: env}
	u := UsagePlans{RestAPIID: r.required("REST_API_ID"), Stage: r.required("REST_API_STAGE")}
	if u.RestAPIID != "" && !restAPIID.MatchString(u.RestAPIID) {
		r.fail("REST_API_ID", "%q is not a REST API id (lowercase letters and digits)", u.RestAPIID)
	}
	if u.Stage != "" && !stageName.MatchString(u.Stage) {
		r.fail("REST_API_STAGE", "%q is not a stage name (A-Z a-z 0-9 _ -)", u.Stage)
	}
	return u, r.err()
}
