package main

import (
	"fmt"
	"regexp"
	"strings"
)

// resolver turns the template's references into the stand-ins' values, the way
// CloudFormation would turn them into the deployed ones: each generated name is the
// resource's logical id, in the stand-in account and region. table is the name of the table
// the function under test gets in the template run (else the table's logical id).
type resolver struct {
	resources map[string]any
	table     string
	// longest stands in for each generated name with the longest the type allows: the quota
	// checks measure the worst case CloudFormation can deploy.
	longest bool
}

// longestName is the longest name CloudFormation may generate, by type.
var longestName = map[string]int{
	"AWS::Lambda::Function": 64, "AWS::DynamoDB::Table": 255, "AWS::Logs::LogGroup": 512, "AWS::IAM::Role": 64,
	"AWS::Events::Rule": 64, "AWS::SecretsManager::Secret": 512, "AWS::SNS::Topic": 256,
	"AWS::Events::EventBus": 256, "AWS::SQS::Queue": 80,
}

// name is the physical name standing in for the generated one of id: its logical id, or
// the longest name of its type; a name the template gives (Name) is that name.
func (r resolver) name(id string) string {
	if given, ok := r.props(id)["Name"].(string); ok {
		return given
	}
	if n := longestName[r.typeOf(id)]; r.longest && n > len(id) {
		return id + strings.Repeat("x", n-len(id))
	}
	return id
}

func (r resolver) typeOf(id string) string {
	res, _ := r.resources[id].(map[string]any)
	t, _ := res["Type"].(string)
	return t
}

// value resolves a template value to a string: a literal, Ref, Fn::GetAtt, Fn::Join,
// Fn::Sub or Fn::Select of Fn::Split of those. Anything else is an error: the test cannot
// stand in for it.
func (r resolver) value(v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case map[string]any:
		if len(v) != 1 {
			break
		}
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
		if sub, ok := v["Fn::Sub"].(string); ok {
			return r.sub(sub)
		}
		if sel, ok := v["Fn::Select"].([]any); ok && len(sel) == 2 {
			i, _ := sel[0].(float64)
			split, _ := sel[1].(map[string]any)["Fn::Split"].([]any)
			if len(split) == 2 {
				sep, _ := split[0].(string)
				s, err := r.value(split[1])
				if err != nil {
					return "", err
				}
				if parts := strings.Split(s, sep); int(i) < len(parts) {
					return parts[int(i)], nil
				}
			}
		}
	}
	return "", fmt.Errorf("no stand-in for %v", v)
}

var subVariable = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// sub resolves Fn::Sub's ${Name} and ${Name.Attribute}.
func (r resolver) sub(s string) (string, error) {
	var failed error
	out := subVariable.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		var v string
		var err error
		if id, att, ok := strings.Cut(name, "."); ok {
			v, err = r.getAtt(id, att)
		} else {
			v, err = r.ref(name)
		}
		if err != nil && failed == nil {
			failed = err
		}
		return v
	})
	return strings.ReplaceAll(out, "${!", "${"), failed
}

// ref is what Ref answers for each resource type the stack has (the registry schema's
// Ref identifier), with the stand-ins' names: the logical id stands in for a generated name.
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
		return r.tableName(id), nil
	case "AWS::SecretsManager::Secret":
		return secretARN(r.name(id)), nil
	case "AWS::SNS::Topic":
		return "arn:aws:sns:" + standInRegion + ":" + standInAccount + ":" + r.name(id), nil
	case "AWS::ApiGateway::RestApi":
		return standInRestAPIID, nil
	case "AWS::ApiGateway::Stage":
		if name, ok := r.props(id)["StageName"].(string); ok {
			return name, nil
		}
	case "AWS::Lambda::Function", "AWS::Logs::LogGroup", "AWS::IAM::Role", "AWS::Events::Rule",
		"AWS::ApiGateway::Authorizer", "AWS::ApiGateway::Resource", "AWS::ApiGateway::Deployment":
		return r.name(id), nil // the name or id CloudFormation generates
	case "AWS::KMS::Key":
		return keyID(id), nil
	case "AWS::Events::EventBus":
		return r.name(id), nil // the bus's name
	case "AWS::SQS::Queue":
		return queueURL(r.name(id)), nil
	}
	return "", fmt.Errorf("no stand-in for Ref %s (%s)", id, r.typeOf(id))
}

func (r resolver) getAtt(id, name string) (string, error) {
	prefix := func(service string) string {
		return "arn:aws:" + service + ":" + standInRegion + ":" + standInAccount + ":"
	}
	switch t := r.typeOf(id); {
	case name == "Arn" && t == "AWS::DynamoDB::Table":
		return tableARN(r.tableName(id), ""), nil
	case name == "Arn" && t == "AWS::Lambda::Function":
		return lambdaARN(r.name(id)), nil
	case name == "Arn" && t == "AWS::Logs::LogGroup":
		return prefix("logs") + "log-group:" + r.name(id) + ":*", nil
	case name == "Arn" && t == "AWS::KMS::Key":
		return prefix("kms") + "key/" + keyID(id), nil
	case name == "Arn" && t == "AWS::IAM::Role":
		return "arn:aws:iam::" + standInAccount + ":role/" + r.name(id), nil
	case name == "Arn" && t == "AWS::Events::Rule":
		// A rule on a bus other than the default is rule/<bus>/<name>.
		if bus, ok := r.props(id)["EventBusName"]; ok {
			busName, err := r.value(bus)
			return prefix("events") + "rule/" + busName + "/" + r.name(id), err
		}
		return prefix("events") + "rule/" + r.name(id), nil
	case name == "Arn" && t == "AWS::Events::EventBus":
		return busARN(r.name(id)), nil
	case name == "Arn" && t == "AWS::SQS::Queue":
		return queueARN(r.name(id)), nil
	case name == "StreamArn" && t == "AWS::DynamoDB::Table":
		return tableARN(r.tableName(id), "") + standInStream, nil
	case name == "TopicArn" && t == "AWS::SNS::Topic":
		return r.ref(id)
	case name == "RootResourceId" && t == "AWS::ApiGateway::RestApi":
		return "root", nil
	}
	return "", fmt.Errorf("no stand-in for Fn::GetAtt %s.%s (%s)", id, name, r.typeOf(id))
}

func (r resolver) props(id string) map[string]any {
	res, _ := r.resources[id].(map[string]any)
	props, _ := res["Properties"].(map[string]any)
	return props
}

// tableName is the table's stand-in name: the one the test gave, else its logical id.
func (r resolver) tableName(id string) string {
	if r.table != "" {
		return r.table
	}
	return r.name(id)
}

func keyID(logicalID string) string { return "key-" + strings.ToLower(logicalID) }

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

// matchesAny reports whether s matches one of the IAM patterns (* and ?), as IAM matches
// actions (without regard to case, foldCase) and resources.
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
