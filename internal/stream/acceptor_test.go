package stream

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type testGauge struct{ n atomic.Int64 }

func (g *testGauge) Inc() { g.n.Add(1) }
func (g *testGauge) Dec() { g.n.Add(-1) }

// acceptorHarness serves one loopback listener; every served connection
// blocks until its peer closes.
type acceptorHarness struct {
	t       *testing.T
	a       *Acceptor[net.Conn]
	l       net.Listener
	wg      sync.WaitGroup
	gauge   testGauge
	served  chan net.Conn
	refused chan string
}

func newAcceptorHarness(t *testing.T, perIP, max int) *acceptorHarness {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := &acceptorHarness{t: t, l: l, served: make(chan net.Conn, 8), refused: make(chan string, 8)}
	h.a = &Acceptor[net.Conn]{
		WG: &h.wg, PerIP: NewConnLimiter(perIP), Max: max, Gauge: &h.gauge,
		Refused: func(_ net.Conn, reason string) { h.refused <- reason },
		Serve: func(c net.Conn) {
			h.served <- c
			_, _ = c.Read(make([]byte, 1)) // until the peer closes
			_ = c.Close()
		},
	}
	h.a.Accept(l, func(nc net.Conn) (net.Conn, bool) { return nc, true })
	t.Cleanup(func() {
		_ = l.Close()
		for _, c := range h.a.Close() {
			_ = c.Close()
		}
		h.wg.Wait()
	})
	return h
}

func (h *acceptorHarness) dial() net.Conn {
	h.t.Helper()
	c, err := net.Dial("tcp", h.l.Addr().String())
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (h *acceptorHarness) expectServed() {
	h.t.Helper()
	select {
	case <-h.served:
	case r := <-h.refused:
		h.t.Fatalf("refused (%s), want served", r)
	case <-time.After(5 * time.Second):
		h.t.Fatal("not served")
	}
}

func (h *acceptorHarness) expectRefused(want string) {
	h.t.Helper()
	select {
	case r := <-h.refused:
		if r != want {
			h.t.Fatalf("refused %q, want %q", r, want)
		}
	case <-h.served:
		h.t.Fatalf("served, want refused %q", want)
	case <-time.After(5 * time.Second):
		h.t.Fatal("neither served nor refused")
	}
}

func TestAcceptorPerAddressAndMax(t *testing.T) {
	for _, tc := range []struct {
		name       string
		perIP, max int
		refusal    string
	}{
		{"per address", 2, 0, RefusedPerAddress},
		{"max", 0, 2, RefusedFull},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newAcceptorHarness(t, tc.perIP, tc.max)
			first := h.dial()
			h.expectServed()
			h.dial()
			h.expectServed()
			if n := len(h.a.Conns()); n != 2 {
				t.Fatalf("Conns = %d, want 2", n)
			}
			if g := h.gauge.n.Load(); g != 2 {
				t.Fatalf("gauge = %d, want 2", g)
			}
			h.dial()
			h.expectRefused(tc.refusal)
			// Closing one frees its place.
			_ = first.Close()
			deadline := time.Now().Add(5 * time.Second)
			for len(h.a.Conns()) != 1 || h.gauge.n.Load() != 1 {
				if time.Now().After(deadline) {
					t.Fatal("closed connection still registered")
				}
				time.Sleep(5 * time.Millisecond)
			}
			h.dial()
			h.expectServed()
		})
	}
}

func TestAcceptorClosingRefuses(t *testing.T) {
	h := newAcceptorHarness(t, 0, 0)
	h.dial()
	h.expectServed()
	open := h.a.Close()
	if len(open) != 1 {
		t.Fatalf("Close returned %d connections, want 1", len(open))
	}
	h.dial()
	h.expectRefused(RefusedClosing)
}

// A connection that detaches may end on its other goroutine before Serve
// has returned: the acceptor must not look it up as still registered.
func TestDetachedConnEndsBeforeServeReturns(t *testing.T) {
	var wg sync.WaitGroup
	a := &Acceptor[*int]{WG: &wg}
	ended := make(chan struct{})
	a.Serve = func(c *int) {
		end := a.Detach(c)
		go func() { end(); close(ended) }()
		<-ended
	}
	if !a.ServeConn(new(int)) {
		t.Fatal("refused")
	}
	wg.Wait()
	if n := len(a.Conns()); n != 0 {
		t.Fatalf("%d connections still registered", n)
	}
}

// ServeConn calls racing Shutdown's Wait (WebSocket clients reconnecting
// while the server stops) never add to the WaitGroup once Close was
// called: an Add after the last Done, during Wait, panics.
func TestServeConnWhileShutdownWaits(t *testing.T) {
	for round := 0; round < 300; round++ {
		var wg sync.WaitGroup
		release := make(chan struct{})
		a := &Acceptor[*int]{WG: &wg, Serve: func(*int) { <-release }}
		go a.ServeConn(new(int))
		for len(a.Conns()) == 0 {
			time.Sleep(time.Microsecond)
		}
		a.Close()
		panicked := make(chan any, 1)
		go func() {
			defer func() { panicked <- recover() }()
			wg.Wait()
		}()
		stop := make(chan struct{})
		var spin sync.WaitGroup
		for range 4 {
			spin.Add(1)
			go func() {
				defer spin.Done()
				for {
					select {
					case <-stop:
						return
					default:
						if a.ServeConn(new(int)) {
							t.Error("served after Close")
							return
						}
					}
				}
			}()
		}
		time.Sleep(100 * time.Microsecond)
		close(release)
		p := <-panicked
		close(stop)
		spin.Wait()
		if p != nil {
			t.Fatalf("round %d: %v", round, p)
		}
	}
}
