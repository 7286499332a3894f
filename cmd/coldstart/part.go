package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/sandbox-broker/broker/pkg/app"
	"github.com/sandbox-broker/broker/pkg/app/awssecrets"
	"github.com/sandbox-broker/broker/pkg/config"
	"github.com/sandbox-broker/broker/pkg/obs"
)

// compositionParts are the pieces the constructors of pkg/app put together, each timed as
// the first call of a fresh process whose packages are already initialised, in the
// environment of a function in Lambda (lambdaEnv).
var compositionParts = []struct {
	name string
	run  func(ctx context.Context, env config.Env) error
}{
	{"logger and metrics (app.NewObservability)", func(ctx context.Context, env config.Env) error {
		_, err := app.NewObservability(env, io.Discard)
		return err
	}},
	{"pool and API settings (config.LoadPool, config.LoadAPI)", func(ctx context.Context, env config.Env) error {
		_, err1 := config.LoadPool(env)
		_, err2 := config.LoadAPI(env)
		return errors.Join(err1, err2)
	}},
	{"AWS config (config.LoadDefaultConfig)", func(ctx context.Context, env config.Env) error {
		_, err := awsconfig.LoadDefaultConfig(ctx)
		return err
	}},
	{"DynamoDB client and pool (app.OpenPool, with its AWS config)", func(ctx context.Context, env config.Env) error {
		cfg, err := config.LoadPool(env)
		if err != nil {
			return err
		}
		_, err = app.OpenPool(ctx, cfg, nil)
		return err
	}},
	{"Lambda client of a trigger route (AWS config, lambda.NewFromConfig)", func(ctx context.Context, env config.Env) error {
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return err
		}
		cfg.APIOptions = append(cfg.APIOptions, obs.AWSAPIOptions()...)
		_ = lambda.NewFromConfig(cfg)
		return nil
	}},
	{"a secret read by a CSP job (Secrets Manager client, GetSecretValue on loopback)", func(ctx context.Context, env config.Env) error {
		_, err := awssecrets.Fetcher("")(ctx, env("CSP_TOKEN_SECRET_ARN"))
		return err
	}},
	{"a plain route's whole composition (app.Route)", func(ctx context.Context, env config.Env) error {
		_, err := app.Route(ctx, env, io.Discard, "allocate")
		return err
	}},
}

// timePart runs the part named args[0] once and prints how long it took, in nanoseconds.
func timePart(args []string) error {
	if len(args) != 1 {
		return errors.New("part takes one name")
	}
	for _, p := range compositionParts {
		if p.name == args[0] {
			began := time.Now()
			if err := p.run(context.Background(), os.Getenv); err != nil {
				return err
			}
			fmt.Println(int64(time.Since(began)))
			return nil
		}
	}
	return fmt.Errorf("no part %q", args[0])
}

// partInFreshProcess runs this command again as "part name" in env and returns the time it
// printed.
func partInFreshProcess(name string, env []string) (time.Duration, error) {
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(self, "part", name)
	for _, kv := range env {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	out, err := cmd.Output()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return 0, fmt.Errorf("%w: %s", err, exit.Stderr)
		}
		return 0, err
	}
	ns, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	return time.Duration(ns), err
}
