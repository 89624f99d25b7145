package mam_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// logged returns the compliance log of host as "type from>to: body" lines.
func logged(t *testing.T, ts *testserver.TS, host, user string) []string {
	t.Helper()
	flush(t, ts)
	var out []string
	err := ts.Store().Compliance().Export(context.Background(), storage.ComplianceFilter{Host: host, User: user},
		func(r storage.ComplianceRecord) error {
			el, err := xml.ParseElement(r.Stanza, xml.DefaultLimits(), "jabber:client")
			if err != nil {
				return err
			}
			text := el.ChildText("", "body")
			if s := el.ChildText("", "subject"); s != "" {
				text = "subject " + s
			}
			out = append(out, r.Type+" "+r.From+">"+r.To+": "+text)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestComplianceLog: with compliance on, every one-to-one and room message
// of the host's users is logged once, whatever their preferences and
// hints, rooms that do not archive included; users cannot reach the log;
// it outlives their accounts; another host without compliance logs nothing.
func TestComplianceLog(t *testing.T) {
	ts := start(t, `
[[host]]
domain = "localhost"
[host.archive]
default = "never"
compliance = true
[[host]]
domain = "other.localhost"
`, "alice", "bob")
	ts.AddUser(t, "carol@other.localhost", password)
	a, b := online(t, ts, "alice"), online(t, ts, "bob")
	c := ts.Online(t, "carol@other.localhost", password, "r")

	a.Send("<message to='bob@localhost' type='chat' id='1'><body>one</body></message>")
	b.ExpectStanza("message", "id=1")
	b.Send("<message to='alice@localhost/r' type='chat' id='2'><body>two</body><no-store xmlns='urn:xmpp:hints'/></message>")
	a.ExpectStanza("message", "id=2")
	a.Send("<message to='bob@localhost' type='chat' id='3'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	c.Send("<message to='alice@localhost' type='chat' id='4'><body>from the other host</body></message>")
	a.ExpectStanza("message", "id=4")
	a.Send("<message to='carol@other.localhost' type='chat' id='5'><body>to the other host</body></message>")
	c.ExpectStanza("message", "id=5")
	c.Send("<message to='carol@other.localhost/gone' type='chat' id='6'><body>between other users</body></message>")

	create(t, a, "quiet", "Alice")
	configure(t, a, "quiet", field("muc#roomconfig_enablearchiving", "0"))
	join(t, b, "quiet", "Bob")
	say(t, b, "quiet", "7", "in the room")
	sync(t, a)

	want := []string{
		"chat " + a.JID + ">bob@localhost: one",
		"chat " + b.JID + ">alice@localhost/r: two",
		"chat " + c.JID + ">alice@localhost: from the other host",
		"chat " + a.JID + ">carol@other.localhost: to the other host",
		"groupchat " + b.JID + ">quiet@conference.localhost: in the room",
	}
	if got := logged(t, ts, "localhost", ""); !slices.Equal(got, want) {
		t.Fatalf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := logged(t, ts, "localhost", "bob@localhost"); len(got) != 3 {
		t.Fatalf("bob's records: %v", got)
	}
	if got := logged(t, ts, "other.localhost", ""); len(got) != 0 {
		t.Fatalf("host without compliance logged %v", got)
	}
	// Preferences said never: the users' own archives are empty, and
	// nothing of the log is reachable over XMPP.
	if n := archived(t, ts, "alice@localhost"); n != 0 {
		t.Fatalf("alice's archive holds %d", n)
	}
	if r := mustQuery(t, a, "", ""); len(r.results) != 0 {
		t.Fatalf("alice's query returned %d", len(r.results))
	}
	// Deleting bob's account deletes his archive, not the log.
	if r := b.IQ("set", "", "<query xmlns='jabber:iq:register'><remove/></query>"); testserver.ErrorCondition(r) != "" {
		t.Fatalf("remove: %s", r)
	}
	if got := logged(t, ts, "localhost", "bob@localhost"); len(got) != 3 {
		t.Fatalf("bob's records after his account went: %v", got)
	}
}

// TestComplianceOnly: compliance without archives: no MAM on accounts or
// rooms, the log still kept.
func TestComplianceOnly(t *testing.T) {
	ts := start(t, "[[host]]\ndomain = \"localhost\"\n[host.archive]\nenabled = false\ncompliance = true\n", "alice", "bob")
	a, b := online(t, ts, "alice"), online(t, ts, "bob")
	a.Send("<message to='bob@localhost' type='chat' id='1'><body>one</body></message>")
	if m := b.ExpectStanza("message", "id=1"); len(stanzaIDs(m)) != 0 {
		t.Fatalf("stanza-id without an archive: %s", m)
	}
	if r := query(t, a, "", ""); testserver.ErrorCondition(r.iq) != "service-unavailable" {
		t.Fatalf("query without archives: %s", r.iq)
	}
	create(t, a, "tea", "Alice")
	if slices.Contains(roomFeatures(t, a, "tea"), nsMAM) {
		t.Fatal("room announces MAM")
	}
	say(t, a, "tea", "2", "hi")
	if got := logged(t, ts, "localhost", ""); len(got) != 2 {
		t.Fatalf("log %v", got)
	}
}

// TestComplianceRecordsRetractions: the compliance log keeps a retracted
// message and records the retraction: an occupant's own (even without a
// fallback body) and a moderator's announcement, with the moderator's
// real JID as its sender.
func TestComplianceRecordsRetractions(t *testing.T) {
	ts := start(t, `
[[host]]
domain = "localhost"
[host.archive]
compliance = true
`, "alice", "bob")
	a, b := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, a, "mod", "Alice")
	configure(t, a, "mod", field("muc#roomconfig_enablearchiving", "1"))
	join(t, b, "mod", "Bob")
	sid := func(el *xml.Element) string {
		for _, c := range el.Elements() {
			if c.Local == "stanza-id" && c.Attr("by") == roomJID("mod") {
				return c.Attr("id")
			}
		}
		t.Fatalf("no stanza-id by the room: %s", el)
		return ""
	}
	spam := sid(say(t, b, "mod", "s1", "spam"))
	mine := sid(say(t, b, "mod", "s2", "typo"))
	b.Send("<message to='%s' type='groupchat' id='r1'><retract xmlns='urn:xmpp:message-retract:1' id='%s'/></message>", roomJID("mod"), mine)
	b.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.Attr("id") == "r1" })
	r := a.IQ("set", roomJID("mod"), "<moderate xmlns='urn:xmpp:message-moderate:1' id='"+spam+"'><retract xmlns='urn:xmpp:message-retract:1'/><reason>spam</reason></moderate>")
	if r.Attr("type") != "result" {
		t.Fatalf("moderation: %s", r)
	}
	sync(t, a)
	want := []string{
		"groupchat " + b.JID + ">mod@conference.localhost: spam",
		"groupchat " + b.JID + ">mod@conference.localhost: typo",
		"groupchat " + b.JID + ">mod@conference.localhost: ",
		"groupchat " + a.JID + ">mod@conference.localhost: ",
	}
	if got := logged(t, ts, "localhost", ""); !slices.Equal(got, want) {
		t.Fatalf("log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
