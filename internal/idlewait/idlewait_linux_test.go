//go:build linux

package idlewait

import (
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// pair returns both ends of a loopback TCP connection.
func pair(t *testing.T) (server, client *net.TCPConn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return s.(*net.TCPConn), c.(*net.TCPConn)
}

func rawConn(t *testing.T, c *net.TCPConn) syscall.RawConn {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func newSet(t *testing.T) *Set {
	t.Helper()
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// add registers c and returns a channel that receives once per ready call.
func add(t *testing.T, s *Set, c *net.TCPConn, deadline time.Time) (*Wait, chan struct{}) {
	t.Helper()
	fired := make(chan struct{}, 4)
	w, err := s.Add(rawConn(t, c), deadline, func() { fired <- struct{}{} })
	if err != nil {
		t.Fatal(err)
	}
	return w, fired
}

func expectFired(t *testing.T, fired chan struct{}, what string) {
	t.Helper()
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: not woken", what)
	}
	select {
	case <-fired:
		t.Fatalf("%s: woken twice", what)
	case <-time.After(50 * time.Millisecond):
	}
}

func expectQuiet(t *testing.T, fired chan struct{}, what string) {
	t.Helper()
	select {
	case <-fired:
		t.Fatalf("%s: woken with nothing to read", what)
	case <-time.After(200 * time.Millisecond):
	}
}

func expectNoWaits(t *testing.T, s *Set) {
	t.Helper()
	if n := s.Len(); n != 0 {
		t.Fatalf("%d waits left", n)
	}
}

func TestReadableWakes(t *testing.T) {
	s := newSet(t)
	srv, cli := pair(t)
	_, fired := add(t, s, srv, time.Time{})
	expectQuiet(t, fired, "idle socket")
	if _, err := cli.Write([]byte("<presence/>")); err != nil {
		t.Fatal(err)
	}
	expectFired(t, fired, "bytes arrived")
	// Nothing was read: the owner reads them now, with a plain read.
	buf := make([]byte, 64)
	if n, err := srv.Read(buf); err != nil || string(buf[:n]) != "<presence/>" {
		t.Fatalf("read after the wake: %q, %v", buf[:n], err)
	}
	// The socket can wait again; the registration of the last wait is gone.
	_, fired = add(t, s, srv, time.Time{})
	expectQuiet(t, fired, "idle again")
	if _, err := cli.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	expectFired(t, fired, "second wait")
	expectNoWaits(t, s)
}

// Bytes that arrived before the registration (after the owner's last
// read) wake it at once.
func TestBytesAlreadyThereWake(t *testing.T) {
	s := newSet(t)
	srv, cli := pair(t)
	if _, err := cli.Write([]byte("early")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	_, fired := add(t, s, srv, time.Time{})
	expectFired(t, fired, "bytes waiting at Add")
}

func TestPeerCloseWakes(t *testing.T) {
	s := newSet(t)
	srv, cli := pair(t)
	_, fired := add(t, s, srv, time.Time{})
	cli.Close()
	expectFired(t, fired, "peer closed")
}

func TestDeadlineWakes(t *testing.T) {
	s := newSet(t)
	srv, _ := pair(t)
	start := time.Now()
	_, fired := add(t, s, srv, start.Add(100*time.Millisecond))
	expectFired(t, fired, "deadline")
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("woken after %s, before the deadline", d)
	}
}

// The owner closing the socket itself wakes the wait through Wake (the
// kernel drops a closed socket silently); Wake after the wait ended, and
// events of a socket whose wait ended, do nothing.
func TestWakeOnOwnClose(t *testing.T) {
	s := newSet(t)
	srv, cli := pair(t)
	w, fired := add(t, s, srv, time.Now().Add(time.Hour))
	srv.Close()
	w.Wake()
	expectFired(t, fired, "own close")
	w.Wake()
	cli.Write([]byte("late"))
	expectQuiet(t, fired, "after the end")
	expectNoWaits(t, s)
}

func TestAddClosedSocketFails(t *testing.T) {
	s := newSet(t)
	srv, _ := pair(t)
	rc := rawConn(t, srv)
	srv.Close()
	if _, err := s.Add(rc, time.Time{}, func() { t.Error("ready called") }); err == nil {
		t.Fatal("Add of a closed socket succeeded")
	}
	expectNoWaits(t, s)
}

// Close wakes every wait still registered; later Adds fail.
func TestCloseWakesAll(t *testing.T) {
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	var all []chan struct{}
	for range 10 {
		srv, _ := pair(t)
		_, fired := add(t, s, srv, time.Time{})
		all = append(all, fired)
	}
	s.Close()
	for i, fired := range all {
		expectFired(t, fired, "close "+string(rune('0'+i)))
	}
	srv, _ := pair(t)
	if _, err := s.Add(rawConn(t, srv), time.Time{}, func() {}); err != ErrClosed {
		t.Fatalf("Add after Close: %v", err)
	}
	s.Close()
}

// Many sockets wait on one goroutine: waking a few wakes only those, and
// the waits hold no goroutine each.
func TestManyWaitsNoGoroutines(t *testing.T) {
	s := newSet(t)
	const n = 300
	type waiter struct {
		cli   *net.TCPConn
		fired chan struct{}
	}
	before := runtime.NumGoroutine()
	ws := make([]waiter, n)
	for i := range ws {
		srv, cli := pair(t)
		_, fired := add(t, s, srv, time.Time{})
		ws[i] = waiter{cli, fired}
	}
	if g := runtime.NumGoroutine() - before; g > 5 {
		t.Fatalf("%d waits hold %d goroutines", n, g)
	}
	for i := 0; i < n; i += 7 {
		ws[i].cli.Write([]byte("x"))
	}
	for i := range ws {
		if i%7 == 0 {
			expectFired(t, ws[i].fired, "written")
		}
	}
	for i := range ws {
		if i%7 != 0 && len(ws[i].fired) != 0 {
			t.Fatalf("socket %d woken with nothing written", i)
		}
	}
	if got, want := s.Len(), n-(n+6)/7; got != want {
		t.Fatalf("%d waits left, want %d", got, want)
	}
}

// stallingRC is an epoll set's RawConn whose first Control (Add's
// EPOLL_CTL_ADD) waits until released: it stands for Add's goroutine being
// descheduled between putting its wait in the map and calling epoll_ctl.
type stallingRC struct {
	syscall.RawConn
	first   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (r *stallingRC) Control(f func(uintptr)) error {
	if r.first.CompareAndSwap(false, true) {
		close(r.entered)
		<-r.release
	}
	return r.RawConn.Control(f)
}

// A Close that finishes a wait whose Add has not registered it yet: Add
// must not then report an error as well, or its caller, which falls back
// to waking itself on an error, would wake twice (two readers for one
// client session).
func TestAddRacingClose(t *testing.T) {
	ep, eprc, err := newEpoll()
	if err != nil {
		t.Fatal(err)
	}
	st := &stallingRC{RawConn: eprc, entered: make(chan struct{}), release: make(chan struct{})}
	s := start(ep, st)
	srv, _ := pair(t)
	var calls atomic.Int32
	type result struct {
		w   *Wait
		err error
	}
	res := make(chan result, 1)
	go func() {
		w, err := s.Add(rawConn(t, srv), time.Time{}, func() { calls.Add(1) })
		res <- result{w, err}
	}()
	<-st.entered // the wait is in the map; epoll_ctl not called yet
	s.Close()
	close(st.release)
	r := <-res
	time.Sleep(50 * time.Millisecond)
	if got := calls.Load(); (r.err == nil) != (got == 1) || got > 1 {
		t.Fatalf("Add returned %v, and ready was called %d times", r.err, got)
	}
}
