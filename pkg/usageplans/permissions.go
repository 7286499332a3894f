package usageplans

// Permission is one IAM action the reconciler uses, on the API Gateway resource paths it
// uses it on (arn:<partition>:apigateway:<region>::<path>; "*" as IAM reads it). The stack
// grants exactly these; its template-run test holds them to the calls both ways.
type Permission struct {
	Action string
	Paths  []string
}

// Permissions are what Reconcile calls, by HTTP method as API Gateway's IAM actions are.
func Permissions(restAPIID, stage string) []Permission {
	return []Permission{
		// The stage (checked first), the key and plan listings, a plan's keys.
		{"apigateway:GET", []string{"/restapis/" + restAPIID + "/stages/" + stage, "/apikeys", "/usageplans", "/usageplans/*"}},
		// A new key, a new plan, a key put into a plan.
		{"apigateway:POST", []string{"/apikeys", "/usageplans", "/usageplans/*"}},
		// A plan's throttle and stages.
		{"apigateway:PATCH", []string{"/usageplans/*"}},
		// A key, a plan, a key taken out of a plan.
		{"apigateway:DELETE", []string{"/apikeys/*", "/usageplans/*"}},
	}
}
