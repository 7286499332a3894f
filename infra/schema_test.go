package main

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The template as CloudFormation reads it: every resource type, property and value against
// the CloudFormation registry schemas (the oracle's "schemas"), every Ref, Fn::GetAtt,
// Fn::Sub variable and DependsOn against what the template and the schemas define.

// cfnSchemas is the oracle's answer: the registry schema of each type, and the type
// definitions their properties use, by id.
type cfnSchemas struct {
	Resources map[string]*struct {
		Properties map[string]cfnProperty
		Attributes []string
		Ref        []string
	}
	Definitions map[string]struct {
		Name       string
		Properties map[string]cfnProperty
	}
}

type cfnProperty struct {
	Type     cfnType
	Required bool
}

type cfnType struct {
	Type          string
	AllowedValues []any
	Element       *cfnType
	Types         []cfnType
	Reference     struct {
		Ref string `json:"$ref"`
	}
}

// templateCheck collects what one check found wrong, and counts what it looked at.
type templateCheck struct {
	findings []string
	counts   map[string]int
}

func newCheck() *templateCheck { return &templateCheck{counts: map[string]int{}} }

func (c *templateCheck) fail(format string, args ...any) {
	c.findings = append(c.findings, fmt.Sprintf(format, args...))
}

// report fails t once, listing every finding.
func (c *templateCheck) report(t *testing.T, what string) {
	t.Helper()
	if len(c.findings) > 0 {
		slices.Sort(c.findings)
		t.Errorf("%s: %d findings:\n  %s", what, len(c.findings), strings.Join(c.findings, "\n  "))
	}
}

func templateResources(tpl map[string]any) map[string]map[string]any {
	out := map[string]map[string]any{}
	all, _ := tpl["Resources"].(map[string]any)
	for id, r := range all {
		out[id], _ = r.(map[string]any)
	}
	return out
}

func sortedIDs[V any](m map[string]V) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// loadSchemas asks the oracle for the schema of every type the template uses.
func loadSchemas(tpl map[string]any) (cfnSchemas, error) {
	var types []string
	for _, r := range templateResources(tpl) {
		if t, _ := r["Type"].(string); t != "" && !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	var s cfnSchemas
	err := askOracle(map[string]any{"op": "schemas", "types": types}, &s)
	return s, err
}

var (
	templateSections  = []string{"AWSTemplateFormatVersion", "Description", "Metadata", "Parameters", "Rules", "Mappings", "Conditions", "Transform", "Resources", "Outputs"}
	resourceKeys      = []string{"Type", "Properties", "DependsOn", "Metadata", "DeletionPolicy", "UpdateReplacePolicy", "Condition", "CreationPolicy", "UpdatePolicy"}
	deletionPolicies  = []string{"Delete", "Retain", "RetainExceptOnCreate", "Snapshot"}
	pseudoParameters  = []string{"AWS::AccountId", "AWS::NotificationARNs", "AWS::NoValue", "AWS::Partition", "AWS::Region", "AWS::StackId", "AWS::StackName", "AWS::URLSuffix"}
	intrinsicFunction = []string{"Ref", "Fn::GetAtt", "Fn::Join", "Fn::Sub", "Fn::Select", "Fn::Split", "Fn::If", "Fn::Base64", "Fn::GetAZs",
		"Fn::ImportValue", "Fn::FindInMap", "Fn::Cidr", "Fn::Length", "Fn::ToJsonString", "Fn::Not", "Fn::Equals", "Fn::And", "Fn::Or", "Fn::Contains"}
)

// checkSchemas is the registry-schema check of a template.
func checkSchemas(tpl map[string]any, schemas cfnSchemas) *templateCheck {
	c := newCheck()
	for key := range tpl {
		if !slices.Contains(templateSections, key) {
			c.fail("template: unknown section %s", key)
		}
	}
	res := templateResources(tpl)
	params, _ := tpl["Parameters"].(map[string]any)
	for _, id := range sortedIDs(res) {
		r := res[id]
		c.counts["resources"]++
		for key := range r {
			if !slices.Contains(resourceKeys, key) {
				c.fail("%s: unknown resource attribute %s", id, key)
			}
		}
		for _, key := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
			if v, ok := r[key]; ok && !slices.Contains(deletionPolicies, fmt.Sprint(v)) {
				c.fail("%s: %s %v is none of %v", id, key, v, deletionPolicies)
			}
		}
		for _, dep := range list1(r["DependsOn"]) {
			if dep == nil {
				continue
			}
			if _, ok := res[fmt.Sprint(dep)]; !ok {
				c.fail("%s: DependsOn %v, which the template does not define", id, dep)
			}
		}
		typ, _ := r["Type"].(string)
		schema := schemas.Resources[typ]
		if schema == nil {
			c.fail("%s: %q is not a CloudFormation resource type", id, typ)
			continue
		}
		props, _ := r["Properties"].(map[string]any)
		c.checkObject(id, props, schema.Properties, schemas)
	}
	// Every reference in the template, wherever it is.
	var walk func(at string, v any)
	walk = func(at string, v any) {
		switch v := v.(type) {
		case []any:
			for i, x := range v {
				walk(fmt.Sprintf("%s[%d]", at, i), x)
			}
		case map[string]any:
			for k, x := range v {
				switch k {
				case "Ref":
					c.counts["references"]++
					name, _ := x.(string)
					if _, ok := res[name]; !ok && !slices.Contains(pseudoParameters, name) && params[name] == nil {
						c.fail("%s: Ref %v names nothing the template defines", at, x)
					}
				case "Fn::GetAtt":
					c.counts["references"]++
					c.checkGetAtt(at, x, res, schemas)
				case "Fn::Sub":
					for _, m := range subVariable.FindAllStringSubmatch(fmt.Sprint(x), -1) {
						c.counts["references"]++
						if target, att, ok := strings.Cut(m[1], "."); ok {
							c.checkGetAtt(at, []any{target, att}, res, schemas)
						} else if _, ok := res[target]; !ok && !slices.Contains(pseudoParameters, target) && params[target] == nil {
							c.fail("%s: Fn::Sub ${%s} names nothing the template defines", at, target)
						}
					}
				}
				walk(at+"."+k, x)
			}
		}
	}
	for _, section := range []string{"Resources", "Outputs", "Conditions", "Rules"} {
		walk(section, tpl[section])
	}
	return c
}

func (c *templateCheck) checkGetAtt(at string, v any, res map[string]map[string]any, schemas cfnSchemas) {
	parts, ok := v.([]any)
	if s, isString := v.(string); isString {
		id, att, _ := strings.Cut(s, ".")
		parts, ok = []any{id, att}, true
	}
	if !ok || len(parts) != 2 {
		c.fail("%s: Fn::GetAtt %v is not [resource, attribute]", at, v)
		return
	}
	id, att := fmt.Sprint(parts[0]), fmt.Sprint(parts[1])
	r, ok := res[id]
	if !ok {
		c.fail("%s: Fn::GetAtt %s.%s: no resource %s", at, id, att, id)
		return
	}
	if schema := schemas.Resources[fmt.Sprint(r["Type"])]; schema != nil && !slices.Contains(schema.Attributes, att) {
		c.fail("%s: Fn::GetAtt %s.%s: %s has no attribute %s (it has %v)", at, id, att, r["Type"], att, schema.Attributes)
	}
}

// checkObject checks an object's properties against their schema: none unknown, every
// required one there, each value of its type.
func (c *templateCheck) checkObject(at string, obj map[string]any, props map[string]cfnProperty, schemas cfnSchemas) {
	for _, name := range sortedIDs(props) {
		if _, ok := obj[name]; !ok && props[name].Required {
			c.fail("%s: required property %s is missing", at, name)
		}
	}
	for _, name := range sortedIDs(obj) {
		p, ok := props[name]
		if !ok {
			c.fail("%s: unknown property %s", at, name)
			continue
		}
		c.checkValue(at+"."+name, obj[name], p.Type, schemas)
	}
}

// isIntrinsic reports whether v is a function CloudFormation evaluates at deploy time; its
// value is checked where it points (references), not against the property's type.
func isIntrinsic(v any) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false
	}
	for k := range m {
		return slices.Contains(intrinsicFunction, k)
	}
	return false
}

func (c *templateCheck) checkValue(at string, v any, t cfnType, schemas cfnSchemas) {
	c.findings = append(c.findings, prefixAll(at, c.valueErrors(v, t, schemas))...)
}

func prefixAll(at string, errs []string) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = at + e
	}
	return out
}

// valueErrors lists why v is not of type t, each prefixed by the path below v; it counts
// each value it checks.
func (c *templateCheck) valueErrors(v any, t cfnType, schemas cfnSchemas) []string {
	c.counts["property values"]++
	if isIntrinsic(v) && t.Type != "json" {
		return nil
	}
	bad := func() []string { return []string{fmt.Sprintf(": %s is not of type %s", js(v), t.Type)} }
	switch t.Type {
	case "string", "date-time":
		s, ok := v.(string)
		if !ok {
			return bad()
		}
		if len(t.AllowedValues) > 0 && !slices.ContainsFunc(t.AllowedValues, func(a any) bool { return fmt.Sprint(a) == s }) {
			return []string{fmt.Sprintf(": %q is none of %v", s, t.AllowedValues)}
		}
	case "number", "integer":
		n, ok := v.(float64)
		if s, isString := v.(string); isString {
			var err error
			n, err = strconv.ParseFloat(s, 64)
			ok = err == nil
		}
		if !ok || (t.Type == "integer" && n != math.Trunc(n)) {
			return bad()
		}
	case "boolean":
		if _, ok := v.(bool); !ok && v != "true" && v != "false" {
			return bad()
		}
	case "json", "null":
	case "tag":
		m, ok := v.(map[string]any)
		if !ok || m["Key"] == nil || m["Value"] == nil {
			return bad()
		}
	case "array":
		l, ok := v.([]any)
		if !ok {
			return bad()
		}
		var errs []string
		for i, x := range l {
			errs = append(errs, prefixAll(fmt.Sprintf("[%d]", i), c.valueErrors(x, *t.Element, schemas))...)
		}
		return errs
	case "map":
		m, ok := v.(map[string]any)
		if !ok {
			return bad()
		}
		var errs []string
		for _, k := range sortedIDs(m) {
			errs = append(errs, prefixAll("."+k, c.valueErrors(m[k], *t.Element, schemas))...)
		}
		return errs
	case "ref":
		m, ok := v.(map[string]any)
		def, known := schemas.Definitions[t.Reference.Ref]
		if !ok || !known {
			return bad()
		}
		before := len(c.findings)
		c.checkObject("", m, def.Properties, schemas)
		errs := slices.Clone(c.findings[before:])
		c.findings = c.findings[:before]
		return errs
	case "union":
		var first []string
		for _, alt := range t.Types {
			trial := newCheck() // an alternative that does not fit is no finding
			errs := trial.valueErrors(v, alt, schemas)
			if len(errs) == 0 {
				return nil
			}
			if first == nil {
				first = errs
			}
		}
		return first
	default:
		return []string{fmt.Sprintf(": the schema's type %q is unknown to the check", t.Type)}
	}
	return nil
}

// copyTemplate is a deep copy of a template, for a planted defect.
func copyTemplate(tpl map[string]any) map[string]any {
	raw, _ := json.Marshal(tpl)
	var out map[string]any
	_ = json.Unmarshal(raw, &out)
	return out
}
