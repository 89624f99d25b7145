package vcard_test

import (
	"strconv"
	"sync/atomic"
	"testing"

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
