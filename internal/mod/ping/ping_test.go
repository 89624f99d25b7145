package ping_test

import (
	"parley/internal/testserver"
	"testing"
)

// TestPing covers XEP-0199 §4.2 (client-to-server ping) and the errors the
// core gives for what the module does not serve.
func TestPing(t *testing.T) {
	ts := start(t, "", "alice")
	c := ts.Login(t, "alice", password, "r")
	for _, tc := range []struct {
		name, typ, to, want string
	}{
		{"get to host", "get", "localhost", ""},
		{"set to host", "set", "localhost", "service-unavailable"},
		{"get to own bare JID", "get", "", "service-unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.IQ(tc.typ, tc.to, "<ping xmlns='urn:xmpp:ping'/>")
			if got := testserver.ErrorCondition(r); got != tc.want {
				t.Fatalf("reply %s: condition %q, want %q", r, got, tc.want)
			}
			if tc.want == "" && (r.FirstElement() != nil || r.Attr("from") != "localhost") {
				t.Fatalf("result %s: want empty result from localhost", r)
			}
		})
	}
}
