package mam_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

func roomJID(room string) string { return room + "@" + svc }

// join enters (or creates, as an instant room) room as nick and waits for
// the subject that ends the join.
func join(t *testing.T, c *testserver.Client, room, nick string) {
	t.Helper()
	c.Send("<presence to='%s/%s'><x xmlns='%s'/></presence>", roomJID(room), nick, nsMUC)
	c.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && strings.HasPrefix(el.Attr("from"), roomJID(room)) &&
			el.Child("", "subject") != nil && el.Child("", "body") == nil
	})
}

// create makes an instant room owned by c.
func create(t *testing.T, c *testserver.Client, room, nick string) {
	t.Helper()
	join(t, c, room, nick)
	configure(t, c, room, "")
}

// configure submits the room configuration form with the given fields.
func configure(t *testing.T, c *testserver.Client, room, fields string) {
	t.Helper()
	r := c.IQ("set", roomJID(room), "<query xmlns='"+nsOwner+"'><x xmlns='"+nsData+"' type='submit'>"+fields+"</x></query>")
	if r.Attr("type") != "result" {
		t.Fatalf("configure %s: %s", room, r)
	}
}

func field(v, val string) string { return "<field var='" + v + "'><value>" + val + "</value></field>" }

// say sends a groupchat message and returns the copy c itself receives.
func say(t *testing.T, c *testserver.Client, room, id, body string) *xml.Element {
	t.Helper()
	c.Send("<message to='%s' type='groupchat' id='%s'><body>%s</body></message>", roomJID(room), id, body)
	return c.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && el.Attr("id") == id && el.Attr("type") == "groupchat"
	})
}

func roomFeatures(t *testing.T, c *testserver.Client, room string) []string {
	t.Helper()
	r := c.IQ("get", roomJID(room), "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	var out []string
	for _, f := range r.Child("http://jabber.org/protocol/disco#info", "query").Elements() {
		if f.Local == "feature" {
			out = append(out, f.Attr("var"))
		}
	}
	return out
}

// TestRoomArchive: a public room archives its discussion and subject,
// stamps each message with its stanza-id, answers queries at its JID with
// occupant JIDs (real JIDs only to those who may see them), and announces
// it in disco.
func TestRoomArchive(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	a, b := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, a, "tea", "Alice")
	join(t, b, "tea", "Bob")
	if f := roomFeatures(t, b, "tea"); !slices.Contains(f, nsMAM) || !slices.Contains(f, nsMAM+"#extended") {
		t.Fatalf("room features %v", f)
	}
	// A stanza-id naming the room from an occupant is a forgery.
	b.Send("<message to='%s' type='groupchat' id='g1'><body>hello</body><stanza-id xmlns='urn:xmpp:sid:0' by='%s' id='forged'/><origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>",
		roomJID("tea"), roomJID("tea"))
	own := b.ExpectStanza("message", "id=g1")
	got := a.ExpectStanza("message", "id=g1")
	sid := stanzaIDs(got)[roomJID("tea")]
	if len(sid) != 1 || sid[0] == "forged" || !slices.Equal(stanzaIDs(own)[roomJID("tea")], sid) {
		t.Fatalf("stanza-ids: alice got %s, bob got %s", got, own)
	}
	if got.Child(nsSID, "origin-id") == nil {
		t.Fatalf("origin-id lost: %s", got)
	}
	say(t, a, "tea", "g2", "welcome")
	a.Send("<message to='%s' type='groupchat' id='g3'><subject>Tea time</subject></message>", roomJID("tea"))
	a.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "subject") == "Tea time" })
	b.Send("<message to='%s/Alice' type='chat' id='pm'><body>private</body></message>", roomJID("tea"))
	a.ExpectStanza("message", "id=pm")

	// Bob, a participant of a semi-anonymous room, sees occupant JIDs only.
	q := mustQuery(t, b, roomJID("tea"), "")
	if len(q.results) != 3 || q.count() != "3" || !q.complete() {
		t.Fatalf("room archive: %d results, count %s (private messages stay out, §6.1.2)\n%v", len(q.results), q.count(), q.results)
	}
	if q.ids()[0] != sid[0] {
		t.Fatalf("archive id %s, stanza-id %s", q.ids()[0], sid[0])
	}
	for i, want := range []string{"Bob", "Alice", "Alice"} {
		m := q.forwarded(i)
		if m.Attr("from") != roomJID("tea")+"/"+want || m.Attr("to") != "" || m.Attr("type") != "groupchat" {
			t.Fatalf("result %d: %s", i, m)
		}
		if x := m.Child(nsUser, "x"); x != nil {
			t.Fatalf("participant sees real JIDs: %s", m)
		}
		if r := q.results[i]; r.Attr("from") != roomJID("tea") {
			t.Fatalf("result from %q", r.Attr("from"))
		}
	}
	if q.forwarded(2).ChildText("", "subject") != "Tea time" {
		t.Fatalf("subject change not archived: %s", q.forwarded(2))
	}
	if ids := stanzaIDs(q.forwarded(0)); len(ids) != 0 {
		t.Fatalf("archived copy keeps stanza-ids %v", ids)
	}
	if r := query(t, b, roomJID("tea"), form("with", "alice@localhost")); testserver.ErrorCondition(r.iq) != "forbidden" {
		t.Fatalf("participant filters by real JID: %s", r.iq)
	}
	// Alice, the owner, sees them and may filter by them.
	q = mustQuery(t, a, roomJID("tea"), form("with", "bob@localhost"))
	if len(q.results) != 1 {
		t.Fatalf("with bob: %d results", len(q.results))
	}
	it := q.forwarded(0).Child(nsUser, "x").Child(nsUser, "item")
	if it == nil || it.Attr("jid") != b.JID {
		t.Fatalf("owner's view: %s", q.forwarded(0))
	}
	// Someone who never entered may read a public room's archive.
	c := online(t, ts, "carol")
	if q := mustQuery(t, c, roomJID("tea"), rsm("<max>1</max><before/>")); len(q.results) != 1 || q.index() != "2" {
		t.Fatalf("outsider's last page: %s", q.iq)
	}
	// Metadata and the form at the room.
	if r := c.IQ("get", roomJID("tea"), "<metadata xmlns='urn:xmpp:mam:2'/>"); r.Child(nsMAM, "metadata").Child(nsMAM, "start").Attr("id") != sid[0] {
		t.Fatalf("room metadata: %s", r)
	}
	if r := c.IQ("get", roomJID("tea"), "<query xmlns='urn:xmpp:mam:2'/>"); r.Child(nsMAM, "query") == nil {
		t.Fatalf("room form: %s", r)
	}
	if r := c.IQ("get", roomJID("tea"), "<prefs xmlns='urn:xmpp:mam:2'/>"); testserver.ErrorCondition(r) != "feature-not-implemented" {
		t.Fatalf("room prefs: %s", r)
	}
	// Nothing went to the users' own archives: groupchat lives in the room's.
	if n := archived(t, ts, "bob@localhost"); n != 1 {
		t.Fatalf("bob's archive holds %d, want 1 (the private message)", n)
	}
}

// TestRoomArchiveConfig: the owner turns archiving off and on; private
// rooms are not archived unless asked; members-only archives are for
// members; a destroyed room's archive goes with it.
func TestRoomArchiveConfig(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a, b := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, a, "club", "Alice")
	r := a.IQ("get", roomJID("club"), "<query xmlns='"+nsOwner+"'/>")
	var archField *xml.Element
	for _, f := range r.Child(nsOwner, "query").Child(nsData, "x").Elements() {
		if f.Attr("var") == "muc#roomconfig_enablearchiving" {
			archField = f
		}
	}
	if archField == nil || archField.ChildText(nsData, "value") != "1" {
		t.Fatalf("config form: %s", r)
	}
	configure(t, a, "club", field("muc#roomconfig_enablearchiving", "0"))
	if slices.Contains(roomFeatures(t, a, "club"), nsMAM) {
		t.Fatal("a room that does not archive announces it")
	}
	if m := say(t, a, "club", "c1", "off the record"); len(stanzaIDs(m)) != 0 {
		t.Fatalf("unarchived message with stanza-id: %s", m)
	}
	if n := archived(t, ts, roomJID("club")); n != 0 {
		t.Fatalf("archived %d with archiving off", n)
	}
	configure(t, a, "club", field("mam", "1")) // ejabberd's name for it
	say(t, a, "club", "c2", "on the record")
	if n := archived(t, ts, roomJID("club")); n != 1 {
		t.Fatalf("archived %d with archiving on", n)
	}

	// Hidden rooms are not archived by default.
	create(t, a, "den", "Alice")
	configure(t, a, "den", field("muc#roomconfig_publicroom", "0")+field("muc#roomconfig_membersonly", "1"))
	say(t, a, "den", "d1", "quiet")
	if n := archived(t, ts, roomJID("den")); n != 0 {
		t.Fatalf("hidden room archived %d by default", n)
	}
	configure(t, a, "den", field("muc#roomconfig_enablearchiving", "1"))
	say(t, a, "den", "d2", "noted")
	if got := query(t, b, roomJID("den"), ""); testserver.ErrorCondition(got.iq) != "forbidden" {
		t.Fatalf("non-member reads a members-only archive: %s", got.iq)
	}
	if q := mustQuery(t, a, roomJID("den"), ""); len(q.results) != 1 {
		t.Fatalf("owner reads %d", len(q.results))
	}

	// Destroying the room deletes its archive.
	a.IQ("set", roomJID("club"), "<query xmlns='"+nsOwner+"'><destroy/></query>")
	if n := archived(t, ts, roomJID("club")); n != 0 {
		t.Fatalf("destroyed room's archive holds %d", n)
	}
	if _, _, err := ts.Store().Archive().Ends(context.Background(), roomJID("club")); err == nil {
		t.Fatal("destroyed room's archive still has messages")
	}
}

// TestRoomsOff: with [host.archive] rooms = false the service has no
// archiving at all, while accounts keep theirs.
func TestRoomsOff(t *testing.T) {
	ts := start(t, "[[host]]\ndomain = \"localhost\"\n[host.archive]\nrooms = false\n", "alice")
	a := online(t, ts, "alice")
	create(t, a, "tea", "Alice")
	if slices.Contains(roomFeatures(t, a, "tea"), nsMAM) {
		t.Fatal("room announces MAM")
	}
	if m := say(t, a, "tea", "x", "hi"); len(stanzaIDs(m)) != 0 {
		t.Fatalf("stanza-id without an archive: %s", m)
	}
	if r := query(t, a, roomJID("tea"), ""); testserver.ErrorCondition(r.iq) != "service-unavailable" {
		t.Fatalf("query: %s", r.iq)
	}
	if r := mustQuery(t, a, "", ""); r.count() != "0" {
		t.Fatalf("account archive: %s", r.iq)
	}
}

// TestRoomArchiveOccupantID: XEP-0421 §4 wants the occupant-id on
// messages read through the archive too. The room archives a message as it
// sends it, id included; a message archived before rooms attached ids
// gets its sender's id when read.
func TestRoomArchiveOccupantID(t *testing.T) {
	const nsOID = "urn:xmpp:occupant-id:0"
	ts := start(t, "", "alice", "bob")
	a, b := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, a, "ids", "Alice")
	join(t, b, "ids", "Bob")
	live := say(t, b, "ids", "g1", "hello").Child(nsOID, "occupant-id")
	if live == nil || live.Attr("id") == "" {
		t.Fatalf("live message without occupant-id")
	}
	// As a message archived before ids: no occupant-id in the stanza,
	// the sender's real JID beside it.
	old := storage.ArchiveEntry{
		Owner: roomJID("ids"), ID: "old-1", With: "bob@localhost", WithResource: "r", Stamp: time.Now(),
		Stanza: []byte("<message type='groupchat' from='" + roomJID("ids") + "/Bob'><body>older</body></message>"),
	}
	if _, err := ts.Store().Archive().Append(context.Background(), 0, old); err != nil {
		t.Fatal(err)
	}
	q := mustQuery(t, a, roomJID("ids"), "")
	if len(q.results) != 2 {
		t.Fatalf("%d results", len(q.results))
	}
	for i := range q.results {
		m := q.forwarded(i)
		var ids []string
		for _, c := range m.Elements() {
			if c.Space == nsOID {
				ids = append(ids, c.Attr("id"))
			}
		}
		if len(ids) != 1 || ids[0] != live.Attr("id") {
			t.Fatalf("result %d: occupant-ids %q, want [%s]: %s", i, ids, live.Attr("id"), m)
		}
	}
}
