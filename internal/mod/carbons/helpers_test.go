package carbons_test

import (
	"strings"
	"testing"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// password is every test account's password.
const password = "password123"

const (
	nsCarbons = "urn:xmpp:carbons:2"
	nsForward = "urn:xmpp:forward:0"
)

// start boots a server with the given extra config and accounts.
func start(t *testing.T, cfg string, users ...string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, cfg)
	ts.AddUsers(t, password, users...)
	return ts
}

// online logs user in with resource res and sends initial presence with
// priority prio, waiting for its reflection.
func online(t *testing.T, ts *testserver.TS, user, res string, prio int) *testserver.Client {
	t.Helper()
	c := ts.Login(t, user, password, res)
	c.Send("<presence><priority>%d</priority></presence>", prio)
	c.ExpectStanza("presence", "from="+c.JID)
	return c
}

// enable turns carbons on for c.
func enable(t *testing.T, c *testserver.Client) {
	t.Helper()
	if r := c.IQ("set", "", "<enable xmlns='"+nsCarbons+"'/>"); r.Attr("type") != "result" {
		t.Fatalf("enable: %s", r)
	}
}

// forwarded returns the message inside a carbon of the given kind
// ("received" or "sent"), or nil when m is not one.
func forwarded(m *xml.Element, kind string) *xml.Element {
	w := m.Child(nsCarbons, kind)
	if w == nil {
		return nil
	}
	f := w.Child(nsForward, "forwarded")
	if f == nil {
		return nil
	}
	return f.Child("", "message")
}

// describe names a message as the tests expect it: "received:<id>",
// "sent:<id>" for carbons (the forwarded message's id), "<id>" for anything
// else; the body stands in for a missing id.
func describe(m *xml.Element) string {
	label := func(el *xml.Element) string {
		if id := el.Attr("id"); id != "" {
			return id
		}
		return el.ChildText("", "body")
	}
	for _, kind := range []string{"received", "sent"} {
		if inner := forwarded(m, kind); inner != nil {
			return kind + ":" + label(inner)
		}
	}
	return label(m)
}

// expectMessages reads c's next messages (other stanzas are left pending)
// and checks they are want, in order.
func expectMessages(t *testing.T, c *testserver.Client, want ...string) []*xml.Element {
	t.Helper()
	var got []*xml.Element
	var names []string
	for range want {
		m := c.ExpectStanza("message")
		got = append(got, m)
		names = append(names, describe(m))
	}
	if strings.Join(names, ", ") != strings.Join(want, ", ") {
		t.Fatalf("%s got messages [%s], want [%s]", c.JID, strings.Join(names, ", "), strings.Join(want, ", "))
	}
	return got
}

// chat sends a chat message with body (also its id) from c to to.
func chat(c *testserver.Client, to, body string) {
	c.Send("<message to='%s' type='chat' id='%s'><body>%s</body></message>", to, body, body)
}
