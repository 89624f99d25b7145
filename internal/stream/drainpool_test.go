package stream

import (
	"bytes"
	"net"
	"runtime"
	"strconv"
	"testing"
	"time"

	"parley/internal/xmpp/xml"
)

// gateConn is a connection whose every Write reports the goroutine that
// made it and then waits for the gate (nil: does not wait).
type gateConn struct {
	net.Conn // nil: only the methods below are called
	wrote    chan uint64
	gate     chan struct{}
}

func newGateConn(gate chan struct{}) *gateConn {
	return &gateConn{wrote: make(chan uint64, 16), gate: gate}
}

func (c *gateConn) Write(p []byte) (int, error) {
	c.wrote <- goroutineID()
	if c.gate != nil {
		<-c.gate
	}
	return len(p), nil
}
func (c *gateConn) SetWriteDeadline(time.Time) error { return nil }
func (c *gateConn) Close() error                     { return nil }

// goroutineID reads the calling goroutine's number from its stack header
// ("goroutine 42 [running]:").
func goroutineID() uint64 {
	buf := make([]byte, 64)
	buf = buf[:runtime.Stack(buf, false)]
	buf = bytes.TrimPrefix(buf, []byte("goroutine "))
	id, _ := strconv.ParseUint(string(buf[:bytes.IndexByte(buf, ' ')]), 10, 64)
	return id
}

func pooledWriter(p *DrainPool, c net.Conn) *Writer {
	w := NewWriter(c, 8, time.Second, "jabber:client")
	w.Drains = p
	return w
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitForWaiting waits until exactly n pooled goroutines wait for work.
func waitForWaiting(t *testing.T, n int) {
	t.Helper()
	waitUntil(t, strconv.Itoa(n)+" pooled goroutines waiting", func() bool {
		waiting, all := WaitingDrains()
		return waiting == n && all == n
	})
}

func recv(t *testing.T, c chan uint64) uint64 {
	t.Helper()
	select {
	case id := <-c:
		return id
	case <-time.After(5 * time.Second):
		t.Fatal("no write")
		return 0
	}
}

// Each test starts with no pooled goroutine left by another: they end
// after their linger, which the tests keep short.
const testLinger = 300 * time.Millisecond

// The goroutine that drained one writer drains the next writer's burst:
// the stack it grew is used again, which is the pool's point.
func TestDrainPoolReusesTheGoroutine(t *testing.T) {
	waitForWaiting(t, 0)
	p := NewDrainPool(4, 2*time.Second) // long enough to hand it the second burst
	c1, c2 := newGateConn(nil), newGateConn(nil)
	pooledWriter(p, c1).Send(xml.New("", "message"))
	first := recv(t, c1.wrote)
	waitForWaiting(t, 1)
	pooledWriter(p, c2).Send(xml.New("", "message"))
	if second := recv(t, c2.wrote); second != first {
		t.Fatalf("second burst drained by goroutine %d, want the pooled %d", second, first)
	}
	waitForWaiting(t, 1)
	waitForWaiting(t, 0) // after linger
}

// An idle pooled goroutine waits, then ends after linger, so a quiet
// server holds none.
func TestDrainPoolGoroutineEndsAfterLinger(t *testing.T) {
	waitForWaiting(t, 0)
	p := NewDrainPool(4, testLinger)
	c := newGateConn(nil)
	pooledWriter(p, c).Send(xml.New("", "message"))
	recv(t, c.wrote)
	waitForWaiting(t, 1)
	waitForWaiting(t, 0)
	if n := p.idle.Load(); n != 0 {
		t.Fatalf("idle count %d after the goroutine ended", n)
	}
}

// A drain blocked in its write holds its goroutine; another writer's
// burst is not held up behind it but gets a goroutine of its own. When
// both finish, no more than maxIdle goroutines stay.
func TestDrainPoolBlockedDrainDoesNotHoldOthers(t *testing.T) {
	waitForWaiting(t, 0)
	p := NewDrainPool(1, testLinger)
	gate := make(chan struct{})
	slow, fast := newGateConn(gate), newGateConn(nil)
	pooledWriter(p, slow).Send(xml.New("", "message"))
	blocked := recv(t, slow.wrote) // now waiting at the gate
	pooledWriter(p, fast).Send(xml.New("", "message"))
	if id := recv(t, fast.wrote); id == blocked {
		t.Fatal("the second burst ran on the blocked goroutine")
	}
	close(gate)
	waitForWaiting(t, 1) // maxIdle: the other one ended
	waitForWaiting(t, 0)
}

// Close and Release run their drain on the pooled goroutine too, which
// writes the final bytes and closes done.
func TestDrainPoolRunsClose(t *testing.T) {
	waitForWaiting(t, 0)
	p := NewDrainPool(4, testLinger)
	c := newGateConn(nil)
	w := pooledWriter(p, c)
	w.Send(xml.New("", "message"))
	pooled := recv(t, c.wrote)
	waitForWaiting(t, 1)
	w.Close(true, []byte("</stream:stream>"))
	if id := recv(t, c.wrote); id != pooled {
		t.Fatalf("Close drained by goroutine %d, want the pooled %d", id, pooled)
	}
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Close through the pool did not finish")
	}
	waitForWaiting(t, 1)
	w2 := pooledWriter(p, newGateConn(nil))
	w2.Release()
	select {
	case <-w2.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Release through the pool did not finish")
	}
	waitForWaiting(t, 0)
}
