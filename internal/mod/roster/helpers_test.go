package roster_test

import (
	"testing"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// password is every test account's password.
const password = "password123"

const nsRoster = "jabber:iq:roster"

// start boots a server with the default modules and the given accounts.
func start(t *testing.T, users ...string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, "")
	ts.AddUsers(t, password, users...)
	return ts
}

// getRoster requests the roster (making the resource interested) and
// returns the <query/> of the result, nil for an empty result.
func getRoster(t *testing.T, c *testserver.Client, ver string) *xml.Element {
	t.Helper()
	q := "<query xmlns='jabber:iq:roster'/>"
	if ver != "-" {
		q = "<query xmlns='jabber:iq:roster' ver='" + ver + "'/>"
	}
	res := c.IQ("get", "", q)
	if res.Attr("type") != "result" {
		t.Fatalf("roster get: %s", res)
	}
	return res.Child(nsRoster, "query")
}

// expectPush waits for a roster push about contact and checks that it
// carries no 'from' (or the user's bare JID) and acknowledges it.
func expectPush(t *testing.T, c *testserver.Client, contact string) *xml.Element {
	t.Helper()
	iqEl := c.Expect(func(el *xml.Element) bool {
		if el.Local != "iq" || el.Attr("type") != "set" {
			return false
		}
		q := el.Child(nsRoster, "query")
		return q != nil && q.Child(nsRoster, "item") != nil && q.Child(nsRoster, "item").Attr("jid") == contact
	})
	if f := iqEl.Attr("from"); f != "" {
		t.Fatalf("push with from=%q", f)
	}
	c.Send("<iq type='result' id='%s'/>", iqEl.Attr("id"))
	return iqEl.Child(nsRoster, "query").Child(nsRoster, "item")
}

// expectPushVer waits for the roster push about contact, acknowledges it
// and returns its 'ver'.
func expectPushVer(t *testing.T, c *testserver.Client, contact string) string {
	t.Helper()
	iqEl := c.Expect(func(el *xml.Element) bool {
		q := el.Child(nsRoster, "query")
		return el.Local == "iq" && el.Attr("type") == "set" && q != nil &&
			q.Child(nsRoster, "item") != nil && q.Child(nsRoster, "item").Attr("jid") == contact
	})
	c.Send("<iq type='result' id='%s'/>", iqEl.Attr("id"))
	return iqEl.Child(nsRoster, "query").Attr("ver")
}

// items maps jid → item of a roster result.
func items(q *xml.Element) map[string]*xml.Element {
	out := map[string]*xml.Element{}
	if q == nil {
		return out
	}
	for _, it := range q.Elements() {
		out[it.Attr("jid")] = it
	}
	return out
}
