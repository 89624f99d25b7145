package c2s_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"parley/internal/testserver"
)

// limits.idle_timeout: an authenticated stream that stays silent is closed
// with connection-timeout.
func TestIdleTimeout(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nidle_timeout = \"1s\"\n")
	ts.AddUser(t, "alice", "password1")
	c := ts.Login(t, "alice", "password1", "r")
	c.ExpectStreamError("connection-timeout")
}

// limits.max_depth and limits.max_attrs reach the decoder of client
// streams: over either, the stream ends with policy-violation.
func TestStanzaShapeLimitsFromConfig(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nmax_depth = 8\nmax_attrs = 16\n")
	ts.AddUser(t, "alice", "password1")
	cases := map[string]string{
		"within limits":       "<message to='bob@localhost' a='1'><body>ok</body></message>",
		"too deep":            "<message to='bob@localhost'>" + strings.Repeat("<x xmlns='urn:x'>", 9) + strings.Repeat("</x>", 9) + "</message>",
		"too many attributes": "<message to='bob@localhost'" + attrs(16) + "/>",
	}
	for name, stanza := range cases {
		t.Run(name, func(t *testing.T) {
			c := ts.Login(t, "alice", "password1", name)
			c.Send("%s", stanza)
			if name == "within limits" {
				c.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
				c.ExpectStanza("iq", "id=p1")
				return
			}
			c.ExpectStreamError("policy-violation")
		})
	}
}

// limits.auth_failure_delay: a failed login is answered no sooner than the
// configured delay (a lower bound only, so a slow machine cannot fail it).
func TestAuthFailureDelay(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nauth_failure_delay = \"400ms\"\n")
	ts.AddUser(t, "alice", "password1")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	c.StartTLS("localhost")
	start := time.Now()
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong")))
	c.ExpectStanza("failure")
	if el := time.Since(start); el < 400*time.Millisecond {
		t.Fatalf("failure answered after %v, before the 400ms delay", el)
	}
}

func attrs(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, " a%d='x'", i)
	}
	return b.String()
}

// An error in the client's stream header itself is reported on a stream the
// server opened first (RFC 6120 §4.9.1.2), so the error is well-formed XML
// the client can read.
func TestHeaderErrorOpensAStreamFirst(t *testing.T) {
	ts := testserver.Start(t, "")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.ReadHeaderOnly("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'" + attrs(70) + ">")
	c.ExpectStreamError("policy-violation")
}
