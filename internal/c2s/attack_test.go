package c2s_test

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
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
	// The third (direct TLS, handshake not started) also counts. The
	// direct TLS listener is tried first: it accepts in order, so once it
	// has refused this one it has counted the third, which the STARTTLS
	// listener, accepting on its own, could otherwise overtake.
	for _, addr := range []string{ts.DirectTLSAddr(), ts.StartTLSAddr()} {
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

// Negotiation state-machine abuse after TLS: each case is a fresh stream
// that does something out of order; the stream must end with the given
// condition and nothing may be authenticated or bound.
func TestNegotiationStateAbuse(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	plain := base64.StdEncoding.EncodeToString([]byte("\x00alice\x00password1"))
	cases := []struct {
		name  string
		authd bool // authenticate (and restart) first
		send  string
		cond  string
	}{
		{"bind before auth", false, "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>", "not-authorized"},
		{"session before auth", false, "<iq type='set' id='s'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>", "not-authorized"},
		{"roster get before auth", false, "<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>", "not-authorized"},
		{"presence before auth", false, "<presence/>", "not-authorized"},
		{"SASL response without auth", false, "<response xmlns='" + nsSASL + "'>AAAA</response>", "unsupported-stanza-type"},
		{"client sends success", false, "<success xmlns='" + nsSASL + "'/>", "unsupported-stanza-type"},
		{"STARTTLS twice", false, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", "policy-violation"},
		{"SCRAM interrupted by a new auth", false, "<auth xmlns='" + nsSASL + "' mechanism='SCRAM-SHA-1'>" +
			base64.StdEncoding.EncodeToString([]byte("n,,n=alice,r=abcdefghijkl")) + "</auth>" +
			"<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + plain + "</auth>", "policy-violation"},
		{"auth twice", true, "<auth xmlns='" + nsSASL + "' mechanism='PLAIN'>" + plain + "</auth>", "policy-violation"},
		{"STARTTLS after auth", true, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>", "policy-violation"},
		{"legacy iq:auth after SASL", true, "<iq type='set' id='l'><query xmlns='jabber:iq:auth'><username>alice</username><password>password1</password><resource>x</resource></query></iq>", "not-authorized"},
		{"message before bind", true, "<message to='alice@localhost'><body>x</body></message>", "not-authorized"},
		{"server-namespace stanza", true, "<message xmlns='jabber:server' from='bob@localhost' to='alice@localhost'/>", "unsupported-stanza-type"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testserver.Dial(t, ts.StartTLSAddr())
			c.Open("localhost")
			c.StartTLS("localhost")
			if tc.authd {
				c.AuthPlain("localhost", "alice", "password1")
			}
			c.Send("%s", tc.send)
			c.ExpectStreamError(tc.cond)
			c.ExpectClosed()
		})
	}
	if n := len(ts.Server.Router().Sessions(jid.MustParse("alice@localhost"))); n != 0 {
		t.Fatalf("%d sessions bound after the abuse", n)
	}
}

// Stanza smuggling and impersonation by a bound client: stanzas in another
// namespace, 'from' values the session may not use, and an <iq/> nested in
// a message. Nothing the client sends may reach another user with a 'from'
// other than the client's full JID.
func TestBoundClientCannotImpersonate(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	ts.AddUser(t, "bob", "password1")
	bob := ts.Online(t, "bob", "password1", "b")

	streamErrCases := []struct{ name, send, cond string }{
		{"jabber:server message", "<message xmlns='jabber:server' from='carol@localhost' to='bob@localhost/b'><body>x</body></message>", "unsupported-stanza-type"},
		{"stream-namespace message", "<stream:message to='bob@localhost/b'><body>x</body></stream:message>", "unsupported-stanza-type"},
		{"from another user", "<message from='carol@localhost/x' to='bob@localhost/b'><body>x</body></message>", "invalid-from"},
		{"from the domain", "<message from='localhost' to='bob@localhost/b'><body>x</body></message>", "invalid-from"},
		{"from another resource of the same account", "<message from='alice@localhost/other' to='bob@localhost/b'><body>x</body></message>", "invalid-from"},
		{"from a component", "<message from='conference.localhost' to='bob@localhost/b'><body>x</body></message>", "invalid-from"},
		{"invalid UTF-8 in a JID", "<message to='bob@localhost/b\xff'><body>x</body></message>", "not-well-formed"},
	}
	for _, tc := range streamErrCases {
		t.Run(tc.name, func(t *testing.T) {
			c := ts.Login(t, "alice", "password1", "a")
			c.Send("%s", tc.send)
			c.ExpectStreamError(tc.cond)
			c.ExpectClosed()
		})
	}

	alice := ts.Login(t, "alice", "password1", "a")
	// A nested iq is payload, never a stanza of its own; it arrives inside
	// a message stamped with alice's JID.
	alice.Send("<message to='bob@localhost/b' id='n1'><body>hi</body><iq type='set' from='bob@localhost/b' id='evil'><query xmlns='jabber:iq:roster'/></iq></message>")
	m := bob.ExpectStanza("message", "id=n1")
	if m.Attr("from") != alice.JID {
		t.Fatalf("message from %q, want %q", m.Attr("from"), alice.JID)
	}
	// A very long JID is refused with jid-malformed, not routed.
	alice.Send("<message to='%s@localhost' id='long'><body>x</body></message>", strings.Repeat("a", 2000))
	if el := alice.ExpectStanza("message", "id=long"); testserver.ErrorCondition(el) != "jid-malformed" {
		t.Fatalf("long JID: %s", el)
	}
	// Errors are never answered with errors (no ping-pong): an error
	// message to a nonexistent user and an error iq to the server vanish.
	alice.Send("<message type='error' to='nobody@localhost' id='e1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	alice.Send("<iq type='error' to='localhost' id='e2'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>")
	alice.Send("<iq type='result' to='bob@localhost' id='e3'/>")
	alice.Send("<iq type='get' id='marker'><ping xmlns='urn:xmpp:ping'/></iq>")
	el := alice.Expect(func(el *xml.Element) bool { return el.Attr("id") != "" })
	if el.Attr("id") != "marker" {
		t.Fatalf("got %s before the marker: an error was answered", el)
	}
	// A second bind on a bound stream does not create a session.
	r := alice.IQ("set", "", "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>second</resource></bind>")
	if r.Attr("type") != "error" {
		t.Fatalf("second bind: %s", r)
	}
	if s := ts.Server.Router().Session(jid.MustParse("alice@localhost/second")); s != nil {
		t.Fatal("a second bind created a session")
	}
}

// The pre-authentication time covers the whole negotiation: a client that
// waits half of it and then starts TLS (STARTTLS or, on the direct port, a
// slow handshake) must not get a fresh allowance. The other half is ample
// for the TLS handshake on a loaded machine.
func TestPreAuthTimeoutNotExtendedByTLS(t *testing.T) {
	ts := testserver.Start(t, "[limits]\npreauth_timeout = \"4s\"\n")
	t.Run("STARTTLS", func(t *testing.T) {
		start := time.Now()
		c := testserver.Dial(t, ts.StartTLSAddr())
		c.Open("localhost")
		time.Sleep(2 * time.Second)
		c.StartTLS("localhost")
		expectServerCloses(t, c.Conn, 5*time.Second)
		if d := time.Since(start); d > 5500*time.Millisecond {
			t.Fatalf("stream lived %s with a 4s pre-authentication limit (a fresh allowance would make 6s)", d)
		}
	})
	t.Run("direct TLS", func(t *testing.T) {
		start := time.Now()
		nc, err := net.Dial("tcp", ts.DirectTLSAddr())
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		tc := tls.Client(nc, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		expectServerCloses(t, tc, 5*time.Second)
		if d := time.Since(start); d > 5500*time.Millisecond {
			t.Fatalf("stream lived %s with a 4s pre-authentication limit (a fresh allowance would make 6s)", d)
		}
	})
}
