package procnet_test

import (
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/sandbox-broker/broker/internal/procnet"
)

// TestOwnedTellsTheListenerApart: this process owns the port it listens on; another
// process (a child) does not, and nobody owns a port no one listens on.
func TestOwnedTellsTheListenerApart(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("procnet reads Linux's /proc; this is %s", runtime.GOOS)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if owned, known := procnet.Owned(os.Getpid(), port); !owned || !known {
		t.Fatalf("Owned(this process, %d) = %v, %v; want true, true", port, owned, known)
	}
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	if owned, known := procnet.Owned(child.Process.Pid, port); owned || !known {
		t.Fatalf("Owned(a child, %d) = %v, %v; want false, true", port, owned, known)
	}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := free.Addr().(*net.TCPAddr).Port
	free.Close()
	if owned, _ := procnet.Owned(os.Getpid(), closed); owned {
		t.Fatalf("Owned(this process, %d) after closing it = true", closed)
	}
}
