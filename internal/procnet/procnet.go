// Package procnet tells whether a process listens on a TCP port, from Linux's /proc.
//
// A test picks a free port, closes it and starts a server process that binds it. In the
// moment between, another process on the machine (a parallel test binary) may bind the
// same port: the server then fails to start, but something answers on the port, and a
// readiness check that only dials it would send the tests to the other process's server.
// Serving tells the two apart.
package procnet

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Serving dials addr ("127.0.0.1:port"): answers is whether something accepts there, and
// ours whether it is process pid. Where /proc cannot tell (not Linux, or pid's descriptors
// unreadable), an answer counts as pid's: the dial is all there is to go by.
func Serving(pid int, addr string) (answers, ours bool) {
	conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false, false
	}
	conn.Close()
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	owned, known := owns(pid, port)
	return true, owned || !known
}

// owns reports whether process pid holds a listening TCP socket on port (IPv4 or IPv6);
// known is false where /proc cannot tell.
func owns(pid, port int) (owned, known bool) {
	listening, ok := listeningInodes(port)
	if !ok {
		return false, false
	}
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(fdDir)
	if err != nil {
		return false, false
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(fdDir, fd.Name()))
		if err == nil && listening[link] {
			return true, true
		}
	}
	return false, true
}

// listeningInodes are the sockets listening on port, as a descriptor's link names them
// ("socket:[inode]"); ok is false when /proc/net/tcp cannot be read.
func listeningInodes(port int) (map[string]bool, bool) {
	const listen = "0A" // TCP_LISTEN in /proc/net/tcp's st column
	out := map[string]bool{}
	wantPort := fmt.Sprintf("%04X", port)
	read := false
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		read = true
		sc := bufio.NewScanner(f)
		sc.Scan() // the header
		for sc.Scan() {
			// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || fields[3] != listen {
				continue
			}
			if _, p, found := strings.Cut(fields[1], ":"); found && p == wantPort {
				if _, err := strconv.ParseUint(fields[9], 10, 64); err == nil {
					out["socket:["+fields[9]+"]"] = true
				}
			}
		}
		f.Close()
	}
	return out, read
}
