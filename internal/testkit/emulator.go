package testkit

import (
	"net"
	"os/exec"
	"sync"
	"syscall"
	"testing"

	"github.com/sandbox-broker/broker/internal/procnet"
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

// StartEmulator runs bootstrap under the Lambda runtime interface emulator rie, with
// environment env, for the rest of test t, and returns the address its invoke API listens
// on and its output so far. The emulator and the function are killed when t ends; the
// output is logged, under label, when t failed. A free address may be taken by another
// process before the emulator binds it: the emulator then is not what answers there
// (procnet), or it exits, and it starts again on other addresses.
func StartEmulator(t *testing.T, rie, bootstrap string, env []string, label string) (addr string, output func() string) {
	t.Helper()
	for attempt := 1; ; attempt++ {
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
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := sync.OnceFunc(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		})
		t.Cleanup(func() {
			stop()
			if t.Failed() {
				t.Logf("%s emulator output:\n%s", label, out.String())
			}
		})
		if listening(t, cmd.Process.Pid, addr, exited) {
			return addr, out.String
		}
		stop()
		if attempt == emulatorAttempts {
			t.Fatalf("%s emulator: another process took its address %d times; its output:\n%s", label, attempt, out.String())
		}
	}
}

// emulatorAttempts bounds the addresses StartEmulator tries.
const emulatorAttempts = 5

// listening waits until process pid listens on addr (true), or until something else
// answers there and pid has exited, or pid exits first (false).
func listening(t *testing.T, pid int, addr string, exited <-chan struct{}) bool {
	t.Helper()
	var ours bool
	Eventually(t, "the emulator to listen on "+addr, func() bool {
		select {
		case <-exited:
			return true
		default:
		}
		_, ours = procnet.Serving(pid, addr)
		return ours
	})
	return ours
}
