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
	a, b := net.Pipe()
	var got bytes.Buffer
	copied := make(chan struct{})
	go func() { _, _ = io.Copy(&got, b); close(copied) }()
	tr := &tcpTransport{raw: a, nc: a, writeTimeout: time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = tr.WriteHeader(hdr)
		_ = tr.WriteElement(xml.New("http://etherx.jabber.org/streams", "features"))
	}()
	tr.End(nil, nil, false)
	<-done
	_ = b.Close()
	<-copied
	// End may come first (then nothing after it reaches the closed
	// connection), but the header is never written twice.
	if n := bytes.Count(got.Bytes(), []byte("<stream:stream")); n > 1 {
		t.Fatalf("header written %d times: %q", n, got.String())
	}

	// Kept, then a stream error: the header goes first, once.
	a, b = net.Pipe()
	got.Reset()
	copied = make(chan struct{})
	go func() { _, _ = io.Copy(&got, b); close(copied) }()
	tr = &tcpTransport{raw: a, nc: a, writeTimeout: time.Second}
	_ = tr.WriteHeader(hdr)
	tr.End(nil, xml.New("http://etherx.jabber.org/streams", "error"), false)
	<-copied
	out := got.String()
	if bytes.Count(got.Bytes(), []byte("<stream:stream")) != 1 || !strings.HasPrefix(out, "<?xml") || !strings.Contains(out, "error") {
		t.Fatalf("header then error: %q", out)
	}
}
