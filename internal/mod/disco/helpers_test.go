package disco_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"

	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// password is every test account's password.
const password = "password123"

// start boots a server with the given extra config and accounts.
func start(t *testing.T, cfg string, users ...string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, cfg)
	for _, u := range users {
		ts.AddUser(t, u, password)
	}
	return ts
}

var iqSeq atomic.Int64

// iq sends <iq type=typ to=to> with payload and returns the reply with the
// same id. An empty to omits the attribute.
func iq(t *testing.T, c *testserver.Client, typ, to, payload string) *xml.Element {
	t.Helper()
	id := "iq" + strconv.FormatInt(iqSeq.Add(1), 10)
	toAttr := ""
	if to != "" {
		toAttr = " to='" + to + "'"
	}
	c.Send("<iq type='%s' id='%s'%s>%s</iq>", typ, id, toAttr, payload)
	return c.ExpectStanza("iq", "id="+id)
}

// condition returns the error condition of a reply, or "" for a result.
func condition(el *xml.Element) string {
	if el.Attr("type") != "error" {
		return ""
	}
	c, _, _, _ := stanza.ParseError(el)
	return string(c)
}

// online logs user in and sends initial presence, which makes the
// presence module fire module.EventSessionAvailable.
func online(t *testing.T, ts *testserver.TS, user, resource string) *testserver.Client {
	t.Helper()
	return ts.Online(t, user, password, resource)
}

// subscribe gives contact a presence subscription to owner (owner's roster
// item with subscription "from"), as if owner had approved it.
func subscribe(t *testing.T, ts *testserver.TS, owner, contact string) {
	t.Helper()
	_, err := ts.Store().Roster().Put(context.Background(), owner+"@"+ts.Domain(),
		storage.RosterItem{JID: contact + "@" + ts.Domain(), Subscription: storage.SubFrom})
	if err != nil {
		t.Fatal(err)
	}
}
