package main

import (
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/sandbox-broker/broker/internal/ddblocal"
)

// buildFlags are those of `make build` (a test checks the Makefile still uses them), so the
// bootstraps the tests run and measure differ from the deployed ones only in GOOS/GOARCH:
// they must run here, under the runtime interface emulator.
var buildFlags = []string{"-tags", "lambda.norpc,grpcnotrace", "-trimpath", `-ldflags=-s -w`}

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

// buildAll links the bootstraps into the checkout's bootstrap cache (bootstrapCache), where
// go build relinks only those whose code changed: it skips an output that is up to date, and
// a fresh directory would make it link all 28 every run. Each test binary gets copies in a
// directory of its own.
func buildAll() (bootstraps, error) {
	root, err := ddblocal.RepoRoot()
	if err != nil {
		return bootstraps{}, err
	}
	cache, err := bootstrapCache(root)
	if err != nil {
		return bootstraps{}, err
	}
	unlock, err := lockDir(cache)
	if err != nil {
		return bootstraps{}, err
	}
	defer unlock()
	args := append(append([]string{"build"}, buildFlags...), "-o", cache+string(filepath.Separator), "./functions/...")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return bootstraps{}, fmt.Errorf("go build ./functions/...: %v\n%s", err, out)
	}
	dir, err := os.MkdirTemp("", "broker-bootstraps-")
	if err != nil {
		return bootstraps{}, err
	}
	b := bootstraps{dir: dir, sha256: map[[32]byte]string{}, size: map[string]int64{}}
	folders, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		return bootstraps{}, err
	}
	for _, f := range folders {
		name := f.Name()
		content, err := os.ReadFile(filepath.Join(cache, name))
		if err != nil {
			return bootstraps{}, fmt.Errorf("functions/%s built no binary: %w", name, err)
		}
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			return bootstraps{}, err
		}
		if err := os.WriteFile(filepath.Join(dir, name, "bootstrap"), content, 0o755); err != nil {
			return bootstraps{}, err
		}
		b.sha256[sha256.Sum256(content)] = name
		b.size[name] = int64(len(content))
	}
	return b, nil
}

// bootstrapCache is where one checkout's bootstraps for this platform are linked, kept
// between test runs like Go's own build cache (outside the repository).
func bootstrapCache(root string) (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	key := sha256.Sum256([]byte(root + "\x00" + runtime.GOOS + "/" + runtime.GOARCH))
	dir := filepath.Join(base, "sandbox-broker", "bootstraps", hex.EncodeToString(key[:8]))
	return dir, os.MkdirAll(dir, 0o755)
}

// lockDir holds an exclusive lock on dir until unlock: test binaries of one checkout that
// run at once take turns to build into it.
func lockDir(dir string) (unlock func(), err error) {
	f, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
}

func TestMakeBuildUsesTheTestsBuildFlags(t *testing.T) {
	raw, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if want := `-tags lambda.norpc,grpcnotrace -trimpath -ldflags="-s -w"`; !strings.Contains(string(raw), want) {
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
