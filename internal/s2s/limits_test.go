package s2s_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"parley/internal/testserver"
)

func startFederating(t *testing.T, limits string) string {
	t.Helper()
	addr := loopback() + ":5269"
	testserver.Start(t, fmt.Sprintf("admin_socket = \"-\"\n[[host]]\ndomain = \"a.test\"\n[limits]\n%s[s2s]\nenabled = true\nlisten = [%q]\n", limits, addr))
	return addr
}

// closedWithin reports how long the server took to close c (reading until
// EOF), failing the test past max.
func closedWithin(t *testing.T, c net.Conn, max time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(max))
	buf := make([]byte, 512)
	for {
		if _, err := c.Read(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("server kept the connection open for %v", max)
			}
			return time.Since(start)
		}
	}
}

// One address cannot take every incoming slot.
func TestIncomingStreamsPerAddress(t *testing.T) {
	addr := startFederating(t, "max_connections_per_ip = 2\n")
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closedWithin(t, c, 2*time.Second)
}

// STARTTLS late in the pre-authentication window does not restart it: the
// stream is closed when the budget that started at accept runs out.
func TestPreAuthDeadlineNotExtendedBySTARTTLS(t *testing.T) {
	addr := startFederating(t, "preauth_timeout = \"4s\"\n")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, _ = io.WriteString(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback' to='a.test' from='b.test' version='1.0'>")
	time.Sleep(2 * time.Second)
	_, _ = io.WriteString(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	// Read up to <proceed/>; then handshake.
	buf := make([]byte, 4096)
	got := ""
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !strings.Contains(got, "proceed") {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no <proceed/>: %v (%q)", err, got)
		}
		got += string(buf[:n])
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "a.test"})
	if err := tc.Handshake(); err != nil {
		return // closed during the handshake: the deadline held
	}
	closedWithin(t, tc, 5*time.Second)
	if el := time.Since(start); el > 5500*time.Millisecond {
		t.Fatalf("stream lived %v with a 4s pre-auth budget (a fresh one would make 6s)", el)
	}
}
