package ping_test

import (
	"strings"
	"testing"

	"parley/internal/testserver"
)

// TestPing covers XEP-0199 §4.2 (client-to-server ping: to the domain, to
// the client's own bare JID, or with no 'to', which "is equivalent to
// directing the IQ-get to the server itself") and the errors the core
// gives for what the module does not serve.
func TestPing(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	c := ts.Login(t, "alice", password, "r")
	for _, tc := range []struct {
		name, typ, to, want, from string
	}{
		{"get to host", "get", "localhost", "", "localhost"},
		{"set to host", "set", "localhost", "service-unavailable", ""},
		{"get without to", "get", "", "", ""},
		{"get to own bare JID", "get", "alice@localhost", "", "alice@localhost"},
		{"set to own bare JID", "set", "alice@localhost", "service-unavailable", ""},
		{"get to another account's bare JID", "get", "bob@localhost", "service-unavailable", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.IQ(tc.typ, tc.to, "<ping xmlns='urn:xmpp:ping'/>")
			if got := testserver.ErrorCondition(r); got != tc.want {
				t.Fatalf("reply %s: condition %q, want %q", r, got, tc.want)
			}
			if tc.want == "" && (r.Attr("type") != "result" || r.FirstElement() != nil || r.Attr("from") != tc.from) {
				t.Fatalf("result %s: want an empty result from %q", r, tc.from)
			}
		})
	}
	// The account announces nothing new: the feature is the server's.
	r := c.IQ("get", "bob@localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if strings.Contains(r.String(), "urn:xmpp:ping") {
		t.Fatalf("account disco#info announces ping: %s", r)
	}
}
