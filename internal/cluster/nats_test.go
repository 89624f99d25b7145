package cluster

import (
	"cmp"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"

	"parley/internal/cluster/natstest"
)

// The tests' NATS servers listen on this loopback address;
// PARLEY_TEST_NATS_ADDR moves them (test runs that share a machine).
var natsTestAddr = cmp.Or(os.Getenv("PARLEY_TEST_NATS_ADDR"), "127.0.0.150")

func freePort(t testing.TB) int { return natstest.FreePort(t, natsTestAddr) }

// proxy is a TCP relay between one node and the NATS server that the
// test can cut (every connection closed, the port refused) and restore:
// one node loses NATS while the others keep it.
type proxy struct {
	t      testing.TB
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  []net.Conn
}

func newProxy(t testing.TB, target string) *proxy {
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
func natsEngines(t testing.TB, n int) []Engine {
	srv := natstest.Start(t, natsTestAddr)
	out := make([]Engine, n)
	for i := range out {
		p := newProxy(t, srv.Addr)
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

// NATS servers before 2.9.21 let concurrent revision-checked writes to a
// replicated bucket all succeed; DialNATS warns about them.
func TestUnsafeRevisionChecks(t *testing.T) {
	for _, c := range []struct {
		version  string
		replicas int
		want     bool
	}{
		{"2.9.10", 3, true},
		{"2.9.20", 3, true},
		{"2.8.4", 3, true},
		{"2.9.10", 1, false}, // one replica: one server checks and writes
		{"2.9.21", 3, false},
		{"2.9.21-RC.1", 3, false},
		{"2.10.0", 3, false},
		{"v2.11.8", 3, false},
		{"3.0.0", 3, false},
		{"", 3, false},
		{"weird", 3, false},
	} {
		if got := unsafeRevisionChecks(c.version, c.replicas); got != c.want {
			t.Errorf("unsafeRevisionChecks(%q, %d) = %v, want %v", c.version, c.replicas, got, c.want)
		}
	}
}
