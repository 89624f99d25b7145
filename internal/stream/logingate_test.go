package stream

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type testSetGauge struct{ v atomic.Int64 }

func (g *testSetGauge) Set(v float64) { g.v.Store(int64(v)) }

type testCounter struct{ n atomic.Int64 }

func (c *testCounter) Inc() { c.n.Add(1) }

func tcpAddr(ip string) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000} }

// admitted reports whether ch delivers within a second; quiet reports that
// nothing arrives for a short while (a check that something did not
// happen: it can pass wrongly, never fail wrongly).
func admitted(ch <-chan *LoginSlot) (*LoginSlot, bool) {
	select {
	case s := <-ch:
		return s, true
	case <-time.After(5 * time.Second):
		return nil, false
	}
}

func quiet(ch <-chan *LoginSlot) bool {
	select {
	case <-ch:
		return false
	case <-time.After(100 * time.Millisecond):
		return true
	}
}

func TestLoginGateBoundsSlots(t *testing.T) {
	var inUse testSetGauge
	g := NewLoginGate(2, 2, 0, LoginGateMetrics{InUse: &inUse})
	done := make(chan struct{})
	for i := range 2 {
		if !g.Take(done) {
			t.Fatalf("free slot %d not taken", i+1)
		}
	}
	if inUse.v.Load() != 2 {
		t.Fatalf("in use %d, want 2", inUse.v.Load())
	}
	took := make(chan bool, 1)
	go func() { took <- g.Take(done) }()
	select {
	case <-took:
		t.Fatal("a third slot of two was taken")
	case <-time.After(100 * time.Millisecond):
	}
	g.Untake()
	if ok := <-took; !ok {
		t.Fatal("a freed slot was not taken")
	}
	// A stopping server wakes a waiting accept loop, which then holds nothing.
	go func() { took <- g.Take(done) }()
	close(done)
	if ok := <-took; ok {
		t.Fatal("Take succeeded on a full gate after done")
	}
	if inUse.v.Load() != 2 {
		t.Fatalf("in use %d after a refused take, want 2", inUse.v.Load())
	}
}

// One address holds at most its share; the others keep the rest of the
// gate, and the address's next connection gets in when one of its own
// logins ends.
func TestLoginGatePerAddressShare(t *testing.T) {
	g := NewLoginGate(3, 1, 0, LoginGateMetrics{})
	done := make(chan struct{})
	defer close(done)
	admit := func(ip string) <-chan *LoginSlot {
		ch := make(chan *LoginSlot, 1)
		go func() {
			if !g.Take(done) {
				return
			}
			s, ok := g.Admit(tcpAddr(ip), time.Now().Add(time.Minute), done)
			if ok {
				ch <- s
			}
		}()
		return ch
	}
	first, ok := admitted(admit("192.0.2.1"))
	if !ok {
		t.Fatal("first login of an address not admitted")
	}
	second := admit("192.0.2.1")
	if !quiet(second) {
		t.Fatal("an address got more than its share")
	}
	// The waiting connection gave its slot back: two others fit.
	o1, ok1 := admitted(admit("192.0.2.2"))
	o2, ok2 := admitted(admit("2001:db8::1"))
	if !ok1 || !ok2 {
		t.Fatal("other addresses were shut out by one address's waiting connection")
	}
	first.Release()
	first.Release() // idempotent: frees one slot, not two
	s, ok := admitted(second)
	if !ok {
		t.Fatal("the address's second login did not get in once its first ended")
	}
	if n := len(g.slots); n != 3 {
		t.Fatalf("%d slots taken, want 3", n)
	}
	s.Release()
	o1.Release()
	o2.Release()
	if n := len(g.slots); n != 0 {
		t.Fatalf("%d slots still taken after every release", n)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.byAddr) != 0 {
		t.Fatalf("addresses still tracked after every release: %v", g.byAddr)
	}
}

// A connection that waits for its address's share past its deadline is
// refused, holding nothing.
func TestLoginGateShareWaitDeadline(t *testing.T) {
	g := NewLoginGate(2, 1, 0, LoginGateMetrics{})
	done := make(chan struct{})
	defer close(done)
	s := admitted1(t, g, done)
	g.Take(done)
	if _, ok := g.Admit(tcpAddr("192.0.2.1"), time.Now().Add(50*time.Millisecond), done); ok {
		t.Fatal("admitted over the address's share")
	}
	if n := len(g.slots); n != 1 {
		t.Fatalf("%d slots taken after a refused admission, want 1", n)
	}
	s.Release()
}

// Many clients behind one address (a NAT) are slowed by at most hold: a
// connection that waited that long for its address's share goes on
// without a slot, holding nothing, and is counted.
func TestLoginGateShareWaitBoundedByHold(t *testing.T) {
	var expired testCounter
	g := NewLoginGate(2, 1, 50*time.Millisecond, LoginGateMetrics{Expired: &expired})
	done := make(chan struct{})
	defer close(done)
	s := admitted1(t, g, done)
	s.timer.Stop() // the holder stays: only the waiter's patience runs out
	g.Take(done)
	start := time.Now()
	s2, ok := g.Admit(tcpAddr("192.0.2.1"), time.Now().Add(time.Minute), done)
	if !ok || s2 != nil {
		t.Fatalf("after waiting hold: admitted %v with slot %v, want to go on without one", ok, s2)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("went on after %s, before hold", waited)
	}
	if n := len(g.slots); n != 1 {
		t.Fatalf("%d slots taken, want 1 (the waiter holds none)", n)
	}
	if expired.n.Load() != 1 {
		t.Fatalf("expiries %d, want 1", expired.n.Load())
	}
	s.Release()
}

// A slot held past hold without a login is given up (and counted); the
// connection's own release later frees nothing twice.
func TestLoginGateHoldExpires(t *testing.T) {
	var expired testCounter
	g := NewLoginGate(1, 1, 30*time.Millisecond, LoginGateMetrics{Expired: &expired})
	done := make(chan struct{})
	defer close(done)
	s := admitted1(t, g, done)
	took := make(chan bool, 1)
	go func() { took <- g.Take(done) }()
	select {
	case <-took:
	case <-time.After(5 * time.Second):
		t.Fatal("an idle connection's slot was never given up")
	}
	if expired.n.Load() != 1 {
		t.Fatalf("expiries %d, want 1", expired.n.Load())
	}
	s.Release()
	if n := len(g.slots); n != 1 {
		t.Fatalf("%d slots taken, want 1 (the late release must not free the new holder's)", n)
	}
}

func TestLoginGateNilAdmitsAll(t *testing.T) {
	var g *LoginGate
	if g = NewLoginGate(0, 0, 0, LoginGateMetrics{}); g != nil {
		t.Fatal("a gate of 0 slots is not nil")
	}
	if !g.Take(nil) {
		t.Fatal("nil gate refused")
	}
	s, ok := g.Admit(tcpAddr("192.0.2.1"), time.Now(), nil)
	if !ok || s != nil {
		t.Fatal("nil gate did not admit with a nil slot")
	}
	s.Release()
	g.Untake()
}

// Through an Acceptor: while the only slot is held by a connection that
// has not logged in, the next connection is not accepted (it waits in the
// backlog); when the first logs in, it is served.
func TestAcceptorWaitsAtTheGate(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	served := make(chan *LoginSlot, 4)
	a := &Acceptor[net.Conn]{
		WG: &wg, Gate: NewLoginGate(1, 1, 0, LoginGateMetrics{}), GateWait: time.Minute,
		Gated: func(_ net.Conn, s *LoginSlot) { served <- s },
		Serve: func(c net.Conn) {
			_, _ = c.Read(make([]byte, 1))
			_ = c.Close()
		},
	}
	a.Accept(l, func(nc net.Conn) (net.Conn, bool) { return nc, true })
	defer func() {
		_ = l.Close()
		for _, c := range a.Close() {
			_ = c.Close()
		}
		wg.Wait()
	}()
	dial := func() {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	dial()
	first, ok := admitted(served)
	if !ok {
		t.Fatal("first connection not served")
	}
	dial()
	if !quiet(served) {
		t.Fatal("a second connection was served while the only login slot was taken")
	}
	first.Release() // the first connection has logged in
	if _, ok := admitted(served); !ok {
		t.Fatal("the waiting connection was not served once the slot was free")
	}
}

// admitted1 takes a slot and admits 192.0.2.1 with it, failing the test
// if that does not happen at once.
func admitted1(t *testing.T, g *LoginGate, done chan struct{}) *LoginSlot {
	t.Helper()
	if !g.Take(done) {
		t.Fatal("no free slot")
	}
	s, ok := g.Admit(tcpAddr("192.0.2.1"), time.Now().Add(time.Minute), done)
	if !ok || s == nil {
		t.Fatal("not admitted")
	}
	return s
}
