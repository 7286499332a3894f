package main

import (
	"fmt"
	"slices"
	"strings"
)

// The rules of the services that the policy simulator does not know, modelled on what each
// service documents, so that a path is evaluated with the policies AWS would evaluate:
//
//   - SNS: an AWS::SNS::TopicPolicy replaces the topic's default policy (topicPolicy); with
//     none, the default policy applies: the topic owner's account only (AWS:SourceOwner).
//   - Lambda: each AWS::Lambda::Permission becomes a statement of the function's resource
//     policy, Principal the service, SourceArn as ArnLike AWS:SourceArn and SourceAccount as
//     StringEquals AWS:SourceAccount (lambdaPermissionStatement); with none, only
//     principals of the account with an identity policy may invoke it.
//   - KMS: the key policy is the key's resource policy and IAM policies count only where it
//     delegates to the account (the simulator's KMS rule); a topic encrypted with the
//     AWS-managed alias/aws/sns key is evaluated with that key's policy, which only
//     principals of the account calling through SNS satisfy (awsManagedSNSKeyPolicy). The
//     template creates no grant (CloudFormation has no resource for one), so no grant adds
//     an Allow.
//   - IAM roles: a role's trust policy is the resource policy of sts:AssumeRole on it.
//   - Requests made by a service on a resource's behalf carry aws:SourceAccount and
//     aws:SourceArn (and SNS's AWS:SourceOwner), as CloudWatch, API Gateway and EventBridge
//     send them.
//
// Anything the model cannot read (a managed policy, a NotAction, a permission field it does
// not know) is reported, never skipped.

// resolveDeep resolves every intrinsic inside a policy document.
func (r resolver) resolveDeep(v any) (any, error) {
	if isIntrinsic(v) {
		return r.value(v)
	}
	switch v := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range v {
			y, err := r.resolveDeep(x)
			if err != nil {
				return nil, err
			}
			out[k] = y
		}
		return out, nil
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			y, err := r.resolveDeep(x)
			if err != nil {
				return nil, err
			}
			out[i] = y
		}
		return out, nil
	}
	return v, nil
}

func (r resolver) ofType(typ string) []string {
	var ids []string
	for id := range r.resources {
		if r.typeOf(id) == typ {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// refTarget is the logical id a value refers to by Ref or Fn::GetAtt (or "").
func refTarget(v any) string {
	m, _ := v.(map[string]any)
	if id, ok := m["Ref"].(string); ok {
		return id
	}
	if att, ok := m["Fn::GetAtt"].([]any); ok && len(att) == 2 {
		return fmt.Sprint(att[0])
	}
	return ""
}

// functionIn finds the Lambda function a value names somewhere inside it (an integration or
// authorizer URI is a Fn::Join around the function's ARN).
func (r resolver) functionIn(v any) string {
	switch v := v.(type) {
	case map[string]any:
		if id := refTarget(v); id != "" && r.typeOf(id) == "AWS::Lambda::Function" {
			return id
		}
		for _, x := range v {
			if id := r.functionIn(x); id != "" {
				return id
			}
		}
	case []any:
		for _, x := range v {
			if id := r.functionIn(x); id != "" {
				return id
			}
		}
	}
	return ""
}

var lambdaPermissionFields = []string{"Action", "FunctionName", "Principal", "SourceArn", "SourceAccount"}

// lambdaPermissionStatement is the statement Lambda adds to the function's policy for the
// permission id (AddPermission), unresolved.
func (r resolver) lambdaPermissionStatement(id string) (map[string]any, error) {
	props := r.props(id)
	for k := range props {
		if !slices.Contains(lambdaPermissionFields, k) {
			return nil, fmt.Errorf("%s: the model does not know the permission field %s", id, k)
		}
	}
	principal := map[string]any{"Service": props["Principal"]}
	if s, ok := props["Principal"].(string); ok && !strings.HasSuffix(s, ".amazonaws.com") {
		principal = map[string]any{"AWS": s}
	}
	st := map[string]any{"Sid": id, "Effect": "Allow", "Principal": principal, "Action": props["Action"], "Resource": props["FunctionName"]}
	cond := map[string]any{}
	if v, ok := props["SourceArn"]; ok {
		cond["ArnLike"] = map[string]any{"AWS:SourceArn": v}
	}
	if v, ok := props["SourceAccount"]; ok {
		cond["StringEquals"] = map[string]any{"AWS:SourceAccount": v}
	}
	if len(cond) > 0 {
		st["Condition"] = cond
	}
	return st, nil
}

// policy is a resolved policy document.
type policy = map[string]any

func document(statements ...any) policy {
	return policy{"Version": "2012-10-17", "Statement": statements}
}

// functionPolicy is the resource policy of function fnID: its permissions' statements.
func (r resolver) functionPolicy(fnID string) (policy, error) {
	arn, _ := r.getAtt(fnID, "Arn")
	var statements []any
	for _, id := range r.ofType("AWS::Lambda::Permission") {
		target, err := r.value(r.props(id)["FunctionName"])
		if err != nil {
			return nil, err
		}
		if target != arn && target != fnID {
			continue
		}
		st, err := r.lambdaPermissionStatement(id)
		if err != nil {
			return nil, err
		}
		st["Resource"] = arn
		resolved, err := r.resolveDeep(st)
		if err != nil {
			return nil, err
		}
		statements = append(statements, resolved)
	}
	if len(statements) == 0 {
		return nil, nil
	}
	return document(statements...), nil
}

// topicPolicy is the policy SNS evaluates for the topic: the topic policy that names it,
// which replaces the default one, or else the default one.
func (r resolver) topicPolicy(topicID string) (policy, error) {
	p, found, err := r.attachedPolicy("AWS::SNS::TopicPolicy", "Topics", topicID)
	if found || err != nil {
		return p, err
	}
	arn, _ := r.ref(topicID)
	return document(map[string]any{
		"Sid": "__default_statement_ID", "Effect": "Allow", "Principal": map[string]any{"AWS": "*"},
		"Action": []any{"SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:AddPermission", "SNS:RemovePermission",
			"SNS:DeleteTopic", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"},
		"Resource":  arn,
		"Condition": map[string]any{"StringEquals": map[string]any{"AWS:SourceOwner": standInAccount}},
	}), nil
}

// queuePolicy is the policy SQS evaluates for the queue: its queue policy (none: only
// identity policies of the account decide).
func (r resolver) queuePolicy(queueID string) (policy, error) {
	p, _, err := r.attachedPolicy("AWS::SQS::QueuePolicy", "Queues", queueID)
	return p, err
}

// attachedPolicy is the resolved document of the one resource of policyType whose list
// property names id (a topic's or a queue's policy); found false when none does. Two are
// an error: the service keeps only the last one applied.
func (r resolver) attachedPolicy(policyType, listProperty, id string) (p policy, found bool, err error) {
	var ids []string
	for _, pid := range r.ofType(policyType) {
		for _, target := range list1(r.props(pid)[listProperty]) {
			if refTarget(target) == id {
				ids = append(ids, pid)
			}
		}
	}
	switch len(ids) {
	case 0:
		return nil, false, nil
	case 1:
		doc, err := r.resolveDeep(r.props(ids[0])["PolicyDocument"])
		p, _ := doc.(policy)
		return p, true, err
	}
	return nil, false, fmt.Errorf("%s has %d %s resources %v: the service keeps only the last one applied", id, len(ids), policyType, ids)
}

// awsManagedSNSKeyPolicy is the policy of the AWS-managed key alias/aws/sns: principals of
// the account, calling through SNS.
func awsManagedSNSKeyPolicy() policy {
	return document(map[string]any{
		"Effect": "Allow", "Principal": map[string]any{"AWS": "*"},
		"Action":   []any{"kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:CreateGrant", "kms:DescribeKey"},
		"Resource": "*",
		"Condition": map[string]any{"StringEquals": map[string]any{
			"kms:CallerAccount": standInAccount, "kms:ViaService": "sns." + standInRegion + ".amazonaws.com",
		}},
	})
}

// topicKey is the ARN and policy of the key the topic is encrypted with ("" when none).
func (r resolver) topicKey(topicID string) (string, policy, error) {
	v, ok := r.props(topicID)["KmsMasterKeyId"]
	if !ok {
		return "", nil, nil
	}
	if s, isString := v.(string); isString {
		if s == "alias/aws/sns" {
			return "arn:aws:kms:" + standInRegion + ":" + standInAccount + ":key/aws-managed-sns", awsManagedSNSKeyPolicy(), nil
		}
		return "", nil, fmt.Errorf("topic %s: key %q is not one of the stack's", topicID, s)
	}
	keyID := refTarget(v)
	if r.typeOf(keyID) != "AWS::KMS::Key" {
		return "", nil, fmt.Errorf("topic %s: KmsMasterKeyId %s is no key of the stack", topicID, js(v))
	}
	arn, _ := r.getAtt(keyID, "Arn")
	doc, err := r.resolveDeep(r.props(keyID)["KeyPolicy"])
	if err != nil {
		return "", nil, err
	}
	p, _ := doc.(policy)
	return arn, p, nil
}

// rolePolicies are the identity policies of a role: its inline policies and each
// AWS::IAM::Policy attached to it, resolved.
func (r resolver) rolePolicies(roleID string) ([]map[string]any, error) {
	props := r.props(roleID)
	if props["ManagedPolicyArns"] != nil || props["PermissionsBoundary"] != nil {
		return nil, fmt.Errorf("role %s has managed policies or a boundary, which the model cannot read", roleID)
	}
	var docs []any
	for _, p := range list1(props["Policies"]) {
		if p, ok := p.(map[string]any); ok {
			docs = append(docs, p["PolicyDocument"])
		}
	}
	for _, id := range r.ofType("AWS::IAM::Policy") {
		for _, role := range list1(r.props(id)["Roles"]) {
			if refTarget(role) == roleID {
				docs = append(docs, r.props(id)["PolicyDocument"])
			}
		}
	}
	var out []map[string]any
	for i, d := range docs {
		resolved, err := r.resolveDeep(d)
		if err != nil {
			return nil, fmt.Errorf("role %s: %w", roleID, err)
		}
		out = append(out, map[string]any{"name": fmt.Sprintf("%s-%d", roleID, i), "policy": resolved})
	}
	return out, nil
}

// resourcePolicyOf is the resource policy AWS evaluates for a request on arn, by the
// service's rule; nil when the resource has none.
func (r resolver) resourcePolicyOf(arn string) (policy, error) {
	for _, id := range r.ofType("AWS::Lambda::Function") {
		if a, _ := r.getAtt(id, "Arn"); a == arn {
			return r.functionPolicy(id)
		}
	}
	for _, id := range r.ofType("AWS::SNS::Topic") {
		if a, _ := r.ref(id); a == arn {
			return r.topicPolicy(id)
		}
		if key, p, err := r.topicKey(id); err == nil && key == arn {
			return p, nil
		}
	}
	for _, id := range r.ofType("AWS::SQS::Queue") {
		if a, _ := r.getAtt(id, "Arn"); a == arn {
			return r.queuePolicy(id)
		}
	}
	for _, id := range r.ofType("AWS::KMS::Key") {
		if a, _ := r.getAtt(id, "Arn"); a == arn {
			doc, err := r.resolveDeep(r.props(id)["KeyPolicy"])
			p, _ := doc.(policy)
			return p, err
		}
	}
	return nil, nil
}
