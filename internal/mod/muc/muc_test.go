package muc_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"parley/internal/access"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// TestDisco: the service is in the host's items, answers as a conference
// service, and lists public rooms only.
func TestDisco(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice := online(t, ts, "alice")
	res := alice.IQ("get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#items'/>")
	found := false
	for _, it := range res.FirstElement().Elements() {
		found = found || it.Attr("jid") == svc
	}
	if !found {
		t.Fatalf("host items without %s: %s", svc, res)
	}
	info := alice.IQ("get", svc, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	id := info.FirstElement().Child("", "identity")
	if id == nil || id.Attr("category") != "conference" || id.Attr("type") != "text" {
		t.Fatalf("service identity: %s", info)
	}
	if !strings.Contains(info.String(), "var='"+nsMUC+"'") {
		t.Fatalf("service features without muc: %s", info)
	}
	create(t, alice, "open", "alice")
	create(t, alice, "hidden", "alice")
	if r := configure(t, alice, "hidden", map[string]string{"muc#roomconfig_publicroom": "0", "muc#roomconfig_membersonly": "1"}); r.Attr("type") != "result" {
		t.Fatalf("configure hidden: %s", r)
	}
	bob := online(t, ts, "bob")
	items := bob.IQ("get", svc, "<query xmlns='http://jabber.org/protocol/disco#items'/>")
	var jids []string
	for _, it := range items.FirstElement().Elements() {
		jids = append(jids, it.Attr("jid"))
	}
	if !slices.Equal(jids, []string{roomJID("open")}) {
		t.Fatalf("public rooms %v, want only open", jids)
	}
	// A hidden members-only room looks nonexistent to a stranger...
	if c := cond(bob.IQ("get", roomJID("hidden"), "<query xmlns='http://jabber.org/protocol/disco#info'/>")); c != "item-not-found" {
		t.Fatalf("stranger disco#info on hidden room: %q", c)
	}
	// ...and an open one shows its features but no occupant list.
	ri := bob.IQ("get", roomJID("open"), "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	for _, f := range []string{"muc_public", "muc_temporary", "muc_open", "muc_unmoderated", "muc_unsecured", "muc_semianonymous", nsMUC + "#roominfo"} {
		if !strings.Contains(ri.String(), f) {
			t.Fatalf("room info without %s: %s", f, ri)
		}
	}
	if n := len(bob.IQ("get", roomJID("open"), "<query xmlns='http://jabber.org/protocol/disco#items'/>").FirstElement().Elements()); n != 0 {
		t.Fatalf("a non-occupant sees %d occupants", n)
	}
	if n := len(alice.IQ("get", roomJID("open"), "<query xmlns='http://jabber.org/protocol/disco#items'/>").FirstElement().Elements()); n != 1 {
		t.Fatalf("an occupant sees %d occupants, want 1", n)
	}
}

// TestCreateJoinChatLeave: a locked room until configured; presence order
// on entry; messages reflected; a temporary room vanishes when empty.
func TestCreateJoinChatLeave(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	sendJoin(alice, "cave", "Alice", "")
	self := expectSelf(t, alice, "cave", "Alice")
	if !hasStatus(self, 201) {
		t.Fatalf("no 201: %s", self)
	}
	// Locked until configured (§7.2.11).
	sendJoin(bob, "cave", "bob", "")
	if c := expectJoinError(t, bob, "cave"); c != "item-not-found" {
		t.Fatalf("join of locked room: %q", c)
	}
	form := alice.IQ("get", roomJID("cave"), "<query xmlns='"+nsOwner+"'/>")
	if !strings.Contains(form.String(), "muc#roomconfig_roomname") {
		t.Fatalf("no configuration form: %s", form)
	}
	if r := alice.IQ("set", roomJID("cave"), "<query xmlns='"+nsOwner+"'><x xmlns='"+nsData+"' type='submit'/></query>"); r.Attr("type") != "result" {
		t.Fatalf("instant room: %s", r)
	}

	sendJoin(bob, "cave", "bob", "")
	// Existing occupants first, then bob's own presence.
	first := bob.ExpectStanza("presence")
	if first.Attr("from") != roomJID("cave")+"/Alice" || item(first).Attr("role") != "moderator" {
		t.Fatalf("first presence to newcomer: %s", first)
	}
	if item(first).Attr("jid") != "" {
		t.Fatalf("semi-anonymous room showed a real JID to a participant: %s", first)
	}
	own := expectSelf(t, bob, "cave", "bob")
	if it := item(own); it.Attr("role") != "participant" || it.Attr("affiliation") != "none" {
		t.Fatalf("bob's own presence: %s", own)
	}
	expectSubject(t, bob, "cave")
	ap := expectPresenceFrom(t, alice, roomJID("cave")+"/bob", "")
	if item(ap).Attr("jid") != bob.JID {
		t.Fatalf("moderator does not see the real JID: %s", ap)
	}

	bob.Send("<message to='%s' type='groupchat' id='m1'><body>hello</body></message>", roomJID("cave"))
	m := expectGroupchat(t, alice, "hello")
	if m.Attr("from") != roomJID("cave")+"/bob" {
		t.Fatalf("reflected from %q", m.Attr("from"))
	}
	if m2 := expectGroupchat(t, bob, "hello"); m2.Attr("id") != "m1" {
		t.Fatalf("reflection to sender lost its id: %s", m2)
	}
	// A non-occupant cannot speak.
	ts.AddUser(t, "carol", password)
	carol := online(t, ts, "carol")
	carol.Send("<message to='%s' type='groupchat'><body>x</body></message>", roomJID("cave"))
	if e := carol.ExpectStanza("message", "type=error"); cond(e) != "not-acceptable" {
		t.Fatalf("non-occupant groupchat: %s", e)
	}

	bob.Send("<presence to='%s/bob' type='unavailable'><status>bye</status></presence>", roomJID("cave"))
	left := expectPresenceFrom(t, bob, roomJID("cave")+"/bob", "unavailable")
	if !hasStatus(left, 110) || item(left).Attr("role") != "none" {
		t.Fatalf("own exit presence: %s", left)
	}
	if l := expectPresenceFrom(t, alice, roomJID("cave")+"/bob", "unavailable"); l.ChildText("", "status") != "bye" {
		t.Fatalf("exit status text lost: %s", l)
	}
	alice.Send("<presence to='%s/Alice' type='unavailable'/>", roomJID("cave"))
	expectPresenceFrom(t, alice, roomJID("cave")+"/Alice", "unavailable")
	// The temporary room is gone: entering creates a new one (201).
	sendJoin(alice, "cave", "Alice", "")
	if again := expectSelf(t, alice, "cave", "Alice"); !hasStatus(again, 201) {
		t.Fatalf("empty temporary room survived: %s", again)
	}
}

// TestGroupchat10: a join without the MUC <x/> creates an unlocked room.
func TestGroupchat10(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	alice.Send("<presence to='%s/alice'/>", roomJID("gc"))
	expectSelf(t, alice, "gc", "alice")
	join(t, bob, "gc", "bob")
}

// TestNicknames: missing nick, conflicts, length, nickname change (§7.6).
func TestNicknames(t *testing.T) {
	ts := start(t, "[[host]]\ndomain = \"localhost\"\n[host.muc]\nmax_nick_length = 8\n", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "room", "alice")
	bob.Send("<presence to='%s'><x xmlns='%s'/></presence>", roomJID("room"), nsMUC)
	if c := expectJoinError(t, bob, "room"); c != "jid-malformed" {
		t.Fatalf("no nick: %q", c)
	}
	sendJoin(bob, "room", "alice", "")
	if c := expectJoinError(t, bob, "room"); c != "conflict" {
		t.Fatalf("nick in use: %q", c)
	}
	sendJoin(bob, "room", "waytoolongnick", "")
	if c := expectJoinError(t, bob, "room"); c != "not-acceptable" {
		t.Fatalf("long nick: %q", c)
	}
	join(t, bob, "room", "bob")
	expectPresenceFrom(t, alice, roomJID("room")+"/bob", "")
	// Change to a taken nick: conflict; to a free one: 303 then the new.
	bob.Send("<presence to='%s/alice'/>", roomJID("room"))
	if c := expectJoinError(t, bob, "room"); c != "conflict" {
		t.Fatalf("nick change conflict: %q", c)
	}
	bob.Send("<presence to='%s/robert'/>", roomJID("room"))
	old := expectPresenceFrom(t, alice, roomJID("room")+"/bob", "unavailable")
	if !hasStatus(old, 303) || item(old).Attr("nick") != "robert" {
		t.Fatalf("nick change unavailable: %s", old)
	}
	expectPresenceFrom(t, alice, roomJID("room")+"/robert", "")
	mine := expectPresenceFrom(t, bob, roomJID("room")+"/bob", "unavailable")
	if !hasStatus(mine, 303) || !hasStatus(mine, 110) {
		t.Fatalf("own nick change: %s", mine)
	}
	expectSelf(t, bob, "room", "robert")
	bob.Send("<message to='%s' type='groupchat'><body>as robert</body></message>", roomJID("room"))
	if m := expectGroupchat(t, alice, "as robert"); m.Attr("from") != roomJID("room")+"/robert" {
		t.Fatalf("message after nick change from %q", m.Attr("from"))
	}
}

// TestHistory: discussion history with delays and <history/> limits.
func TestHistory(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol", "dave")
	alice := online(t, ts, "alice")
	create(t, alice, "hist", "alice")
	if r := configure(t, alice, "hist", map[string]string{"muc#roomconfig_historylength": "3"}); r.Attr("type") != "result" {
		t.Fatalf("configure: %s", r)
	}
	for _, b := range []string{"one", "two", "three", "four"} {
		alice.Send("<message to='%s' type='groupchat'><body>%s</body></message>", roomJID("hist"), b)
		expectGroupchat(t, alice, b)
	}
	collect := func(c interface {
		Expect(func(*xml.Element) bool) *xml.Element
	}) []string {
		var got []string
		for {
			el := c.Expect(func(el *xml.Element) bool { return el.Local == "message" })
			if el.Child("", "subject") != nil && el.Child("", "body") == nil {
				return got
			}
			if el.Child("urn:xmpp:delay", "delay") == nil {
				t.Fatalf("history without delay: %s", el)
			}
			got = append(got, el.ChildText("", "body"))
		}
	}
	bob := online(t, ts, "bob")
	sendJoin(bob, "hist", "bob", "")
	expectSelf(t, bob, "hist", "bob")
	if got := collect(bob); !slices.Equal(got, []string{"two", "three", "four"}) {
		t.Fatalf("history %v", got)
	}
	carol := online(t, ts, "carol")
	sendJoin(carol, "hist", "carol", "<history maxstanzas='1'/>")
	expectSelf(t, carol, "hist", "carol")
	if got := collect(carol); !slices.Equal(got, []string{"four"}) {
		t.Fatalf("maxstanzas=1: %v", got)
	}
	dave := online(t, ts, "dave")
	sendJoin(dave, "hist", "dave", "<history maxchars='0'/>")
	expectSelf(t, dave, "hist", "dave")
	if got := collect(dave); len(got) != 0 {
		t.Fatalf("maxchars=0: %v", got)
	}
	dave.Send("<presence to='%s/dave' type='unavailable'/>", roomJID("hist"))
	expectPresenceFrom(t, dave, roomJID("hist")+"/dave", "unavailable")
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	sendJoin(dave, "hist", "dave", "<history since='"+future+"'/>")
	expectSelf(t, dave, "hist", "dave")
	if got := collect(dave); len(got) != 0 {
		t.Fatalf("since the future: %v", got)
	}
}

// TestSubject: who may change it, and that newcomers get it.
func TestSubject(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "s", "alice")
	join(t, bob, "s", "bob")
	bob.Send("<message to='%s' type='groupchat'><subject>bob's</subject></message>", roomJID("s"))
	if e := bob.ExpectStanza("message", "type=error"); cond(e) != "forbidden" {
		t.Fatalf("participant subject: %s", e)
	}
	alice.Send("<message to='%s' type='groupchat' id='subj-1'><subject>Cauldrons</subject></message>", roomJID("s"))
	if m := bob.Expect(func(el *xml.Element) bool { return el.ChildText("", "subject") == "Cauldrons" }); m.Attr("from") != roomJID("s")+"/alice" || m.Attr("id") != "subj-1" {
		t.Fatalf("subject reflected as %s (want from the nick and the sender's id: muc#stable_id)", m)
	}
	carol := online(t, ts, "carol")
	sendJoin(carol, "s", "carol", "")
	expectSelf(t, carol, "s", "carol")
	if s := expectSubject(t, carol, "s"); s.ChildText("", "subject") != "Cauldrons" {
		t.Fatalf("newcomer subject: %s", s)
	}
	configure(t, alice, "s", map[string]string{"muc#roomconfig_changesubject": "1"})
	bob.Send("<message to='%s' type='groupchat'><subject>now mine</subject></message>", roomJID("s"))
	alice.Expect(func(el *xml.Element) bool { return el.ChildText("", "subject") == "now mine" })
}

// TestPrivateMessages (§7.5).
func TestPrivateMessages(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	alice, bob, carol := online(t, ts, "alice"), online(t, ts, "bob"), online(t, ts, "carol")
	create(t, alice, "pm", "alice")
	join(t, bob, "pm", "bob")
	bob.Send("<message to='%s/alice' type='chat'><body>psst</body></message>", roomJID("pm"))
	m := alice.Expect(func(el *xml.Element) bool { return el.ChildText("", "body") == "psst" })
	if m.Attr("from") != roomJID("pm")+"/bob" || mucX(m) == nil || m.Attr("type") != "chat" {
		t.Fatalf("private message: %s", m)
	}
	for _, tc := range []struct {
		name, who, to, typ, want string
	}{
		{"groupchat type", "bob", "/alice", "groupchat", "bad-request"},
		{"no such nick", "bob", "/nobody", "chat", "item-not-found"},
		{"not an occupant", "carol", "/alice", "chat", "not-acceptable"},
	} {
		c := bob
		if tc.who == "carol" {
			c = carol
		}
		c.Send("<message to='%s%s' type='%s'><body>x</body></message>", roomJID("pm"), tc.to, tc.typ)
		if e := c.ExpectStanza("message", "type=error"); cond(e) != tc.want {
			t.Fatalf("%s: %s", tc.name, e)
		}
	}
	configure(t, alice, "pm", map[string]string{"muc#roomconfig_allowpm": "moderators"})
	bob.Send("<message to='%s/alice' type='chat'><body>x</body></message>", roomJID("pm"))
	if e := bob.ExpectStanza("message", "type=error"); cond(e) != "forbidden" {
		t.Fatalf("pm not allowed: %s", e)
	}
}

// TestSelfPing: XEP-0410 answered by the service.
func TestSelfPing(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "p", "alice")
	if r := alice.IQ("get", roomJID("p")+"/alice", "<ping xmlns='urn:xmpp:ping'/>"); r.Attr("type") != "result" {
		t.Fatalf("self-ping: %s", r)
	}
	if c := cond(bob.IQ("get", roomJID("p")+"/alice", "<ping xmlns='urn:xmpp:ping'/>")); c != "not-acceptable" {
		t.Fatalf("non-occupant ping: %q", c)
	}
	if c := cond(bob.IQ("get", roomJID("nope")+"/x", "<ping xmlns='urn:xmpp:ping'/>")); c != "item-not-found" {
		t.Fatalf("ping to a missing room: %q", c)
	}
	info := alice.IQ("get", roomJID("p"), "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if !strings.Contains(info.String(), nsMUC+"#self-ping-optimization") {
		t.Fatalf("self-ping optimization not announced: %s", info)
	}
	if !strings.Contains(info.String(), nsMUC+"#stable_id") {
		t.Fatalf("stable ids not announced: %s", info)
	}
	// The registered roominfo field (XEP-0045 §15.5.4) beside the
	// widespread one.
	for _, v := range []string{"muc#roominfo_subjectmod", "muc#roominfo_changesubject"} {
		if !strings.Contains(info.String(), "var='"+v+"'") {
			t.Fatalf("roominfo lacks %s: %s", v, info)
		}
	}
}

// TestDisconnectLeaves: the presence module's unavailable on disconnect
// reaches the room, which removes the occupant.
func TestDisconnectLeaves(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "d", "alice")
	join(t, bob, "d", "bob")
	expectPresenceFrom(t, alice, roomJID("d")+"/bob", "")
	_ = bob.Conn.Close()
	gone := expectPresenceFrom(t, alice, roomJID("d")+"/bob", "unavailable")
	if item(gone).Attr("role") != "none" {
		t.Fatalf("departure: %s", gone)
	}
	// The nick is free again.
	bob2 := ts.Online(t, "bob", password, "r2")
	join(t, bob2, "d", "bob")
}

// TestRoomCreationPolicy: room_creation and max_rooms.
func TestRoomCreationPolicy(t *testing.T) {
	ts := start(t, "[[host]]\ndomain = \"localhost\"\nadmins = [\"boss@localhost\"]\n[host.muc]\nroom_creation = \"admins\"\nmax_rooms = 1\n", "alice", "boss")
	alice, boss := online(t, ts, "alice"), online(t, ts, "boss")
	sendJoin(alice, "r1", "alice", "")
	if c := expectJoinError(t, alice, "r1"); c != "not-allowed" {
		t.Fatalf("creation by non-admin: %q", c)
	}
	create(t, boss, "r1", "boss")
	sendJoin(boss, "r2", "boss", "")
	if c := expectJoinError(t, boss, "r2"); c != "resource-constraint" {
		t.Fatalf("room limit: %q", c)
	}
	join(t, alice, "r1", "alice")
}

// TestRoomsPerUser: one user cannot take every room slot; leaving a
// temporary room (which destroys it) frees the slot again; admins are exempt.
func TestRoomsPerUser(t *testing.T) {
	ts := start(t, "[[host]]\ndomain = \"localhost\"\nadmins = [\"boss@localhost\"]\n[host.muc]\nmax_rooms_per_user = 2\n", "alice", "boss")
	alice, boss := online(t, ts, "alice"), online(t, ts, "boss")
	create(t, alice, "a1", "alice")
	create(t, alice, "a2", "alice")
	sendJoin(alice, "a3", "alice", "")
	if c := expectJoinError(t, alice, "a3"); c != "resource-constraint" {
		t.Fatalf("third room: %q", c)
	}
	for _, r := range []string{"b1", "b2", "b3"} {
		create(t, boss, r, "boss")
	}
	alice.Send("<presence to='%s/alice' type='unavailable'/>", roomJID("a1"))
	alice.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("type") == "unavailable" && el.Attr("from") == roomJID("a1")+"/alice"
	})
	create(t, alice, "a3", "alice")
}

// TestDirectInvitation: XEP-0249 invitations are ordinary messages between
// users; the server routes them untouched.
func TestDirectInvitation(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	alice.Send("<message to='%s'><x xmlns='jabber:x:conference' jid='%s' reason='come'/></message>", bob.JID, roomJID("x"))
	m := bob.Expect(func(el *xml.Element) bool { return el.Child("jabber:x:conference", "x") != nil })
	if m.Child("jabber:x:conference", "x").Attr("jid") != roomJID("x") || m.Attr("from") != alice.JID {
		t.Fatalf("direct invitation: %s", m)
	}
}

// TestMediatedInvitation (§7.8.2): relayed with the inviter, the room
// password; declines go back only for real invitations.
func TestMediatedInvitation(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	alice, bob, carol := online(t, ts, "alice"), online(t, ts, "bob"), online(t, ts, "carol")
	create(t, alice, "inv", "alice")
	configure(t, alice, "inv", map[string]string{"muc#roomconfig_passwordprotectedroom": "1", "muc#roomconfig_roomsecret": "s3cret"})
	alice.Send("<message to='%s'><x xmlns='%s'><invite to='bob@localhost'><reason>join us</reason></invite></x></message>", roomJID("inv"), nsUser)
	m := bob.Expect(func(el *xml.Element) bool { return mucX(el) != nil && mucX(el).Child(nsUser, "invite") != nil })
	inv := mucX(m).Child(nsUser, "invite")
	if m.Attr("from") != roomJID("inv") || inv.Attr("from") != "alice@localhost" || inv.ChildText(nsUser, "reason") != "join us" ||
		mucX(m).ChildText(nsUser, "password") != "s3cret" {
		t.Fatalf("invitation: %s", m)
	}
	bob.Send("<message to='%s'><x xmlns='%s'><decline to='alice@localhost'><reason>busy</reason></decline></x></message>", roomJID("inv"), nsUser)
	d := alice.Expect(func(el *xml.Element) bool { return mucX(el) != nil && mucX(el).Child(nsUser, "decline") != nil })
	if mucX(d).Child(nsUser, "decline").Attr("from") != "bob@localhost" {
		t.Fatalf("decline: %s", d)
	}
	// carol was never invited: her "decline" is not relayed (the room is
	// no relay for unsolicited messages). A message after it proves order.
	carol.Send("<message to='%s'><x xmlns='%s'><decline to='alice@localhost'/></x></message>", roomJID("inv"), nsUser)
	carol.Send("<message to='%s'><body>marker</body></message>", alice.JID)
	el := alice.Expect(func(el *xml.Element) bool {
		return el.ChildText("", "body") == "marker" || (mucX(el) != nil && mucX(el).Child(nsUser, "decline") != nil)
	})
	if el.ChildText("", "body") != "marker" {
		t.Fatalf("unsolicited decline relayed: %s", el)
	}
	// Two invitations with other children of <x/> before and between
	// them: each invitee gets its own, with its own reason.
	alice.Send("<message to='%s'><x xmlns='%s'><password>s3cret</password><invite to='carol@localhost'><reason>for carol</reason></invite>"+
		"<foo xmlns='urn:example'/><invite to='bob@localhost'><reason>for bob</reason></invite></x></message>", roomJID("inv"), nsUser)
	for c, want := range map[*testserver.Client]string{carol: "for carol", bob: "for bob"} {
		m := c.Expect(func(el *xml.Element) bool { return mucX(el) != nil && mucX(el).Child(nsUser, "invite") != nil })
		if got := mucX(m).Child(nsUser, "invite").ChildText(nsUser, "reason"); got != want {
			t.Fatalf("invitation with reason %q, want %q: %s", got, want, m)
		}
	}
	// A non-occupant cannot invite.
	carol.Send("<message to='%s'><x xmlns='%s'><invite to='bob@localhost'/></x></message>", roomJID("inv"), nsUser)
	if e := carol.ExpectStanza("message", "type=error"); cond(e) != "not-acceptable" {
		t.Fatalf("invite by non-occupant: %s", e)
	}
}

// TestDestroy (§10.9).
func TestDestroy(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "doomed", "alice")
	join(t, bob, "doomed", "bob")
	if c := cond(bob.IQ("set", roomJID("doomed"), "<query xmlns='"+nsOwner+"'><destroy/></query>")); c != "forbidden" {
		t.Fatalf("destroy by non-owner: %q", c)
	}
	r := alice.IQ("set", roomJID("doomed"), "<query xmlns='"+nsOwner+"'><destroy jid='"+roomJID("elsewhere")+"'><reason>moving</reason></destroy></query>")
	if r.Attr("type") != "result" {
		t.Fatalf("destroy: %s", r)
	}
	p := expectPresenceFrom(t, bob, roomJID("doomed")+"/bob", "unavailable")
	d := mucX(p).Child(nsUser, "destroy")
	if d == nil || d.Attr("jid") != roomJID("elsewhere") || d.ChildText(nsUser, "reason") != "moving" {
		t.Fatalf("destroy presence: %s", p)
	}
	sendJoin(bob, "doomed", "bob", "")
	if again := expectSelf(t, bob, "doomed", "bob"); !hasStatus(again, 201) {
		t.Fatalf("destroyed room survived: %s", again)
	}
}

// TestAdminGroups: host admin rights come from admin_groups as well as the
// admins list: a member of the group may create rooms when only admins may.
func TestAdminGroups(t *testing.T) {
	ts := start(t, "[[host]]\ndomain = \"localhost\"\nadmin_groups = [\"ops\"]\n[host.muc]\nroom_creation = \"admins\"\n", "alice", "olga")
	if err := (access.KVGroups{Store: ts.Store()}).Add(context.Background(), "localhost", "olga", "ops"); err != nil {
		t.Fatal(err)
	}
	alice, olga := online(t, ts, "alice"), online(t, ts, "olga")
	sendJoin(alice, "r1", "alice", "")
	if c := expectJoinError(t, alice, "r1"); c != "not-allowed" {
		t.Fatalf("creation by a non-admin: %q", c)
	}
	create(t, olga, "r1", "olga")
}

// TestFanoutPerViewer: broadcasts share one serialised payload between
// occupants (xml ForFanout), yet each occupant gets its own "to", and a
// presence still shows the real JID only to those who may see it.
func TestFanoutPerViewer(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol", "dave")
	alice := online(t, ts, "alice")
	create(t, alice, "fan", "Alice")
	bob, carol := online(t, ts, "bob"), online(t, ts, "carol")
	join(t, bob, "fan", "bob")
	join(t, carol, "fan", "carol")
	dave := online(t, ts, "dave")
	join(t, dave, "fan", "dave")
	for _, c := range []*testserver.Client{alice, bob, carol} {
		p := expectPresenceFrom(t, c, roomJID("fan")+"/dave", "")
		if p.Attr("to") != c.JID {
			t.Fatalf("presence to %s addressed to %q", c.JID, p.Attr("to"))
		}
		want := ""
		if c == alice { // the moderator, in a semi-anonymous room
			want = dave.JID
		}
		if got := item(p).Attr("jid"); got != want || hasStatus(p, 110) {
			t.Fatalf("presence about dave to %s: jid %q (want %q): %s", c.JID, got, want, p)
		}
	}
	body := "fan & <out> 'all'"
	dave.Send("<message to='%s' type='groupchat'><body>fan &amp; &lt;out> 'all'</body></message>", roomJID("fan"))
	for _, c := range []*testserver.Client{alice, bob, carol, dave} {
		m := expectGroupchat(t, c, body)
		if m.Attr("to") != c.JID || m.Attr("from") != roomJID("fan")+"/dave" {
			t.Fatalf("groupchat to %s: %s", c.JID, m)
		}
	}
}

// TestNickRewritten (§7.2, §7.6): a nickname the service prepares into
// another form (RFC 7622: here a combining accent composed) is announced
// to its user with status 210, on entry and on a nickname change.
func TestNickRewritten(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "n", "alice")
	sendJoin(bob, "n", "e\u0301te\u0301", "")
	self := expectSelf(t, bob, "n", "\u00e9t\u00e9")
	if !hasStatus(self, 210) {
		t.Fatalf("rewritten nick on entry without 210: %s", self)
	}
	expectSubject(t, bob, "n")
	bob.Send("<presence to='%s/B\u0065\u0301b'/>", roomJID("n"))
	self = expectSelf(t, bob, "n", "B\u00e9b")
	if !hasStatus(self, 210) {
		t.Fatalf("rewritten nick on change without 210: %s", self)
	}
	// A nick written in its prepared form gets no 210.
	sendJoin(alice, "n", "alice", "")
	if again := expectSelf(t, alice, "n", "alice"); hasStatus(again, 210) {
		t.Fatalf("210 for a nick the service did not change: %s", again)
	}
}

// TestRejoinIsFullSync: a join from a client already joined is a request
// for everything a join sends (§17.3, presence rule 3): the other
// occupants, its own presence, history and the subject; the others see
// its presence once more.
func TestRejoinIsFullSync(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "sync", "alice")
	join(t, bob, "sync", "bob")
	alice.Send("<message to='%s' type='groupchat'><body>before</body></message>", roomJID("sync"))
	expectGroupchat(t, bob, "before")
	sendJoin(bob, "sync", "bob", "")
	bob.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == roomJID("sync")+"/alice" && el.Attr("type") == ""
	})
	expectSelf(t, bob, "sync", "bob")
	h := bob.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") == "before" })
	if h.Child("urn:xmpp:delay", "delay") == nil {
		t.Fatalf("history without delay: %s", h)
	}
	expectSubject(t, bob, "sync")
	alice.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == roomJID("sync")+"/bob" && el.Attr("type") == ""
	})
}

// TestArchivingStatusCodes: entering a room that archives its discussion
// says so (170, §7.2.12), and turning archiving off or on is announced as
// the privacy change it is (171/170, §10.2.1), not as a plain 104.
func TestArchivingStatusCodes(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "logged", "alice")
	configure(t, alice, "logged", map[string]string{"muc#roomconfig_publicroom": "1", "muc#roomconfig_enablearchiving": "1"})
	if self := join(t, bob, "logged", "bob"); !hasStatus(self, 170) {
		t.Fatalf("join of an archived room without 170: %s", self)
	}
	configure(t, alice, "logged", map[string]string{"muc#roomconfig_enablearchiving": "0"})
	m := bob.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && mucX(el) != nil && mucX(el).Child(nsUser, "status") != nil
	})
	if !hasStatus(m, 171) || hasStatus(m, 104) {
		t.Fatalf("archiving turned off: %s", m)
	}
	sendJoin(bob, "logged", "bob", "") // a full sync: the codes of now
	if self := expectSelf(t, bob, "logged", "bob"); hasStatus(self, 170) {
		t.Fatalf("170 in a room that no longer archives: %s", self)
	}
}

// TestShutdownTellsOccupants: a server shutting down tells every occupant
// that the service goes away (status 332) before its stream closes.
func TestShutdownTellsOccupants(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "going", "alice")
	join(t, bob, "going", "bob")
	go ts.Shutdown(context.Background())
	for _, c := range []*testserver.Client{alice, bob} {
		p := c.Expect(func(el *xml.Element) bool { return el.Local == "presence" && el.Attr("type") == "unavailable" })
		if !hasStatus(p, 332) || !hasStatus(p, 110) {
			t.Fatalf("shutdown presence: %s", p)
		}
	}
}
