package main

import (
	"fmt"
	"regexp"
	"strings"
)

// resolver turns the template's references into the stand-ins' values, the way
// CloudFormation would turn them into the deployed ones. table is the name of the table
// the function under test gets.
type resolver struct {
	resources map[string]any
	table     string
}

func (r resolver) typeOf(id string) string {
	res, _ := r.resources[id].(map[string]any)
	t, _ := res["Type"].(string)
	return t
}

// value resolves a template value to a string: a literal, Ref, Fn::GetAtt ... Arn or
// Fn::Join of those. Anything else is an error: the test cannot stand in for it.
func (r resolver) value(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case map[string]any:
		if id, ok := v["Ref"].(string); ok {
			return r.ref(id)
		}
		if att, ok := v["Fn::GetAtt"].([]any); ok && len(att) == 2 {
			id, _ := att[0].(string)
			name, _ := att[1].(string)
			return r.getAtt(id, name)
		}
		if join, ok := v["Fn::Join"].([]any); ok && len(join) == 2 {
			sep, _ := join[0].(string)
			parts, _ := join[1].([]any)
			var out []string
			for _, p := range parts {
				s, err := r.value(p)
				if err != nil {
					return "", err
				}
				out = append(out, s)
			}
			return strings.Join(out, sep), nil
		}
	}
	return "", fmt.Errorf("no stand-in for %v", v)
}

func (r resolver) ref(id string) (string, error) {
	switch id {
	case "AWS::Region":
		return standInRegion, nil
	case "AWS::AccountId":
		return standInAccount, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	}
	switch r.typeOf(id) {
	case "AWS::DynamoDB::Table":
		return r.table, nil
	case "AWS::SecretsManager::Secret":
		return secretARN(id), nil
	case "AWS::Lambda::Function":
		return id, nil // the function's name
	case "AWS::ApiGateway::RestApi":
		return standInRestAPIID, nil
	}
	return "", fmt.Errorf("no stand-in for Ref %s (%s)", id, r.typeOf(id))
}

func (r resolver) getAtt(id, name string) (string, error) {
	if name == "Arn" {
		switch r.typeOf(id) {
		case "AWS::DynamoDB::Table":
			return tableARN(r.table, ""), nil
		case "AWS::Lambda::Function":
			return lambdaARN(id), nil
		case "AWS::Logs::LogGroup":
			return "arn:aws:logs:" + standInRegion + ":" + standInAccount + ":log-group:" + id + ":*", nil
		}
	}
	return "", fmt.Errorf("no stand-in for Fn::GetAtt %s.%s (%s)", id, name, r.typeOf(id))
}

// statement is one Allow statement of a role's policies, resolved.
type statement struct {
	actions, resources []string
}

// roleStatements are the statements of every policy attached to the role roleID (its
// inline policies and the AWS::IAM::Policy resources naming it), resolved with r. Only
// Allow statements with Action and Resource are expected; anything else is an error, so
// the check never silently skips a statement.
func (r resolver) roleStatements(roleID string) ([]statement, error) {
	var docs []any
	role, _ := r.resources[roleID].(map[string]any)
	props, _ := role["Properties"].(map[string]any)
	if managed, ok := props["ManagedPolicyArns"]; ok {
		return nil, fmt.Errorf("role %s has managed policies %v, which the check cannot read", roleID, managed)
	}
	inline, _ := props["Policies"].([]any)
	for _, p := range inline {
		p, _ := p.(map[string]any)
		docs = append(docs, p["PolicyDocument"])
	}
	for _, res := range r.resources {
		res, _ := res.(map[string]any)
		if res["Type"] != "AWS::IAM::Policy" {
			continue
		}
		props, _ := res["Properties"].(map[string]any)
		roles, _ := props["Roles"].([]any)
		for _, role := range roles {
			if ref, _ := role.(map[string]any); ref["Ref"] == roleID {
				docs = append(docs, props["PolicyDocument"])
			}
		}
	}
	var out []statement
	for _, doc := range docs {
		doc, _ := doc.(map[string]any)
		list, _ := doc["Statement"].([]any)
		for _, st := range list {
			st, _ := st.(map[string]any)
			for key := range st {
				if key != "Effect" && key != "Action" && key != "Resource" && key != "Sid" {
					return nil, fmt.Errorf("role %s: statement with %s, which the check cannot evaluate: %v", roleID, key, st)
				}
			}
			if st["Effect"] != "Allow" {
				return nil, fmt.Errorf("role %s: statement %v is not an Allow", roleID, st)
			}
			var s statement
			for _, a := range list1(st["Action"]) {
				s.actions = append(s.actions, a.(string))
			}
			for _, res := range list1(st["Resource"]) {
				v, err := r.value(res)
				if err != nil {
					return nil, fmt.Errorf("role %s: resource: %w", roleID, err)
				}
				s.resources = append(s.resources, v)
			}
			out = append(out, s)
		}
	}
	return out, nil
}

func list1(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	return []any{v}
}

// allows reports whether some statement allows the call. IAM matches actions without
// regard to case and both with the wildcards * and ?.
func allows(statements []statement, c awsCall) bool {
	for _, s := range statements {
		if matchesAny(s.actions, c.Action, true) && matchesAny(s.resources, c.Resource, false) {
			return true
		}
	}
	return false
}

func matchesAny(patterns []string, s string, foldCase bool) bool {
	for _, p := range patterns {
		expr := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(p)) + "$"
		if foldCase {
			expr = "(?i)" + expr
		}
		if regexp.MustCompile(expr).MatchString(s) {
			return true
		}
	}
	return false
}
