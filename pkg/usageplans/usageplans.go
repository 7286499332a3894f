package usageplans

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigateway"
	"github.com/aws/aws-sdk-go-v2/service/apigateway/types"

	"github.com/sandbox-broker/broker/pkg/auth"
)

// The outcomes of a client in one run, the counts of the run's summary.
const (
	Created   = "created"   // a new client: its plan and keys were made
	Updated   = "updated"   // its throttle, its keys (a rotated token) or their association changed
	Unchanged = "unchanged" // API Gateway already held it as the secret says
	Removed   = "removed"   // gone from the secret: its plan and keys were deleted
)

// description marks what the job owns, for whoever finds it in the console.
const description = "Managed by the Sandbox Broker's usage-plans job from its tokens secret: changes made here are undone by its next run (docs/operations.md)"

// Reconciler makes API Gateway hold exactly the clients of the tokens secret.
type Reconciler struct {
	client    *apigateway.Client
	restAPIID string
	stage     string
}

// New reconciles the usage plans of stage of the REST API restAPIID through client.
func New(client *apigateway.Client, restAPIID, stage string) *Reconciler {
	return &Reconciler{client: client, restAPIID: restAPIID, stage: stage}
}

// Prefix starts the name of every API key and usage plan the reconciler owns; the rest of
// the name is the client's. Another stack's, or anyone else's, keys and plans do not
// start with it and are never touched.
func (r *Reconciler) Prefix() string {
	return "sandbox-broker/" + r.restAPIID + "/" + r.stage + "/"
}

// stageID is the stage as a usage plan's patch operations name it.
func (r *Reconciler) stageID() string { return r.restAPIID + ":" + r.stage }

// client is one client of the secret: its throttle and the usage keys of its tokens on the
// reconciler's REST API.
type client struct {
	name   string
	limits auth.ClientLimits
	keys   []string
}

// clients groups the tokens by client name, in the secret's order. The entries of one
// client (during a token rotation) should carry the same rate and burst; when they do not,
// the plan takes the last entry's, as the local gateway emulator does, and a note says so.
func clients(tokens []auth.Token, restAPIID string) ([]client, []string) {
	var out []client
	var notes []string
	at := map[string]int{}
	for _, t := range tokens {
		i, ok := at[t.Name]
		if !ok {
			at[t.Name], i = len(out), len(out)
			out = append(out, client{name: t.Name, limits: t.Limits})
		}
		c := &out[i]
		if c.limits.Rate != t.Limits.Rate || c.limits.Burst != t.Limits.Burst {
			notes = append(notes, fmt.Sprintf("client %s: its entries disagree on rate and burst; its usage plan takes the last entry's", t.Name))
		}
		c.limits = t.Limits
		c.keys = append(c.keys, t.UsageKey(restAPIID))
	}
	return out, notes
}

// Reconcile makes API Gateway hold exactly the clients of tokens: for each, a usage plan
// named Prefix()+client on the stage, with the client's throttle (none when the client has
// no rate and burst, so only the stage's limits apply), holding an API key of the same name
// per token with the token's usage key as its value. A rotated token's key is replaced: the
// new key is made and put into the plan before the old one goes, so no token of the client
// is ever without its key. A client no longer in tokens loses its plan and keys. It counts
// each client under one of the outcome names (also when it fails part way) and returns
// notes on the tokens; an error is API Gateway's, and stops the run where it happened (the
// next run starts over from what API Gateway then holds, so a repeated run is harmless).
func (r *Reconciler) Reconcile(ctx context.Context, tokens []auth.Token) (map[string]int, []string, error) {
	counts := map[string]int{}
	want, notes := clients(tokens, r.restAPIID)
	// A wrong REST API id or stage (the stack's settings) fails before anything changes.
	if _, err := r.client.GetStage(ctx, &apigateway.GetStageInput{RestApiId: aws.String(r.restAPIID), StageName: aws.String(r.stage)}); err != nil {
		return counts, notes, fmt.Errorf("stage %s of REST API %s: %w", r.stage, r.restAPIID, err)
	}
	keys, err := r.ownedKeys(ctx)
	if err != nil {
		return counts, notes, err
	}
	plans, err := r.ownedPlans(ctx)
	if err != nil {
		return counts, notes, err
	}
	for _, c := range want {
		outcome, err := r.reconcileClient(ctx, c, plans[c.name], keys[c.name])
		if err != nil {
			return counts, notes, fmt.Errorf("client %s: %w", c.name, err)
		}
		counts[outcome]++
	}
	kept := map[string]bool{}
	for _, c := range want {
		kept[c.name] = true
	}
	gone := map[string]bool{}
	for name := range keys {
		gone[name] = !kept[name]
	}
	for name := range plans {
		gone[name] = !kept[name]
	}
	for _, name := range slices.Sorted(maps.Keys(gone)) {
		if !gone[name] {
			continue
		}
		for _, p := range plans[name] {
			if err := r.deletePlan(ctx, p); err != nil {
				return counts, notes, fmt.Errorf("remove client %s: %w", name, err)
			}
		}
		for _, k := range keys[name] {
			if err := r.deleteKey(ctx, k); err != nil {
				return counts, notes, fmt.Errorf("remove client %s: %w", name, err)
			}
		}
		counts[Removed]++
	}
	return counts, notes, nil
}

// reconcileClient brings one client's plan and keys to what the secret says.
func (r *Reconciler) reconcileClient(ctx context.Context, c client, plans []types.UsagePlan, keys []types.ApiKey) (string, error) {
	outcome := Unchanged
	var plan types.UsagePlan
	associated := map[string]bool{}
	if len(plans) == 0 {
		in := &apigateway.CreateUsagePlanInput{
			Name: aws.String(r.Prefix() + c.name), Description: aws.String(description),
			ApiStages: []types.ApiStage{{ApiId: aws.String(r.restAPIID), Stage: aws.String(r.stage)}},
		}
		if c.limits.Rate > 0 {
			in.Throttle = &types.ThrottleSettings{RateLimit: float64(c.limits.Rate), BurstLimit: int32(c.limits.Burst)}
		}
		out, err := r.client.CreateUsagePlan(ctx, in)
		if err != nil {
			return "", fmt.Errorf("create its usage plan: %w", err)
		}
		plan, outcome = types.UsagePlan{Id: out.Id, Name: out.Name}, Created
	} else {
		// One plan per client; more can only be left by hand or by a run that failed
		// half way through a removal. The first one listed stays.
		plan = plans[0]
		for _, extra := range plans[1:] {
			if err := r.deletePlan(ctx, extra); err != nil {
				return "", err
			}
			outcome = Updated
		}
		if ops := r.planChanges(plan, c.limits); len(ops) > 0 {
			if _, err := r.client.UpdateUsagePlan(ctx, &apigateway.UpdateUsagePlanInput{UsagePlanId: plan.Id, PatchOperations: ops}); err != nil {
				return "", fmt.Errorf("update its usage plan: %w", err)
			}
			outcome = Updated
		}
		pages := apigateway.NewGetUsagePlanKeysPaginator(r.client, &apigateway.GetUsagePlanKeysInput{UsagePlanId: plan.Id, Limit: aws.Int32(500)})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				return "", fmt.Errorf("list its usage plan's keys: %w", err)
			}
			for _, k := range page.Items {
				associated[aws.ToString(k.Id)] = true
			}
		}
	}

	// The keys to keep: one per usage key of the client's tokens. Any other key of the
	// client's (a rotated or removed token's, a duplicate) goes once the new ones are in.
	byValue := map[string]string{}
	var stale []types.ApiKey
	for _, k := range keys {
		v := aws.ToString(k.Value)
		if _, dup := byValue[v]; dup || !slices.Contains(c.keys, v) {
			stale = append(stale, k)
			continue
		}
		byValue[v] = aws.ToString(k.Id)
	}
	wanted := map[string]bool{}
	for _, v := range c.keys {
		id, ok := byValue[v]
		if !ok {
			out, err := r.client.CreateApiKey(ctx, &apigateway.CreateApiKeyInput{
				Name: aws.String(r.Prefix() + c.name), Value: aws.String(v), Enabled: true, Description: aws.String(description),
			})
			if err != nil {
				return "", fmt.Errorf("create an API key: %w", err)
			}
			id, byValue[v] = aws.ToString(out.Id), aws.ToString(out.Id)
			outcome = updatedUnlessCreated(outcome)
		}
		wanted[id] = true
		if !associated[id] {
			if _, err := r.client.CreateUsagePlanKey(ctx, &apigateway.CreateUsagePlanKeyInput{
				UsagePlanId: plan.Id, KeyId: aws.String(id), KeyType: aws.String("API_KEY"),
			}); err != nil {
				return "", fmt.Errorf("put an API key into its usage plan: %w", err)
			}
			outcome = updatedUnlessCreated(outcome)
		}
	}
	staleIDs := map[string]bool{}
	for _, k := range stale {
		staleIDs[aws.ToString(k.Id)] = true
	}
	for _, id := range slices.Sorted(maps.Keys(associated)) {
		// A key the plan holds that is none of the client's: metered as this client, so
		// it leaves the plan (the client's own stale keys go with their deletion below).
		if !wanted[id] && !staleIDs[id] {
			if _, err := r.client.DeleteUsagePlanKey(ctx, &apigateway.DeleteUsagePlanKeyInput{UsagePlanId: plan.Id, KeyId: aws.String(id)}); err != nil {
				return "", fmt.Errorf("take a foreign API key out of its usage plan: %w", err)
			}
			outcome = Updated
		}
	}
	for _, k := range stale {
		if err := r.deleteKey(ctx, k); err != nil {
			return "", err
		}
		outcome = Updated
	}
	return outcome, nil
}

func updatedUnlessCreated(outcome string) string {
	if outcome == Created {
		return Created
	}
	return Updated
}

// planChanges are the patch operations that give plan the stage and the throttle of limits.
func (r *Reconciler) planChanges(plan types.UsagePlan, limits auth.ClientLimits) []types.PatchOperation {
	var ops []types.PatchOperation
	if !slices.ContainsFunc(plan.ApiStages, func(s types.ApiStage) bool {
		return aws.ToString(s.ApiId) == r.restAPIID && aws.ToString(s.Stage) == r.stage
	}) {
		ops = append(ops, patch(types.OpAdd, "/apiStages", r.stageID()))
	}
	has := plan.Throttle != nil && (plan.Throttle.RateLimit != 0 || plan.Throttle.BurstLimit != 0)
	switch {
	case limits.Rate > 0 && (!has || plan.Throttle.RateLimit != float64(limits.Rate) || plan.Throttle.BurstLimit != int32(limits.Burst)):
		ops = append(ops, patch(types.OpReplace, "/throttle/rateLimit", strconv.Itoa(limits.Rate)),
			patch(types.OpReplace, "/throttle/burstLimit", strconv.Itoa(limits.Burst)))
	case limits.Rate == 0 && has:
		ops = append(ops, types.PatchOperation{Op: types.OpRemove, Path: aws.String("/throttle")})
	}
	return ops
}

func patch(op types.Op, path, value string) types.PatchOperation {
	return types.PatchOperation{Op: op, Path: aws.String(path), Value: aws.String(value)}
}
