package c2s_test

import (
	"bytes"
	"crypto/tls"
	"io"
	"strings"
	"testing"
	"time"

	"parley/internal/testserver"
)

// Every connection shares one TLS config, so a client that kept the
// session ticket of its last connection resumes the TLS session on the
// next one (no full handshake), and the stream goes on as usual there.
func TestTLSSessionResumption(t *testing.T) {
	ts := testserver.Start(t, "")
	cache := tls.NewLRUClientSessionCache(4)
	connect := func() (resumed bool, features string) {
		t.Helper()
		c, err := tls.Dial("tcp", ts.DirectTLSAddr(), &tls.Config{
			ServerName: "localhost", InsecureSkipVerify: true, NextProtos: []string{"xmpp-client"},
			ClientSessionCache: cache,
		})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c, "<?xml version='1.0'?><stream:stream to='localhost' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>"); err != nil {
			t.Fatal(err)
		}
		// Reading the header and features also takes in the TLS 1.3
		// session ticket the server sends after the handshake.
		var got bytes.Buffer
		buf := make([]byte, 4096)
		for !strings.Contains(got.String(), "</stream:features>") {
			n, err := c.Read(buf)
			if err != nil {
				t.Fatalf("reading the features: %v (so far %q)", err, got.String())
			}
			got.Write(buf[:n])
		}
		return c.ConnectionState().DidResume, got.String()
	}
	resumed, features := connect()
	if resumed {
		t.Fatal("the first connection resumed a session")
	}
	const endPoint = "type='tls-server-end-point'"
	if !strings.Contains(features, endPoint) {
		t.Fatalf("a full handshake offers no tls-server-end-point binding (XEP-0440): %s", features)
	}
	resumed, features = connect()
	if !resumed {
		t.Fatal("the second connection did not resume the TLS session of the first")
	}
	if !strings.Contains(features, "<mechanism>PLAIN</mechanism>") {
		t.Fatalf("features after a resumed handshake: %s", features)
	}
	// The client would hash the certificate of the first handshake, which
	// a reload may have replaced since: no end-point binding on a resumed
	// session (tls-exporter binds it).
	if strings.Contains(features, endPoint) || !strings.Contains(features, "type='tls-exporter'") {
		t.Fatalf("channel bindings offered on a resumed session: %s", features)
	}
}
