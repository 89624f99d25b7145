package c2s

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"parley/internal/xmpp/xml"
)

// The stream header tcpTransport keeps goes out exactly once, with the
// next write or before the next read, and End on another goroutine
// (Shutdown closing a stream still negotiating) may flush it concurrently
// with the connection's own writes (run with -race).
func TestKeptHeaderWrittenOnce(t *testing.T) {
	hdr := xml.StreamHeader{Space: "http://etherx.jabber.org/streams", Local: "stream", DefaultNS: "jabber:client", ID: "x", Version: "1.0"}
	tr, wire := pipeTransport()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tr.WriteHeader(hdr)
		_ = tr.WriteElement(xml.New("http://etherx.jabber.org/streams", "features"))
	}()
	tr.End(nil, nil, false)
	<-done
	// End may come first (then nothing after it reaches the closed
	// connection), but the header is never written twice.
	if out := wire(); strings.Count(out, "<stream:stream") > 1 {
		t.Fatalf("header written twice: %q", out)
	}

	// Kept, then a stream error: the header goes first, once.
	tr, wire = pipeTransport()
	_ = tr.WriteHeader(hdr)
	tr.End(nil, xml.New("http://etherx.jabber.org/streams", "error"), false)
	out := wire()
	if strings.Count(out, "<stream:stream") != 1 || !strings.HasPrefix(out, "<?xml") || !strings.Contains(out, "error") {
		t.Fatalf("header then error: %q", out)
	}
}

// pipeTransport is a tcpTransport on one end of a pipe; wire closes the
// other end and returns everything the transport wrote to it.
func pipeTransport() (tr *tcpTransport, wire func() string) {
	a, b := net.Pipe()
	var got bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&got, b); close(copied) }()
	return &tcpTransport{raw: a, nc: a, writeTimeout: time.Second}, func() string {
		_ = b.Close()
		<-copied
		return got.String()
	}
}
