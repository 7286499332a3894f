// Command infra is the CDK app behind `cdk synth` and `cdk deploy` (see cdk.json). The stack
// is generated from the route table (pkg/api), the job table (pkg/jobs) and the table
// definition (pkg/pool), so no route, schedule or key name is written twice.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

func main() {
	defer jsii.Close()
	app := awscdk.NewApp(nil)
	cfg, err := configFromContext(app.Node())
	if err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		os.Exit(1)
	}
	NewBrokerStack(app, "SandboxBroker", cfg, &awscdk.StackProps{
		Description: jsii.String("Sandbox Broker: allocates pre-created CSP sandboxes to lab students"),
	})
	addNagChecks(app)
	app.Synth(nil)
}
