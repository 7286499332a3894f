package testkit

import (
	"net"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// FreeAddr is a free loopback TCP address ("127.0.0.1:port") for a server the test starts,
// such as the Lambda runtime interface emulator.
func FreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitForPort returns once something listens on addr (testkit.Eventually).
func WaitForPort(t *testing.T, addr string) {
	t.Helper()
	Eventually(t, "something to listen on "+addr, func() bool {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
		}
		return err == nil
	})
}

// StartEmulator runs bootstrap under the Lambda runtime interface emulator rie, with
// environment env, for the rest of test t, and returns the address its invoke API listens
// on and its output so far. The emulator and the function are killed when t ends; the
// output is logged, under label, when t failed.
func StartEmulator(t *testing.T, rie, bootstrap string, env []string, label string) (addr string, output func() string) {
	t.Helper()
	addr = FreeAddr(t)
	out := &Buffer{}
	cmd := exec.Command(rie, "--runtime-interface-emulator-address", addr, "--runtime-api-address", FreeAddr(t), bootstrap)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, killed with the test: the emulator's child, the function,
	// must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("%s emulator output:\n%s", label, out.String())
		}
	})
	WaitForPort(t, addr)
	return addr, out.String
}
