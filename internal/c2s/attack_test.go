package c2s_test

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"parley/internal/testserver"
)

// expectServerCloses waits up to within for the server to close nc (EOF or
// reset); a read that times out means the server still holds it open.
func expectServerCloses(t *testing.T, nc net.Conn, within time.Duration) {
	t.Helper()
	_ = nc.SetReadDeadline(time.Now().Add(within))
	buf := make([]byte, 4096)
	for {
		_, err := nc.Read(buf)
		if err == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("server still holds the connection open after %s", within)
		}
		if !errors.Is(err, io.EOF) {
			t.Logf("connection ended with %v", err)
		}
		return
	}
}

// Slowloris on the XEP-0368 port: a TCP connection that never completes
// (or never starts) the TLS handshake must be dropped after the
// pre-authentication timeout, like any other unauthenticated connection.
func TestDirectTLSHandshakeTimeout(t *testing.T) {
	ts := testserver.Start(t, "[limits]\npreauth_timeout = \"1s\"\n")
	cases := []struct {
		name string
		send []byte
	}{
		{"silent", nil},
		// The first bytes of a TLS record header (handshake, TLS 1.0),
		// then nothing: the server waits for the rest of the ClientHello.
		{"partial ClientHello", []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := net.Dial("tcp", ts.DirectTLSAddr())
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			if tc.send != nil {
				if _, err := nc.Write(tc.send); err != nil {
					t.Fatal(err)
				}
			}
			expectServerCloses(t, nc, 5*time.Second)
		})
	}
}

// A client offering only TLS 1.0/1.1 is refused on both the STARTTLS and the
// direct TLS port (tls.min_version defaults to 1.2).
func TestOldTLSVersionsRefused(t *testing.T) {
	ts := testserver.Start(t, "")
	for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
		cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v, ServerName: "localhost"}
		nc, err := net.Dial("tcp", ts.DirectTLSAddr())
		if err != nil {
			t.Fatal(err)
		}
		tc := tls.Client(nc, cfg)
		_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := tc.Handshake(); err == nil {
			t.Errorf("direct TLS: handshake with version %x succeeded", v)
		}
		_ = tc.Close()

		c := testserver.Dial(t, ts.StartTLSAddr())
		c.Open("localhost")
		c.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		c.ExpectStanza("proceed")
		stc := tls.Client(c.Conn, cfg)
		_ = stc.SetDeadline(time.Now().Add(5 * time.Second))
		if err := stc.Handshake(); err == nil {
			t.Errorf("STARTTLS: handshake with version %x succeeded", v)
		}
	}
}

// Connection flood from one address: beyond limits.max_connections_per_ip
// (counted over the STARTTLS and direct TLS listeners together) a new
// connection is closed at once; closing one frees a place.
func TestMaxConnectionsPerIP(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nmax_connections_per_ip = 3\n")
	var open []*testserver.Client
	for i := range 3 {
		addr := ts.StartTLSAddr()
		if i == 2 {
			addr = ts.DirectTLSAddr()
		}
		c := testserver.Dial(t, addr)
		if i < 2 {
			c.Open("localhost") // proves the connection is being served
		}
		open = append(open, c)
	}
	// The third (direct TLS, handshake not started) also counts.
	for _, addr := range []string{ts.StartTLSAddr(), ts.DirectTLSAddr()} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		expectServerCloses(t, nc, 5*time.Second)
		_ = nc.Close()
	}
	open[0].Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := net.Dial("tcp", ts.StartTLSAddr())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = nc.Write([]byte(header))
		_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 64)
		n, _ := nc.Read(buf)
		_ = nc.Close()
		if n > 0 {
			break // served: a place was freed
		}
		if time.Now().After(deadline) {
			t.Fatal("no place freed after a connection closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
