package server_test

import (
	"crypto/tls"
	"testing"

	"parley/internal/testserver"
)

// TestInternationalisedHost: a host named with non-ASCII characters starts
// (its generated certificate names it in A-labels), and a client that
// writes the domain as A-labels, in SNI and in the stream header, as most
// do, reaches it, logs in and is bound to the address in U-labels.
func TestInternationalisedHost(t *testing.T) {
	ts := testserver.Start(t, "[[host]]\ndomain = \"Bücher.test\"\n")
	if ts.Domain() != "bücher.test" {
		t.Fatalf("host domain %q, want it prepared", ts.Domain())
	}
	ts.AddUser(t, "alice", "password1")
	const ace = "xn--bcher-kva.test"
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open(ace)
	c.StartTLS(ace)
	state := c.Conn.(*tls.Conn).ConnectionState()
	if err := state.PeerCertificates[0].VerifyHostname(ace); err != nil {
		t.Fatalf("the certificate does not name the host: %v", err)
	}
	c.AuthPlain(ace, "alice", "password1")
	if got := c.Bind("r"); got != "alice@bücher.test/r" {
		t.Fatalf("bound %q", got)
	}
}
