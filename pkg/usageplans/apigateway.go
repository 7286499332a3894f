package usageplans

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"
)

// deletePlan deletes a usage plan, after taking its stages off: API Gateway refuses to
// delete a plan that has any.
func (r *Reconciler) deletePlan(ctx context.Context, p types.UsagePlan) error {
	var ops []types.PatchOperation
	for _, s := range p.ApiStages {
		ops = append(ops, patch(types.OpRemove, "/apiStages", aws.ToString(s.ApiId)+":"+aws.ToString(s.Stage)))
	}
	if len(ops) > 0 {
		if _, err := r.client.UpdateUsagePlan(ctx, &apigateway.UpdateUsagePlanInput{UsagePlanId: p.Id, PatchOperations: ops}); err != nil {
			return fmt.Errorf("take the stages off usage plan %s: %w", aws.ToString(p.Id), err)
		}
	}
	if _, err := r.client.DeleteUsagePlan(ctx, &apigateway.DeleteUsagePlanInput{UsagePlanId: p.Id}); err != nil {
		return fmt.Errorf("delete usage plan %s: %w", aws.ToString(p.Id), err)
	}
	return nil
}

func (r *Reconciler) deleteKey(ctx context.Context, k types.ApiKey) error {
	if _, err := r.client.DeleteApiKey(ctx, &apigateway.DeleteApiKeyInput{ApiKey: k.Id}); err != nil {
		return fmt.Errorf("delete API key %s: %w", aws.ToString(k.Id), err)
	}
	return nil
}

// ownedKeys are the API keys named with Prefix, with their values, by client name.
func (r *Reconciler) ownedKeys(ctx context.Context) (map[string][]types.ApiKey, error) {
	out := map[string][]types.ApiKey{}
	pages := apigateway.NewGetApiKeysPaginator(r.client, &apigateway.GetApiKeysInput{IncludeValues: aws.Bool(true), Limit: aws.Int32(500)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the API keys: %w", err)
		}
		for _, k := range page.Items {
			if name, ok := strings.CutPrefix(aws.ToString(k.Name), r.Prefix()); ok {
				out[name] = append(out[name], k)
			}
		}
	}
	return out, nil
}

// ownedPlans are the usage plans named with Prefix, by client name.
func (r *Reconciler) ownedPlans(ctx context.Context) (map[string][]types.UsagePlan, error) {
	out := map[string][]types.UsagePlan{}
	pages := apigateway.NewGetUsagePlansPaginator(r.client, &apigateway.GetUsagePlansInput{Limit: aws.Int32(500)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the usage plans: %w", err)
		}
		for _, p := range page.Items {
			if name, ok := strings.CutPrefix(aws.ToString(p.Name), r.Prefix()); ok {
				out[name] = append(out[name], p)
			}
		}
	}
	return out, nil
}
