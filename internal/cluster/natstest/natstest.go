// Package natstest starts nats-server processes (Debian's nats-server
// package) with JetStream for tests, alone or as a cluster, on loopback
// addresses the tests choose.
package natstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/internal/listenwait"
)

// Server is one nats-server process.
type Server struct {
	t    testing.TB
	Addr string // host:port of the client listener
	args []string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	// routeAddr is the cluster (route) listener's host:port, "" alone.
	routeAddr string
}

// FreePort returns a port free on host now.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Binary returns the nats-server path, skipping the test when it is not
// installed (failing it when PARLEY_REQUIRE_NATS is set, as in CI).
func Binary(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		if os.Getenv("PARLEY_REQUIRE_NATS") != "" {
			t.Fatal("nats-server not installed (apt-get install nats-server)")
		}
		t.Skip("nats-server not installed (apt-get install nats-server)")
	}
	return bin
}

// Start runs one JetStream server on host; it is killed when the test ends.
func Start(t testing.TB, host string) *Server {
	t.Helper()
	return StartCluster(t, []string{host})[0]
}

// StartCluster runs a JetStream cluster of one server per host (the hosts
// distinct loopback addresses).
func StartCluster(t testing.TB, hosts []string) []*Server {
	t.Helper()
	bin := Binary(t)
	ports := make([]int, len(hosts))
	cports := make([]int, len(hosts))
	for i, h := range hosts {
		ports[i], cports[i] = FreePort(t, h), FreePort(t, h)
	}
	var routes []string
	for i, h := range hosts {
		routes = append(routes, fmt.Sprintf("nats-route://%s:%d", h, cports[i]))
	}
	out := make([]*Server, len(hosts))
	for i, h := range hosts {
		s := &Server{t: t, Addr: net.JoinHostPort(h, strconv.Itoa(ports[i]))}
		s.args = []string{bin, "-a", h, "-p", strconv.Itoa(ports[i]), "-js", "-sd", t.TempDir(),
			"-n", fmt.Sprintf("nats%d", i+1)}
		if len(hosts) > 1 {
			s.routeAddr = net.JoinHostPort(h, strconv.Itoa(cports[i]))
			s.args = append(s.args, "--cluster_name", "parleytest",
				"--cluster", fmt.Sprintf("nats://%s:%d", h, cports[i]), "--routes", strings.Join(routes, ","))
		}
		out[i] = s
	}
	for _, s := range out {
		s.Start()
		t.Cleanup(s.Stop)
	}
	return out
}

// Pid is the running process's ID (0 when stopped): benchmarks count
// the server's CPU too.
func (s *Server) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// URL is the client URL.
func (s *Server) URL() string { return "nats://" + s.Addr }

// Start (re)starts the process and waits for its client port.
func (s *Server) Start() {
	s.t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	go func(cmd *exec.Cmd) { _ = cmd.Wait(); close(done) }(s.cmd)
	// The ports must be this nats-server's own: another test binary may
	// have been handed them too (listenwait).
	for _, addr := range []string{s.Addr, s.routeAddr} {
		if addr == "" {
			continue
		}
		if err := listenwait.Wait(s.cmd.Process.Pid, addr, done, 20*time.Second); err != nil {
			s.Stop()
			s.t.Fatalf("nats-server did not start on %s: %v", addr, err)
		}
	}
}

// Stop kills the process.
func (s *Server) Stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
		s.cmd = nil
	}
}
