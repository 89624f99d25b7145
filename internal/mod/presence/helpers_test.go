package presence_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"parley/internal/storage"
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

// online logs in, requests the roster (so the resource gets pushes) and
// sends initial presence, waiting for its reflection.
func online(t *testing.T, ts *testserver.TS, user, resource string) *testserver.Client {
	t.Helper()
	c := ts.Login(t, user, password, resource)
	if res := c.IQ("get", "", "<query xmlns='jabber:iq:roster'/>"); res.Attr("type") != "result" {
		t.Fatalf("roster get: %s", res)
	}
	c.Send("<presence/>")
	c.ExpectStanza("presence", "from="+c.JID)
	return c
}

// expectPush waits for a roster push about contact, acknowledges it and
// returns its item.
func expectPush(t *testing.T, c *testserver.Client, contact string) *xml.Element {
	t.Helper()
	el := c.Expect(func(el *xml.Element) bool {
		if el.Local != "iq" || el.Attr("type") != "set" {
			return false
		}
		q := el.Child(nsRoster, "query")
		return q != nil && q.Child(nsRoster, "item") != nil && q.Child(nsRoster, "item").Attr("jid") == contact
	})
	c.Send("<iq type='result' id='%s'/>", el.Attr("id"))
	return el.Child(nsRoster, "query").Child(nsRoster, "item")
}

// expectItem waits for a push about contact and checks its subscription
// and ask attributes.
func expectItem(t *testing.T, c *testserver.Client, contact, sub, ask string) *xml.Element {
	t.Helper()
	it := expectPush(t, c, contact)
	if it.Attr("subscription") != sub || it.Attr("ask") != ask {
		t.Fatalf("%s: push %s, want subscription=%q ask=%q", c.JID, it, sub, ask)
	}
	return it
}

// setItem stores a roster item directly.
func setItem(t *testing.T, ts *testserver.TS, owner, contact, sub string) {
	t.Helper()
	_, err := ts.Store().Roster().Put(context.Background(), owner+"@localhost",
		storage.RosterItem{JID: contact + "@localhost", Subscription: sub})
	if err != nil {
		t.Fatal(err)
	}
}

// mutual gives a and b subscriptions to each other.
func mutual(t *testing.T, ts *testserver.TS, a, b string) {
	t.Helper()
	setItem(t, ts, a, b, storage.SubBoth)
	setItem(t, ts, b, a, storage.SubBoth)
}

// item returns the stored roster item of owner for contact.
func item(t *testing.T, ts *testserver.TS, owner, contact string) storage.RosterItem {
	t.Helper()
	it, err := ts.Store().Roster().Get(context.Background(), owner+"@localhost", contact+"@localhost")
	if err != nil {
		t.Fatalf("roster item %s of %s: %v", contact, owner, err)
	}
	return it
}

// hasItem reports whether owner has a roster item for contact.
func hasItem(ts *testserver.TS, owner, contact string) bool {
	_, err := ts.Store().Roster().Get(context.Background(), owner+"@localhost", contact+"@localhost")
	return err == nil
}

// noneBefore sends a marker message from one client to another and fails
// if, before the marker arrives, the receiver got a stanza matching bad.
// Stanzas travel in order, so this checks that something did NOT happen.
func noneBefore(t *testing.T, from, to *testserver.Client, what string, bad func(*xml.Element) bool) {
	t.Helper()
	body := "marker-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	from.Send("<message type='chat' to='%s'><body>%s</body></message>", to.JID, body)
	var found *xml.Element
	to.Expect(func(el *xml.Element) bool {
		if found == nil && bad(el) {
			found = el
		}
		return el.Local == "message" && el.ChildText("", "body") == body
	})
	if found != nil {
		t.Fatalf("%s: unexpected %s: %s", to.JID, what, found)
	}
}
