package c2s_test

import (
	"crypto/tls"
	"encoding/base64"
	"net"
	"runtime"
	"testing"
	"time"

	"parley/internal/testserver"
)

// Abrupt disconnects at every stage of a client stream must not leave
// goroutines behind (reader, writer, TLS, SASL or hook goroutines). The
// server runs in this process, so the check compares the process's
// goroutine count with the count before the connections, with a small
// tolerance for runtime and net/http housekeeping.
func TestAbruptDisconnectsLeakNoGoroutines(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	ts.AddUser(t, "bob", "password1")
	ts.Online(t, "bob", "password1", "b") // a recipient for the traffic below

	// Warm up once so lazily started goroutines exist before the baseline.
	ts.Online(t, "alice", "password1", "warm").Conn.Close()
	time.Sleep(100 * time.Millisecond)
	testserver.WaitNoPooledDrains(t)
	base := runtime.NumGoroutine()

	stages := []func(t *testing.T){
		func(t *testing.T) { // TCP only
			nc, _ := net.Dial("tcp", ts.StartTLSAddr())
			_ = nc.Close()
		},
		func(t *testing.T) { // half a stream header
			nc, _ := net.Dial("tcp", ts.StartTLSAddr())
			_, _ = nc.Write([]byte("<?xml version='1.0'?><stream:stream xmlns='jabber:cl"))
			_ = nc.Close()
		},
		func(t *testing.T) { // after features
			c := testserver.Dial(t, ts.StartTLSAddr())
			c.Open("localhost")
			_ = c.Conn.Close()
		},
		func(t *testing.T) { // after <proceed/>, before the handshake
			c := testserver.Dial(t, ts.StartTLSAddr())
			c.Open("localhost")
			c.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
			c.ExpectStanza("proceed")
			_ = c.Conn.Close()
		},
		func(t *testing.T) { // direct TLS, half a handshake
			nc, _ := net.Dial("tcp", ts.DirectTLSAddr())
			_, _ = nc.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00})
			_ = nc.Close()
		},
		func(t *testing.T) { // mid-SCRAM
			c := testserver.Dial(t, ts.StartTLSAddr())
			c.Open("localhost")
			c.StartTLS("localhost")
			c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>%s</auth>",
				base64.StdEncoding.EncodeToString([]byte("n,,n=alice,r=abcdefghijkl")))
			c.ExpectStanza("challenge")
			_ = c.Conn.Close()
		},
		func(t *testing.T) { // authenticated, not bound
			c := testserver.Dial(t, ts.StartTLSAddr())
			c.Open("localhost")
			c.StartTLS("localhost")
			c.AuthPlain("localhost", "alice", "password1")
			_ = c.Conn.Close()
		},
		func(t *testing.T) { // bound and available, with traffic queued
			c := ts.Online(t, "alice", "password1", "x")
			c.Send("<presence to='bob@localhost/b'/><message to='bob@localhost'><body>x</body></message>")
			_ = c.Conn.Close()
		},
		func(t *testing.T) { // direct TLS, bound, closed without close_notify
			c := testserver.DialTLS(t, ts.DirectTLSAddr(), "localhost")
			c.Open("localhost")
			c.AuthPlain("localhost", "alice", "password1")
			c.Bind("y")
			_ = c.Conn.(*tls.Conn).NetConn().Close()
		},
	}
	for range 3 {
		for _, stage := range stages {
			stage(t)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= base+3 {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the disconnects:\n%s", n, base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
