package main

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// Every IAM action in the template against IAM's service authorization reference (the
// oracle's "actions"): each names an action of its service, each can act on a resource its
// statement names (an ARN of one of the action's resource types, or "*" for an action
// without any), and each condition key applies to it.

// policyDocument is one policy of the template, where it is and what "*" means in it.
type policyDocument struct {
	where string
	doc   map[string]any
}

// policyDocuments are every policy the template holds: identity policies (AWS::IAM::Policy,
// a role's inline policies), trust policies, key policies, topic policies, and each Lambda
// permission as the resource-policy statement Lambda makes of it (lambdaPermissionStatement).
func policyDocuments(tpl map[string]any) []policyDocument {
	var out []policyDocument
	res := templateResources(tpl)
	r := resolver{resources: tpl["Resources"].(map[string]any)}
	for _, id := range sortedIDs(res) {
		props, _ := res[id]["Properties"].(map[string]any)
		doc := func(where string, v any) {
			if d, ok := v.(map[string]any); ok {
				out = append(out, policyDocument{where: where, doc: d})
			}
		}
		switch res[id]["Type"] {
		case "AWS::IAM::Policy":
			doc(id, props["PolicyDocument"])
		case "AWS::IAM::Role":
			doc(id+" trust", props["AssumeRolePolicyDocument"])
			for i, p := range list1(props["Policies"]) {
				if p, ok := p.(map[string]any); ok {
					doc(fmt.Sprintf("%s inline %d", id, i), p["PolicyDocument"])
				}
			}
		case "AWS::KMS::Key":
			doc(id, props["KeyPolicy"])
		case "AWS::SNS::TopicPolicy":
			doc(id, props["PolicyDocument"])
		case "AWS::Lambda::Permission":
			if st, err := r.lambdaPermissionStatement(id); err == nil {
				doc(id, map[string]any{"Version": "2012-10-17", "Statement": []any{st}})
			}
		}
	}
	return out
}

// iamAction is the oracle's answer for one action.
type iamAction struct {
	Action        string
	WildcardOnly  bool
	ResourceTypes []struct {
		Name          string
		ARN           string
		ConditionKeys []string
	}
	ConditionKeys []string
}

// checkActions is the service-authorization-reference check of a template.
func checkActions(tpl map[string]any) (*templateCheck, error) {
	c := newCheck()
	docs := policyDocuments(tpl)
	var patterns []string
	for _, d := range docs {
		for _, st := range list1(d.doc["Statement"]) {
			st, _ := st.(map[string]any)
			for _, a := range list1(st["Action"]) {
				if s := fmt.Sprint(a); !slices.Contains(patterns, s) {
					patterns = append(patterns, s)
				}
			}
		}
	}
	var answer struct{ Actions map[string][]iamAction }
	if err := askOracle(map[string]any{"op": "actions", "actions": patterns}, &answer); err != nil {
		return nil, err
	}
	r := resolver{resources: tpl["Resources"].(map[string]any)}
	for _, d := range docs {
		for i, st := range list1(d.doc["Statement"]) {
			st, _ := st.(map[string]any)
			at := fmt.Sprintf("%s statement %d", d.where, i)
			c.counts["statements"]++
			for _, key := range []string{"NotAction", "NotResource", "NotPrincipal"} {
				if st[key] != nil {
					c.fail("%s: %s, which the checks do not evaluate", at, key)
				}
			}
			var resources []string
			for _, v := range list1(st["Resource"]) {
				if v == nil {
					continue // a trust policy names no resource: the role is
				}
				s, err := r.value(v)
				if err != nil {
					c.fail("%s: resource %s: %v", at, js(v), err)
					continue
				}
				resources = append(resources, s)
			}
			var expanded []iamAction
			for _, a := range list1(st["Action"]) {
				c.counts["actions"]++
				found := answer.Actions[fmt.Sprint(a)]
				if len(found) == 0 {
					c.fail("%s: %v is no action of AWS's service authorization reference", at, a)
				}
				expanded = append(expanded, found...)
				for _, action := range found {
					if len(resources) > 0 && !actsOnSome(action, resources) {
						c.fail("%s: %s cannot act on %v (it acts on %s)", at, action.Action, resources, resourceFormats(action))
					}
				}
			}
			cond, _ := st["Condition"].(map[string]any)
			for _, op := range sortedIDs(cond) {
				keys, _ := cond[op].(map[string]any)
				for _, key := range sortedIDs(keys) {
					if !strings.HasPrefix(strings.ToLower(key), "aws:") && !slices.ContainsFunc(expanded, func(a iamAction) bool { return keyApplies(a, key) }) {
						c.fail("%s: condition key %s applies to none of its actions", at, key)
					}
				}
			}
		}
	}
	return c, nil
}

// actsOnSome reports whether action can act on one of the resources: "*", or an ARN
// pattern that can name a resource of one of its types.
func actsOnSome(action iamAction, resources []string) bool {
	for _, res := range resources {
		if res == "*" {
			return true
		}
		if action.WildcardOnly {
			continue
		}
		for _, rt := range action.ResourceTypes {
			if globsIntersect(res, arnFormatGlob(rt.ARN)) {
				return true
			}
		}
	}
	return false
}

func resourceFormats(action iamAction) string {
	if action.WildcardOnly || len(action.ResourceTypes) == 0 {
		return `"*" only`
	}
	var out []string
	for _, rt := range action.ResourceTypes {
		out = append(out, rt.ARN)
	}
	return strings.Join(out, " or ")
}

func keyApplies(a iamAction, key string) bool {
	match := func(pattern string) bool {
		return globsIntersect(strings.ToLower(key), strings.ToLower(arnFormatGlob(pattern)))
	}
	if slices.ContainsFunc(a.ConditionKeys, match) {
		return true
	}
	for _, rt := range a.ResourceTypes {
		if slices.ContainsFunc(rt.ConditionKeys, match) {
			return true
		}
	}
	return false
}

var formatVariable = regexp.MustCompile(`\$\{[^}]*\}`)

// arnFormatGlob turns an ARN format of the reference (arn:${Partition}:sns:...) into a
// pattern where each variable is "*".
func arnFormatGlob(format string) string { return formatVariable.ReplaceAllString(format, "*") }

// globsIntersect reports whether some string matches both IAM patterns (* any run of
// characters, ? one character).
func globsIntersect(a, b string) bool {
	memo := map[[2]int]bool{}
	seen := map[[2]int]bool{}
	var match func(i, j int) bool
	match = func(i, j int) bool {
		k := [2]int{i, j}
		if seen[k] {
			return memo[k]
		}
		seen[k] = true
		var ok bool
		switch {
		case i == len(a) && j == len(b):
			ok = true
		case i < len(a) && a[i] == '*':
			ok = match(i+1, j) || (j < len(b) && match(i, j+1)) || (j < len(b) && b[j] == '*' && match(i+1, j+1))
		case j < len(b) && b[j] == '*':
			ok = match(i, j+1) || (i < len(a) && match(i+1, j))
		case i < len(a) && j < len(b):
			ok = (a[i] == b[j] || a[i] == '?' || b[j] == '?') && match(i+1, j+1)
		}
		memo[k] = ok
		return ok
	}
	return match(0, 0)
}
