// Package trigger builds the functions of the admin routes that start a job's run
// (api.Route.Starts): the only functions that link the Lambda client.
package trigger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/sandbox-broker/broker/pkg/api"
	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/obs"
)

// Route is the Lambda handler of the trigger route named name, with the client that
// invokes its job's function.
func Route(ctx context.Context, env config.Env, out io.Writer, name string) (api.LambdaHandler, error) {
	route, ok := api.RouteByName(name)
	if !ok {
		return nil, fmt.Errorf("app: no route named %q", name)
	}
	if route.Starts == "" {
		return nil, fmt.Errorf("app: route %s starts no job: its function is built by app.Route", name)
	}
	jobs, jobsErr := newLambdaJobStarter(ctx, env, route.Starts)
	handler, apiErr := app.RouteStarting(ctx, env, out, name, jobs, nil)
	if err := errors.Join(apiErr, jobsErr); err != nil {
		return nil, err
	}
	return handler, nil
}

// lambdaJobStarter starts a job's run in AWS: an asynchronous invoke (InvocationType Event)
// of the job's function with a JobTrigger. Lambda queues the event and answers at once,
// so the admin route answers 202 long before the run ends; the run takes the job's lease
// like a scheduled one and records its summary under the run ID.
type lambdaJobStarter struct {
	client   *lambda.Client
	job      string
	function string
}

// newLambdaJobStarter starts runs of job, whose function's name it reads from
// api.JobFunctionEnv(job) (the CDK stack sets it on the trigger route's function and
// grants that function the invoke, and nothing else).
func newLambdaJobStarter(ctx context.Context, env config.Env, job string) (*lambdaJobStarter, error) {
	variable := api.JobFunctionEnv(job)
	function := env(variable)
	if function == "" {
		return nil, fmt.Errorf("%s is required: the name of the %s job's function, which this route invokes", variable, job)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	awsCfg.APIOptions = append(awsCfg.APIOptions, obs.AWSAPIOptions()...)
	return &lambdaJobStarter{client: lambda.NewFromConfig(awsCfg), job: job, function: function}, nil
}

// StartJob queues one run of the job under runID.
func (s *lambdaJobStarter) StartJob(ctx context.Context, job, runID string) error {
	if job != s.job {
		return fmt.Errorf("app: this function starts the %s job, not %s", s.job, job)
	}
	payload, err := json.Marshal(app.JobTrigger{RunID: runID})
	if err != nil {
		return err
	}
	_, err = s.client.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   aws.String(s.function),
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("invoke %s: %w", s.function, err)
	}
	return nil
}
