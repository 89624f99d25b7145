package c2s_test

import (
	"slices"
	"testing"

	"parley/internal/testserver"
)

func offeredMechanisms(c *testserver.Client) []string {
	var out []string
	if m := c.Features.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms"); m != nil {
		for _, el := range m.Elements() {
			out = append(out, el.Text())
		}
	}
	return out
}

// `[host] mechanisms` restricts what a host advertises and what it accepts:
// a client naming a mechanism the policy left out gets invalid-mechanism
// even though the server implements it.
func TestHostMechanismPolicy(t *testing.T) {
	ts := testserver.Start(t, "[[host]]\ndomain = \"localhost\"\nmechanisms = [\"SCRAM-SHA-256\", \"PLAIN\"]\n")
	ts.AddUser(t, "alice", "password1")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	c.StartTLS("localhost")
	if got := offeredMechanisms(c); !slices.Equal(got, []string{"SCRAM-SHA-256", "PLAIN"}) {
		t.Fatalf("offered %q, want only SCRAM-SHA-256 and PLAIN", got)
	}
	for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256-PLUS", "GSSAPI"} {
		c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>biwsbj1hbGljZSxyPWFiYw==</auth>", mech)
		if f := c.ExpectStanza("failure"); f.Child("", "invalid-mechanism") == nil {
			t.Fatalf("%s: %s, want invalid-mechanism", mech, f)
		}
	}
	if el := scramLogin(t, c, "SCRAM-SHA-256", "alice", "password1", nil); el.Local != "success" {
		t.Fatalf("allowed mechanism: %s", el)
	}

	// Without the key, everything is offered as before.
	all := testserver.Start(t, "")
	c = testserver.Dial(t, all.StartTLSAddr())
	c.Open("localhost")
	c.StartTLS("localhost")
	if got := offeredMechanisms(c); !slices.Contains(got, "SCRAM-SHA-1") || !slices.Contains(got, "PLAIN") || !slices.Contains(got, "SCRAM-SHA-256-PLUS") {
		t.Fatalf("default policy offered %q", got)
	}
}
