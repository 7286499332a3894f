package procnet_test

import (
	"net"
	"os"
	"os/exec"
	"runtime"
	"testing"

	"github.com/sandbox-broker/broker/internal/procnet"
)

// TestServingTellsTheListenerApart: the port this process listens on answers as this
// process's, not as another process's (a child's), and a port no one listens on does not
// answer.
func TestServingTellsTheListenerApart(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Fatalf("procnet reads Linux's /proc; this is %s", runtime.GOOS)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	addr := l.Addr().String()
	if answers, ours := procnet.Serving(os.Getpid(), addr); !answers || !ours {
		t.Fatalf("Serving(this process, %s) = %v, %v; want true, true", addr, answers, ours)
	}
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	if answers, ours := procnet.Serving(child.Process.Pid, addr); !answers || ours {
		t.Fatalf("Serving(a child, %s) = %v, %v; want true, false", addr, answers, ours)
	}
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := free.Addr().String()
	free.Close()
	if answers, _ := procnet.Serving(os.Getpid(), closed); answers {
		t.Fatalf("Serving(this process, %s) after closing it: something answers", closed)
	}
}
