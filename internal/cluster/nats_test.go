package cluster

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The tests' NATS servers listen on this loopback address.
const natsTestAddr = "127.0.0.150"

// natsServer is a nats-server process (Debian's nats-server package) with
// JetStream, started by a test.
type natsServer struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
	args []string
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", natsTestAddr+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func natsBinary(t *testing.T) string {
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

func startNATS(t *testing.T) *natsServer {
	t.Helper()
	bin := natsBinary(t)
	s := &natsServer{t: t, port: freePort(t), dir: t.TempDir()}
	s.args = []string{bin, "-a", natsTestAddr, "-p", strconv.Itoa(s.port), "-js", "-sd", s.dir}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *natsServer) url() string { return fmt.Sprintf("nats://%s:%d", natsTestAddr, s.port) }

func (s *natsServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.Dial("tcp", net.JoinHostPort(natsTestAddr, strconv.Itoa(s.port)))
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *natsServer) stop() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

// proxy is a TCP relay between one node and the NATS server that the
// test can cut (every connection closed, the port refused) and restore:
// one node loses NATS while the others keep it.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, addr: net.JoinHostPort(natsTestAddr, strconv.Itoa(freePort(t))), target: target}
	p.listen()
	t.Cleanup(func() { p.cut() })
	return p
}

func (p *proxy) listen() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { _, _ = io.Copy(c, u); c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// cutNATS is an Engine whose link to NATS the test can cut.
type cutNATS struct {
	Engine
	p *proxy
}

func (c cutNATS) SetDown(down bool) {
	if down {
		c.p.cut()
	} else {
		c.p.listen()
	}
}

// natsEngines connects n engines to one nats-server, each through its own
// proxy.
func natsEngines(t *testing.T, n int) []Engine {
	srv := startNATS(t)
	out := make([]Engine, n)
	for i := range out {
		p := newProxy(t, strings.TrimPrefix(srv.url(), "nats://"))
		e, err := DialNATS(NATSOptions{URLs: []string{"nats://" + p.addr}, Name: fmt.Sprintf("test%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.Close)
		out[i] = cutNATS{Engine: e, p: p}
	}
	return out
}

func TestNATSCluster(t *testing.T) { runSuite(t, natsEngines) }
