package c2s

import (
	"net"
	"testing"
	"time"

	"parley/internal/idlewait"
)

// parkedPair is a tcpTransport's parking state on the server end of a
// loopback TCP connection, without a session; idle nil: the goroutine wait.
func parkedPair(t *testing.T, idle *idlewait.Set) (tr *tcpTransport, client net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client, err = net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	cw := &closeWatch{Conn: nc}
	rc, err := cw.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); cw.Close() })
	return &tcpTransport{raw: cw, nc: cw, cw: cw, rc: rc, idle: idle}, client
}

func awaitWoken(t *testing.T, woken chan struct{}, want bool, what string) {
	t.Helper()
	wait := 300 * time.Millisecond
	if want {
		wait = 5 * time.Second
	}
	select {
	case <-woken:
		if !want {
			t.Fatalf("%s: woken with nothing to read", what)
		}
	case <-time.After(wait):
		if want {
			t.Fatalf("%s: not woken", what)
		}
	}
}

// Both ways of waiting for a parked session's socket, the idle set and
// the goroutine (other systems, or no set): bytes wake it, bytes that came
// before the wait began wake it at once, and a close of the connection by
// another goroutine wakes it.
func TestAwaitReadable(t *testing.T) {
	if !parkSupported {
		t.Skip("no parking on this system")
	}
	sets := map[string]*idlewait.Set{"goroutine": nil}
	if s, err := idlewait.New(); err == nil {
		t.Cleanup(s.Close)
		sets["idle set"] = s
	}
	for name, set := range sets {
		t.Run(name, func(t *testing.T) {
			tr, client := parkedPair(t, set)
			woken := make(chan struct{}, 2)
			tr.awaitReadable(func() { woken <- struct{}{} })
			awaitWoken(t, woken, false, "idle")
			client.Write([]byte("<presence/>"))
			awaitWoken(t, woken, true, "bytes")
			buf := make([]byte, 64)
			if n, err := tr.nc.Read(buf); err != nil || n != len("<presence/>") {
				t.Fatalf("read after waking: %d, %v", n, err)
			}

			client.Write([]byte(" "))
			time.Sleep(50 * time.Millisecond)
			tr.awaitReadable(func() { woken <- struct{}{} })
			awaitWoken(t, woken, true, "bytes before the wait")
			tr.nc.Read(buf)

			tr.awaitReadable(func() { woken <- struct{}{} })
			awaitWoken(t, woken, false, "idle again")
			tr.nc.Close()
			awaitWoken(t, woken, true, "closed by the server")
			if _, err := tr.nc.Read(buf); err == nil {
				t.Fatal("read on the closed connection succeeded")
			}
			// A closed connection wakes a new wait at once.
			tr.awaitReadable(func() { woken <- struct{}{} })
			awaitWoken(t, woken, true, "parked after the close")
		})
	}
}
