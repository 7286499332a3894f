package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/authorizer"
	"github.com/sandbox-broker/broker/pkg/app/job"
	"github.com/sandbox-broker/broker/pkg/auth"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/jobs"
)

// The functions API Gateway invokes for its authorizer, and the schedules for the jobs.
type (
	authorizerFunction = lambdaFunction[events.APIGatewayCustomAuthorizerRequestTypeRequest, events.APIGatewayCustomAuthorizerResponse]
	jobFunction        = lambdaFunction[json.RawMessage, jobs.Summary]
)

// localTokensSecret is the token secret's ARN in the functions' environment: the
// authorizer's instances read it from the stack (tokenSecret), not from Secrets Manager.
const localTokensSecret = "arn:aws:secretsmanager:" + emulatedRegion + ":" + emulatedAccount + ":secret:local-broker-tokens"

// startLambda is the Lambda service of the stack's account: every route, the authorizer,
// every job the stack runs and the stream's consumer, none reserved, as the CDK stack's default (a reservation is
// the operator's choice there and LOCAL_RESERVED_CONCURRENCY's here).
func (s *Stack) startLambda(cfg config.Local, log *slog.Logger) (part, error) {
	functions := map[string]int{api.AuthorizerFunction: noReservation}
	for _, r := range api.Routes {
		functions[r.Name] = noReservation
	}
	for _, j := range localJobs() {
		functions[j.Name] = noReservation
	}
	functions[api.EventConsumerFunction] = noReservation
	svc, err := newLambdaService(cfg, functions, log)
	if err != nil {
		return part{}, err
	}
	s.lambda, s.ExecutionModel = svc, cfg.ExecutionModel
	if cfg.ExecutionModel == config.ExecutionProcess {
		return part{"Functions", "", "LOCAL_EXECUTION_MODEL=process: one shared instance per function serves every invocation at once, " +
			"without concurrency limits — not how Lambda runs them"}, nil
	}
	reserved := ""
	if len(svc.reservedBy) > 0 {
		var each []string
		for _, name := range slices.Sorted(maps.Keys(svc.reservedBy)) {
			each = append(each, fmt.Sprintf("%s=%d", name, svc.reservedBy[name]))
		}
		reserved = fmt.Sprintf(", %d of it reserved (%s)", svc.reserved, strings.Join(each, ","))
	}
	return part{"Functions", "", fmt.Sprintf("Lambda's instance model: one invocation at a time per instance, a cold start per new one; "+
		"account concurrency %d%s; idle instances retired after %s", cfg.AccountConcurrency, reserved, cfg.IdleTimeout)}, nil
}

// addRoutes adds every route and returns their handlers, each an instance of its own function
// built as functions/<route>/main.go builds it (app.Route, trigger.Route whose job runs
// jobs starts, as Lambda's asynchronous invoke does, or eventfn.ReplayRoute, whose replayer
// is the stack's: startEvents'), on the stack's clock.
func (s *Stack) addRoutes(ctx context.Context, env config.Env, logs io.Writer, jobs api.JobStarter) (map[string]api.LambdaHandler, error) {
	handlers := map[string]api.LambdaHandler{}
	for _, r := range api.Routes {
		var starts api.JobStarter
		if r.Starts != "" {
			starts = jobs
		}
		f, err := addFunction(ctx, s.lambda, r.Name, 0, func(ctx context.Context) (api.LambdaHandler, error) {
			if r.ReplaysEvents {
				a, err := app.NewAPI(ctx, env, logs, nil, s.clock.now, s.withEvents)
				if err != nil {
					return nil, err
				}
				return a.Function(r.Name)
			}
			return app.RouteStarting(ctx, env, logs, r.Name, starts, s.clock.now)
		})
		if err != nil {
			return nil, err
		}
		handlers[r.Name] = f.invoke
	}
	return handlers, nil
}

// addAuthorizer adds the authorizer, built per instance as functions/authorizer builds
// it, its token store reading the secret with read (tokenSecret in the stack).
func (s *Stack) addAuthorizer(ctx context.Context, env config.Env, logs io.Writer, read config.SecretFetcher) (*authorizerFunction, error) {
	return addFunction(ctx, s.lambda, api.AuthorizerFunction, 0, func(ctx context.Context) (authorizeFunc, error) {
		a, err := authorizer.FromSecret(ctx, env, logs, read)
		if err != nil {
			return nil, err
		}
		return a.Authorize, nil
	})
}

// tokenSecret serves the stack's tokens as the secret localTokensSecret, in the token
// secret's format: what Secrets Manager serves the authorizer in AWS.
func tokenSecret(tokens []auth.Token) config.SecretFetcher {
	secret := string(auth.SecretDocument(tokens))
	return func(_ context.Context, arn string) (string, error) {
		if arn != localTokensSecret {
			return "", fmt.Errorf("local: no secret %s", arn)
		}
		return secret, nil
	}
}

// addJob adds the job j, built per instance as functions/<job> builds it (on the stack's
// clock), each invocation ending after the job's timeout.
func (s *Stack) addJob(ctx context.Context, env config.Env, logs io.Writer, j jobs.Job) (*jobFunction, error) {
	return addFunction(ctx, s.lambda, j.Name, j.Timeout(), func(ctx context.Context) (handler[json.RawMessage, jobs.Summary], error) {
		return job.Function(ctx, env, logs, j.Name, job.WithClock(s.clock.now))
	})
}

// Functions are the counts of every function the stack runs: invocations, cold starts and
// their init time, throttles.
func (s *Stack) Functions() []FunctionStats {
	return s.lambda.stats()
}
