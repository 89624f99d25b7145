package stream

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"parley/internal/xmpp/xml"
)

func TestNewIDIsUniqueAndLongEnough(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id := NewID()
		if len(id) < 22 || seen[id] {
			t.Fatalf("bad or repeated id %q", id)
		}
		seen[id] = true
	}
}

// TestRateLimitedConnSlowsReads checks the lower bound only: reading 3x the
// burst at rate = burst/s cannot finish in under ~2 s, however fast the
// machine is.
func TestRateLimitedConnSlowsReads(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	const burst = 4096
	rc := NewRateLimitedConn(a, burst, burst)
	go func() {
		_, _ = b.Write(bytes.Repeat([]byte("x"), 3*burst))
		_ = b.Close()
	}()
	start := time.Now()
	n, _ := io.Copy(io.Discard, rc)
	if n != 3*burst {
		t.Fatalf("read %d bytes", n)
	}
	if el := time.Since(start); el < 1800*time.Millisecond {
		t.Fatalf("read %d bytes at %d B/s in %v: not limited", n, burst, el)
	}
}

func TestRateLimitDisabled(t *testing.T) {
	a, _ := net.Pipe()
	defer a.Close()
	if NewRateLimitedConn(a, 0, 0) != a {
		t.Fatal("rate 0 must return the connection unchanged")
	}
}

func TestWriterWritesAndClosesWithFinalBytes(t *testing.T) {
	a, b := net.Pipe()
	w := NewWriter(a, 4, time.Second, "jabber:client")
	var got bytes.Buffer
	done := make(chan struct{})
	go func() { _, _ = io.Copy(&got, b); close(done) }()
	w.Send(xml.New("", "message").SetAttr("id", "1"))
	w.Close(true, []byte("</stream:stream>"))
	<-w.Done()
	<-done
	s := got.String()
	if !strings.Contains(s, "<message") || !strings.HasSuffix(s, "</stream:stream>") {
		t.Fatalf("wrote %q", s)
	}
}

func TestWriterOverflowReportsInsteadOfBlocking(t *testing.T) {
	a, b := net.Pipe() // b never reads: writes block
	defer b.Close()
	w := NewWriter(a, 2, time.Second, "jabber:client")
	overflowed := make(chan struct{}, 1)
	w.OnOverflow = func() {
		select {
		case overflowed <- struct{}{}:
		default:
		}
	}
	for i := 0; i < 10; i++ {
		w.Send(xml.New("", "message"))
	}
	select {
	case <-overflowed:
	case <-time.After(2 * time.Second):
		t.Fatal("Send blocked or never reported overflow")
	}
	w.Close(false)
	select {
	case <-w.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("writer did not finish after Close")
	}
}
