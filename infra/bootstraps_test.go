package main

import (
	"crypto/sha256"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/sandbox-broker/broker/internal/ddblocal"
)

// buildFlags are those of `make build` (a test checks the Makefile still uses them), so the
// bootstraps the tests run and measure differ from the deployed ones only in GOOS/GOARCH:
// they must run here, under the runtime interface emulator.
var buildFlags = []string{"-tags", "lambda.norpc", "-trimpath", `-ldflags=-s -w`}

// bootstraps is every functions/<fn> built once per test binary into <dir>/<fn>/bootstrap,
// the layout `make build` gives the stack as its AssetDir.
type bootstraps struct {
	dir    string
	sha256 map[[32]byte]string // bootstrap content → function folder
	size   map[string]int64
}

var (
	builtOnce sync.Once
	built     bootstraps
	buildErr  error
)

// startBootstrapBuild starts the build while TestMain synthesizes the stacks (jsii's Node
// process and go build's compilers share the cores), when the tests that run or measure the
// bootstraps are to run.
func startBootstrapBuild() {
	run := flag.Lookup("test.run").Value.String()
	if run == "" || strings.Contains(run, "Bootstrap") || strings.Contains(run, "TemplateRuns") {
		go builtOnce.Do(func() { built, buildErr = buildAll() })
	}
}

// buildBootstraps builds every function in one `go build` (it compiles the packages in
// parallel and links each main package once).
func buildBootstraps(t *testing.T) bootstraps {
	t.Helper()
	builtOnce.Do(func() { built, buildErr = buildAll() })
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return built
}

func buildAll() (bootstraps, error) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		return bootstraps{}, err
	}
	dir, err := os.MkdirTemp("", "broker-bootstraps-")
	if err != nil {
		return bootstraps{}, err
	}
	bin := filepath.Join(dir, ".bin") + string(filepath.Separator)
	args := append(append([]string{"build"}, buildFlags...), "-o", bin, "./functions/...")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return bootstraps{}, fmt.Errorf("go build ./functions/...: %v\n%s", err, out)
	}
	b := bootstraps{dir: dir, sha256: map[[32]byte]string{}, size: map[string]int64{}}
	folders, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		return bootstraps{}, err
	}
	for _, f := range folders {
		name := f.Name()
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			return bootstraps{}, err
		}
		target := filepath.Join(dir, name, "bootstrap")
		if err := os.Rename(filepath.Join(bin, name), target); err != nil {
			return bootstraps{}, fmt.Errorf("functions/%s built no binary: %w", name, err)
		}
		content, err := os.ReadFile(target)
		if err != nil {
			return bootstraps{}, err
		}
		b.sha256[sha256.Sum256(content)] = name
		b.size[name] = int64(len(content))
	}
	return b, os.Remove(bin)
}

func TestMakeBuildUsesTheTestsBuildFlags(t *testing.T) {
	raw, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if want := `-tags lambda.norpc -trimpath -ldflags="-s -w"`; !strings.Contains(string(raw), want) {
		t.Fatalf("the Makefile's build no longer uses %s: update buildFlags with it", want)
	}
}

// removeBootstraps runs after every test of the binary (TestMain), once a build started
// by startBootstrapBuild has ended.
func removeBootstraps() {
	builtOnce.Do(func() {})
	if built.dir != "" {
		_ = os.RemoveAll(built.dir)
	}
}
