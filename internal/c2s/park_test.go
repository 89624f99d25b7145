package c2s_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"parley/internal/testserver"
)

// readerGoroutines counts the goroutines whose stack shows fn (a function
// of the c2s package), such as an active read loop or a parked session's
// wait.
func readerGoroutines(fn string) int {
	buf := make([]byte, 8<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "parley/internal/c2s.(*conn)."+fn+"(")
}

// parkedWaits counts the goroutines that wait for a parked session's
// socket.
func parkedWaits() int {
	buf := make([]byte, 8<<20)
	return strings.Count(string(buf[:runtime.Stack(buf, true)]), "parley/internal/c2s.(*tcpTransport).awaitReadable")
}

// limits.park_idle_after: idle sessions give up their reader goroutine and
// wait in the idle set (or a small goroutine where there is none); they
// keep working in every way a session is used
// (messages to them, stanzas from them, a stanza split across the park
// interval, whitespace keepalives), over STARTTLS and direct TLS, and end
// cleanly, releasing everything, when the client leaves or the server
// shuts down.
func TestParkedReaders(t *testing.T) {
	ts := testserver.Start(t, "[limits]\npark_idle_after = \"150ms\"\nrate_bytes_per_second = 100000000\nrate_burst_bytes = 1000000\n")
	ts.AddUser(t, "alice", "password1")
	ts.AddUser(t, "bob", "password1")
	parked := ts.Metrics().ParkedReaders
	conns := ts.Metrics().Connections.WithLabelValues("c2s")

	alice := ts.Login(t, "alice", "password1", "r")
	bob := testserver.DialTLS(t, ts.DirectTLSAddr(), "localhost")
	bob.Open("localhost")
	bob.AuthPlain("localhost", "bob", "password1")
	bob.Bind("r")
	waitFor(t, "both readers parked", func() bool { return gaugeValue(parked) == 2 })
	// The gauge counts a reader as parked a moment before its goroutine
	// has returned: wait for the goroutines to be gone, not just counted.
	waitFor(t, "no read loop running with both sessions parked", func() bool { return readerGoroutines("readStanzas") == 0 })
	// On Linux a parked session holds no goroutine at all (the idle set,
	// internal/idlewait); elsewhere one small one waits for it.
	want := 0
	if runtime.GOOS != "linux" {
		want = 2
	}
	waitFor(t, fmt.Sprintf("%d goroutines waiting for parked sessions", want), func() bool { return parkedWaits() == want })

	// A stanza from a parked session wakes it; one to a parked session
	// needs no wake-up.
	alice.Send("<message to='bob@localhost/r' type='chat' id='m1'><body>one</body></message>")
	if b := bob.ExpectStanza("message", "id=m1"); b.ChildText("", "body") != "one" {
		t.Fatalf("got %s", b)
	}
	bob.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	bob.ExpectStanza("iq", "id=p1")

	// A stanza cut in two across several park intervals is neither cut
	// nor lost: the reader parks only between stanzas.
	waitFor(t, "both readers parked again", func() bool { return gaugeValue(parked) == 2 })
	alice.Send("<message to='bob@localhost/r' type='chat' id='m2'><body>hel")
	time.Sleep(500 * time.Millisecond)
	alice.Send("lo</body></message>")
	if b := bob.ExpectStanza("message", "id=m2"); b.ChildText("", "body") != "hello" {
		t.Fatalf("got %s", b)
	}

	// Whitespace keepalives wake a parked reader, which parks again.
	waitFor(t, "both readers parked again", func() bool { return gaugeValue(parked) == 2 })
	alice.Send(" ")
	time.Sleep(400 * time.Millisecond)
	alice.Send("<iq type='get' id='p2'><ping xmlns='urn:xmpp:ping'/></iq>")
	alice.ExpectStanza("iq", "id=p2")

	// A parked session that leaves is cleaned up like any other.
	waitFor(t, "both readers parked again", func() bool { return gaugeValue(parked) == 2 })
	bob.Close()
	bob.ExpectClosed()
	waitFor(t, "bob's connection released", func() bool { return gaugeValue(conns) == 1 && gaugeValue(parked) == 1 })

	// A parked session replaced by a login to its resource (its socket
	// closed by another goroutine, which the kernel does not report) ends
	// and is cleaned up; so does one kicked while parked.
	waitFor(t, "alice parked", func() bool { return gaugeValue(parked) == 1 })
	alice2 := ts.Login(t, "alice", "password1", "r")
	alice.ExpectStreamError("conflict")
	waitFor(t, "the replaced session released", func() bool { return gaugeValue(conns) == 1 })
	waitFor(t, "the new session parked", func() bool { return gaugeValue(parked) == 1 })
	alice = alice2

	// Shutdown reaches a parked session and waits for it.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan struct{})
	go func() { ts.Shutdown(ctx); close(done) }()
	alice.ExpectStreamError("system-shutdown")
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("shutdown did not finish with a parked session")
	}
	if gaugeValue(conns) != 0 || gaugeValue(parked) != 0 {
		t.Fatalf("after shutdown: %v connections, %v parked", gaugeValue(conns), gaugeValue(parked))
	}
}

// limits.idle_timeout still closes a silent session whose reader parked,
// at the idle timeout counted from its last stanza, not extended by the
// park.
func TestParkedReaderIdleTimeout(t *testing.T) {
	ts := testserver.Start(t, "[limits]\npark_idle_after = \"150ms\"\nidle_timeout = \"1s\"\n")
	ts.AddUser(t, "alice", "password1")
	c := ts.Login(t, "alice", "password1", "r")
	start := time.Now()
	waitFor(t, "the reader parked", func() bool { return gaugeValue(ts.Metrics().ParkedReaders) == 1 })
	c.ExpectStreamError("connection-timeout")
	if el := time.Since(start); el > 2500*time.Millisecond {
		t.Fatalf("idle timeout of 1s came after %v", el)
	}
}

// A negative limits.park_idle_after keeps every reader in its read loop.
func TestParkingOff(t *testing.T) {
	ts := testserver.Start(t, "[limits]\npark_idle_after = \"-1s\"\n")
	ts.AddUser(t, "alice", "password1")
	c := ts.Login(t, "alice", "password1", "r")
	time.Sleep(300 * time.Millisecond)
	if v := gaugeValue(ts.Metrics().ParkedReaders); v != 0 {
		t.Fatalf("%v readers parked with parking off", v)
	}
	c.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	c.ExpectStanza("iq", "id=p1")
}
