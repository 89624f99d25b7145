package muc_test

import (
	"fmt"
	"strings"
	"testing"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const (
	password = "password123"
	svc      = "conference.localhost"
	nsMUC    = "http://jabber.org/protocol/muc"
	nsUser   = nsMUC + "#user"
	nsAdmin  = nsMUC + "#admin"
	nsOwner  = nsMUC + "#owner"
	nsData   = "jabber:x:data"
)

// start boots a server with the given extra config and accounts.
func start(t *testing.T, cfg string, users ...string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, cfg)
	ts.AddUsers(t, password, users...)
	return ts
}

// online logs a user in with resource "r" and initial presence.
func online(t *testing.T, ts *testserver.TS, user string) *testserver.Client {
	t.Helper()
	return ts.Online(t, user, password, "r")
}

func roomJID(room string) string { return room + "@" + svc }

// mucX returns the muc#user <x/> of a stanza, or nil.
func mucX(el *xml.Element) *xml.Element { return el.Child(nsUser, "x") }

// item returns the muc#user <item/> of a presence, or nil.
func item(el *xml.Element) *xml.Element {
	if x := mucX(el); x != nil {
		return x.Child(nsUser, "item")
	}
	return nil
}

// hasStatus reports whether el carries the muc#user status code.
func hasStatus(el *xml.Element, code int) bool {
	x := mucX(el)
	if x == nil {
		return false
	}
	for _, s := range x.Elements() {
		if s.Local == "status" && s.Attr("code") == fmt.Sprint(code) {
			return true
		}
	}
	return false
}

// sendJoin sends a MUC join (the <x/> carries extra, e.g. a password).
func sendJoin(c *testserver.Client, room, nick, extra string) {
	c.Send("<presence to='%s/%s'><x xmlns='%s'>%s</x></presence>", roomJID(room), nick, nsMUC, extra)
}

// expectSelf waits for the occupant's own presence from room/nick (110).
func expectSelf(t *testing.T, c *testserver.Client, room, nick string) *xml.Element {
	t.Helper()
	el := c.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == roomJID(room)+"/"+nick && hasStatus(el, 110)
	})
	return el
}

// expectSubject waits for the subject message that completes a join.
func expectSubject(t *testing.T, c *testserver.Client, room string) *xml.Element {
	t.Helper()
	return c.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && strings.HasPrefix(el.Attr("from"), roomJID(room)) &&
			el.Child("", "subject") != nil && el.Child("", "body") == nil
	})
}

// join enters an existing room and waits until the join is complete.
func join(t *testing.T, c *testserver.Client, room, nick string) *xml.Element {
	t.Helper()
	sendJoin(c, room, nick, "")
	self := expectSelf(t, c, room, nick)
	expectSubject(t, c, room)
	return self
}

// expectJoinError waits for a presence error to a join and returns its
// condition.
func expectJoinError(t *testing.T, c *testserver.Client, room string) string {
	t.Helper()
	el := c.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("type") == "error" && strings.HasPrefix(el.Attr("from"), roomJID(room))
	})
	return testserver.ErrorCondition(el)
}

// create makes an instant room owned by c (§10.1.2).
func create(t *testing.T, c *testserver.Client, room, nick string) {
	t.Helper()
	sendJoin(c, room, nick, "")
	self := expectSelf(t, c, room, nick)
	if !hasStatus(self, 201) {
		t.Fatalf("creation presence without 201: %s", self)
	}
	if it := item(self); it == nil || it.Attr("affiliation") != "owner" || it.Attr("role") != "moderator" {
		t.Fatalf("creator is not owner/moderator: %s", self)
	}
	expectSubject(t, c, room)
	res := c.IQ("set", roomJID(room), "<query xmlns='"+nsOwner+"'><x xmlns='"+nsData+"' type='submit'/></query>")
	if res.Attr("type") != "result" {
		t.Fatalf("instant room: %s", res)
	}
}

// configure submits a room configuration form with the given fields.
func configure(t *testing.T, c *testserver.Client, room string, fields map[string]string) *xml.Element {
	t.Helper()
	var b strings.Builder
	b.WriteString("<query xmlns='" + nsOwner + "'><x xmlns='" + nsData + "' type='submit'>")
	b.WriteString("<field var='FORM_TYPE'><value>" + nsMUC + "#roomconfig</value></field>")
	for k, v := range fields {
		b.WriteString("<field var='" + k + "'>")
		for _, one := range strings.Split(v, "\n") {
			b.WriteString("<value>" + one + "</value>")
		}
		b.WriteString("</field>")
	}
	b.WriteString("</x></query>")
	return c.IQ("set", roomJID(room), b.String())
}

// expectPresenceFrom waits for a presence from a room JID matching typ
// ("" for available).
func expectPresenceFrom(t *testing.T, c *testserver.Client, from, typ string) *xml.Element {
	t.Helper()
	return c.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == from && el.Attr("type") == typ
	})
}

// expectGroupchat waits for a groupchat message with the given body.
func expectGroupchat(t *testing.T, c *testserver.Client, body string) *xml.Element {
	t.Helper()
	return c.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && el.Attr("type") == "groupchat" && el.ChildText("", "body") == body
	})
}

// admin sends a muc#admin set with one item and returns the reply.
func admin(c *testserver.Client, room, itemAttrs string) *xml.Element {
	return c.IQ("set", roomJID(room), "<query xmlns='"+nsAdmin+"'><item "+itemAttrs+"/></query>")
}

// adminList fetches a muc#admin list.
func adminList(c *testserver.Client, room, attr string) *xml.Element {
	return c.IQ("get", roomJID(room), "<query xmlns='"+nsAdmin+"'><item "+attr+"/></query>")
}

func cond(el *xml.Element) string { return testserver.ErrorCondition(el) }

// expectItem waits for an available presence from a room JID whose
// muc#user item has attr = value.
func expectItem(t *testing.T, c *testserver.Client, from, attr, value string) *xml.Element {
	t.Helper()
	return c.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == from && el.Attr("type") == "" &&
			item(el) != nil && item(el).Attr(attr) == value
	})
}
