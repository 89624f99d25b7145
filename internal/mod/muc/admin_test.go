package muc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// TestConfigure: the owner form and what each setting does on entry.
func TestConfigure(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol", "dave")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "c", "alice")
	if c := cond(bob.IQ("get", roomJID("c"), "<query xmlns='"+nsOwner+"'/>")); c != "forbidden" {
		t.Fatalf("non-owner form: %q", c)
	}
	if c := cond(configure(t, bob, "c", map[string]string{"muc#roomconfig_roomname": "mine"})); c != "forbidden" {
		t.Fatalf("non-owner submit: %q", c)
	}
	for _, tc := range []struct {
		name   string
		fields map[string]string
		want   string
	}{
		{"password without secret", map[string]string{"muc#roomconfig_passwordprotectedroom": "1"}, "not-acceptable"},
		{"too many users", map[string]string{"muc#roomconfig_maxusers": "100000"}, "not-acceptable"},
		{"bad boolean", map[string]string{"muc#roomconfig_moderatedroom": "maybe"}, "not-acceptable"},
		{"bad whois", map[string]string{"muc#roomconfig_whois": "everybody"}, "not-acceptable"},
		{"no owners", map[string]string{"muc#roomconfig_roomowners": ""}, "conflict"},
	} {
		if c := cond(configure(t, alice, "c", tc.fields)); c != tc.want {
			t.Fatalf("%s: %q, want %q", tc.name, c, tc.want)
		}
	}
	r := configure(t, alice, "c", map[string]string{
		"muc#roomconfig_roomname":              "Cave",
		"muc#roomconfig_passwordprotectedroom": "1",
		"muc#roomconfig_roomsecret":            "cauldron",
		"muc#roomconfig_maxusers":              "2",
		"muc#roomconfig_whois":                 "anyone",
		"muc#roomconfig_publicroom":            "1",
	})
	if r.Attr("type") != "result" {
		t.Fatalf("configure: %s", r)
	}
	// Occupants learn of the change: 172, the room is now non-anonymous.
	if m := alice.Expect(func(el *xml.Element) bool { return el.Local == "message" && mucX(el) != nil }); !hasStatus(m, 172) {
		t.Fatalf("config change notice: %s", m)
	}
	form := alice.IQ("get", roomJID("c"), "<query xmlns='"+nsOwner+"'/>")
	if !strings.Contains(form.String(), "<value>Cave</value>") {
		t.Fatalf("form does not show the new name: %s", form)
	}
	info := bob.IQ("get", roomJID("c"), "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	for _, f := range []string{"muc_passwordprotected", "muc_nonanonymous", "name='Cave'"} {
		if !strings.Contains(info.String(), f) {
			t.Fatalf("room info without %s: %s", f, info)
		}
	}
	sendJoin(bob, "c", "bob", "")
	if c := expectJoinError(t, bob, "c"); c != "not-authorized" {
		t.Fatalf("no password: %q", c)
	}
	sendJoin(bob, "c", "bob", "<password>wrong</password>")
	if c := expectJoinError(t, bob, "c"); c != "not-authorized" {
		t.Fatalf("wrong password: %q", c)
	}
	sendJoin(bob, "c", "bob", "<password>cauldron</password>")
	if self := expectSelf(t, bob, "c", "bob"); !hasStatus(self, 100) {
		t.Fatalf("non-anonymous room without 100: %s", self)
	}
	// Non-anonymous: everyone sees real JIDs.
	if p := expectPresenceFrom(t, bob, roomJID("c")+"/alice", ""); item(p).Attr("jid") != alice.JID {
		t.Fatalf("real JID hidden in a non-anonymous room: %s", p)
	}
	// max users 2: carol is refused with service-unavailable (wait).
	carol := online(t, ts, "carol")
	sendJoin(carol, "c", "carol", "<password>cauldron</password>")
	if c := expectJoinError(t, carol, "c"); c != "service-unavailable" {
		t.Fatalf("full room: %q", c)
	}
	// Members-only: the non-member bob is removed with 322.
	configure(t, alice, "c", map[string]string{"muc#roomconfig_membersonly": "1", "muc#roomconfig_maxusers": "10"})
	if p := expectPresenceFrom(t, bob, roomJID("c")+"/bob", "unavailable"); !hasStatus(p, 322) {
		t.Fatalf("members-only removal: %s", p)
	}
	dave := online(t, ts, "dave")
	sendJoin(dave, "c", "dave", "<password>cauldron</password>")
	if c := expectJoinError(t, dave, "c"); c != "registration-required" {
		t.Fatalf("non-member join: %q", c)
	}
	if r := admin(alice, "c", "affiliation='member' jid='dave@localhost'"); r.Attr("type") != "result" {
		t.Fatalf("add member: %s", r)
	}
	// §9.5: the new member is invited.
	dave.Expect(func(el *xml.Element) bool { return mucX(el) != nil && mucX(el).Child(nsUser, "invite") != nil })
	sendJoin(dave, "c", "dave", "<password>cauldron</password>")
	expectSelf(t, dave, "c", "dave")
	// §5.2: in a semi-anonymous room the member list (real JIDs behind
	// the nicks) is not for members; in a non-anonymous one it is.
	configure(t, alice, "c", map[string]string{"muc#roomconfig_whois": "moderators"})
	if c := cond(adminList(dave, "c", "affiliation='member'")); c != "forbidden" {
		t.Fatalf("a member read the member list of a semi-anonymous room: %q", c)
	}
	configure(t, alice, "c", map[string]string{"muc#roomconfig_whois": "anyone"})
	if l := adminList(dave, "c", "affiliation='member'"); l.Attr("type") != "result" || !strings.Contains(l.String(), "dave@localhost") {
		t.Fatalf("member list of a non-anonymous room: %s", l)
	}
	// Cancelling a later configuration changes nothing.
	if r := alice.IQ("set", roomJID("c"), "<query xmlns='"+nsOwner+"'><x xmlns='"+nsData+"' type='cancel'/></query>"); r.Attr("type") != "result" {
		t.Fatalf("cancel: %s", r)
	}
}

// TestCancelInitialConfig: cancelling the first configuration destroys the
// locked room (§10.1.3).
func TestCancelInitialConfig(t *testing.T) {
	ts := start(t, "", "alice")
	alice := online(t, ts, "alice")
	sendJoin(alice, "tmp", "alice", "")
	expectSelf(t, alice, "tmp", "alice")
	alice.IQ("set", roomJID("tmp"), "<query xmlns='"+nsOwner+"'><x xmlns='"+nsData+"' type='cancel'/></query>")
	expectPresenceFrom(t, alice, roomJID("tmp")+"/alice", "unavailable")
	sendJoin(alice, "tmp", "alice", "")
	if self := expectSelf(t, alice, "tmp", "alice"); !hasStatus(self, 201) {
		t.Fatalf("cancelled room survived: %s", self)
	}
}

// TestModeration: kick, voice, moderator role and the permission failures
// of §8 and §9.
func TestModeration(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	alice, bob, carol := online(t, ts, "alice"), online(t, ts, "bob"), online(t, ts, "carol")
	create(t, alice, "m", "alice")
	join(t, bob, "m", "bob")
	join(t, carol, "m", "carol")
	room := roomJID("m")

	// A participant may not kick (forbidden) nor see the voice list.
	if c := cond(admin(bob, "m", "nick='carol' role='none'")); c != "forbidden" {
		t.Fatalf("participant kick: %q", c)
	}
	if c := cond(adminList(bob, "m", "role='participant'")); c != "forbidden" {
		t.Fatalf("participant voice list: %q", c)
	}
	// Nobody kicks the owner; the owner cannot kick itself.
	if c := cond(admin(alice, "m", "nick='alice' role='none'")); c != "conflict" {
		t.Fatalf("self kick: %q", c)
	}
	if c := cond(admin(alice, "m", "nick='nobody' role='none'")); c != "item-not-found" {
		t.Fatalf("kick of nobody: %q", c)
	}
	// Grant bob moderator; he still may not kick the owner.
	if r := admin(alice, "m", "nick='bob' role='moderator'"); r.Attr("type") != "result" {
		t.Fatalf("grant moderator: %s", r)
	}
	expectItem(t, carol, room+"/bob", "role", "moderator")
	if c := cond(admin(bob, "m", "nick='alice' role='none'")); c != "not-allowed" {
		t.Fatalf("moderator kicks owner: %q", c)
	}
	// Moderated room: carol becomes a visitor? No: existing participants
	// keep voice; newcomers without affiliation enter as visitors.
	configure(t, alice, "m", map[string]string{"muc#roomconfig_moderatedroom": "1"})
	expectItem(t, carol, room+"/carol", "role", "visitor")
	carol.Send("<message to='%s' type='groupchat'><body>may I?</body></message>", room)
	if e := carol.ExpectStanza("message", "type=error"); cond(e) != "forbidden" {
		t.Fatalf("visitor speaks: %s", e)
	}
	if r := admin(bob, "m", "nick='carol' role='participant'"); r.Attr("type") != "result" {
		t.Fatalf("grant voice: %s", r)
	}
	expectItem(t, carol, room+"/carol", "role", "participant")
	carol.Send("<message to='%s' type='groupchat'><body>thanks</body></message>", room)
	expectGroupchat(t, alice, "thanks")
	if r := admin(bob, "m", "nick='carol' role='visitor'"); r.Attr("type") != "result" {
		t.Fatalf("revoke voice: %s", r)
	}
	expectItem(t, carol, room+"/carol", "role", "visitor")
	// Voice list for moderators.
	if l := adminList(bob, "m", "role='visitor'"); !strings.Contains(l.String(), "nick='carol'") {
		t.Fatalf("visitor list: %s", l)
	}
	// Kick with a reason: 307 to everyone, actor and reason to the kicked.
	if r := bob.IQ("set", room, "<query xmlns='"+nsAdmin+"'><item nick='carol' role='none'><reason>enough</reason></item></query>"); r.Attr("type") != "result" {
		t.Fatalf("kick: %s", r)
	}
	kicked := expectPresenceFrom(t, carol, room+"/carol", "unavailable")
	if !hasStatus(kicked, 307) || !hasStatus(kicked, 110) || item(kicked).Child(nsUser, "actor") == nil || item(kicked).ChildText(nsUser, "reason") != "enough" {
		t.Fatalf("kicked presence: %s", kicked)
	}
	if p := expectPresenceFrom(t, alice, room+"/carol", "unavailable"); !hasStatus(p, 307) {
		t.Fatalf("kick seen by others: %s", p)
	}
	// Admins cannot revoke an owner's moderator role.
	if r := admin(alice, "m", "affiliation='admin' jid='bob@localhost'"); r.Attr("type") != "result" {
		t.Fatalf("grant admin: %s", r)
	}
	if c := cond(admin(bob, "m", "nick='alice' role='participant'")); c != "not-allowed" {
		t.Fatalf("admin demotes owner: %q", c)
	}
}

// TestAffiliations: ban, member/admin/owner lists and their rules.
func TestAffiliations(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol", "mallory")
	alice, bob, mallory := online(t, ts, "alice"), online(t, ts, "bob"), online(t, ts, "mallory")
	create(t, alice, "a", "alice")
	join(t, mallory, "a", "mallory")
	join(t, bob, "a", "bob")
	room := roomJID("a")

	// Participants manage nothing.
	for _, it := range []string{"affiliation='outcast' jid='alice@localhost'", "affiliation='member' jid='carol@localhost'"} {
		if c := cond(admin(bob, "a", it)); c != "forbidden" {
			t.Fatalf("participant sets %s: %q", it, c)
		}
	}
	if c := cond(adminList(bob, "a", "affiliation='outcast'")); c != "forbidden" {
		t.Fatalf("participant ban list: %q", c)
	}
	// Make bob admin: he may ban mallory, not the owner, not himself.
	if r := admin(alice, "a", "affiliation='admin' jid='bob@localhost'"); r.Attr("type") != "result" {
		t.Fatalf("grant admin: %s", r)
	}
	if p := expectItem(t, mallory, room+"/bob", "affiliation", "admin"); item(p).Attr("role") != "moderator" {
		t.Fatalf("admin presence: %s", p)
	}
	if c := cond(admin(bob, "a", "affiliation='outcast' jid='alice@localhost'")); c != "not-allowed" {
		t.Fatalf("admin bans owner: %q", c)
	}
	if c := cond(admin(bob, "a", "affiliation='outcast' jid='bob@localhost'")); c != "conflict" {
		t.Fatalf("self ban: %q", c)
	}
	if c := cond(admin(bob, "a", "affiliation='owner' jid='carol@localhost'")); c != "forbidden" {
		t.Fatalf("admin grants owner: %q", c)
	}
	if c := cond(adminList(bob, "a", "affiliation='owner'")); c != "forbidden" {
		t.Fatalf("admin reads owner list: %q", c)
	}
	if r := bob.IQ("set", room, "<query xmlns='"+nsAdmin+"'><item affiliation='outcast' jid='mallory@localhost'><reason>spam</reason></item></query>"); r.Attr("type") != "result" {
		t.Fatalf("ban: %s", r)
	}
	banned := expectPresenceFrom(t, mallory, room+"/mallory", "unavailable")
	if !hasStatus(banned, 301) || item(banned).Attr("affiliation") != "outcast" {
		t.Fatalf("ban presence: %s", banned)
	}
	sendJoin(mallory, "a", "mallory", "")
	if c := expectJoinError(t, mallory, "a"); c != "forbidden" {
		t.Fatalf("banned join: %q", c)
	}
	l := adminList(bob, "a", "affiliation='outcast'")
	if !strings.Contains(l.String(), "jid='mallory@localhost'") || !strings.Contains(l.String(), "spam") {
		t.Fatalf("ban list: %s", l)
	}
	// Member list: add and remove in one delta.
	if r := alice.IQ("set", room, "<query xmlns='"+nsAdmin+"'><item affiliation='member' jid='carol@localhost'><reason>welcome aboard</reason></item><item affiliation='member' jid='dave@localhost'/></query>"); r.Attr("type") != "result" {
		t.Fatalf("member delta: %s", r)
	}
	admin(alice, "a", "affiliation='none' jid='dave@localhost'")
	// The reason given stays with the entry (on a room that is not the
	// directory's, nothing says "from the directory").
	if l := adminList(alice, "a", "affiliation='member'"); !strings.Contains(l.String(), "carol@localhost") || strings.Contains(l.String(), "dave@localhost") ||
		!strings.Contains(l.String(), "welcome aboard") {
		t.Fatalf("member list: %s", l)
	}
	// A request with one bad item changes nothing.
	r := alice.IQ("set", room, "<query xmlns='"+nsAdmin+"'><item affiliation='member' jid='erin@localhost'/><item affiliation='bogus' jid='x@localhost'/></query>")
	if cond(r) != "bad-request" {
		t.Fatalf("bad item: %s", r)
	}
	if l := adminList(alice, "a", "affiliation='member'"); strings.Contains(l.String(), "erin@localhost") {
		t.Fatalf("partial apply: %s", l)
	}
	// Owner list: the last owner cannot step down; with a second one she can.
	if l := adminList(alice, "a", "affiliation='owner'"); !strings.Contains(l.String(), "alice@localhost") {
		t.Fatalf("owner list: %s", l)
	}
	if c := cond(admin(alice, "a", "affiliation='admin' jid='alice@localhost'")); c != "conflict" {
		t.Fatalf("last owner steps down: %q", c)
	}
	if r := admin(alice, "a", "affiliation='owner' jid='bob@localhost'"); r.Attr("type") != "result" {
		t.Fatalf("second owner: %s", r)
	}
	if r := admin(alice, "a", "affiliation='admin' jid='alice@localhost'"); r.Attr("type") != "result" {
		t.Fatalf("step down: %s", r)
	}
	if l := adminList(bob, "a", "affiliation='admin'"); !strings.Contains(l.String(), "alice@localhost") {
		t.Fatalf("admin list: %s", l)
	}
	// A domain ban keeps everyone of that domain out.
	if r := admin(bob, "a", "affiliation='outcast' jid='evil.example'"); r.Attr("type") != "result" {
		t.Fatalf("domain ban: %s", r)
	}
}

// TestPersistence: a persistent room's configuration, affiliations and
// subject survive a restart; a temporary one does not.
func TestPersistence(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf("data_dir = %q\n", dir)
	ts := start(t, cfg, "alice", "bob", "carol")
	alice := online(t, ts, "alice")
	create(t, alice, "keep", "alice")
	if r := configure(t, alice, "keep", map[string]string{
		"muc#roomconfig_persistentroom": "1", "muc#roomconfig_membersonly": "1",
		"muc#roomconfig_roomname": "Kept", "muc#roomconfig_publicroom": "1",
	}); r.Attr("type") != "result" {
		t.Fatalf("configure: %s", r)
	}
	admin(alice, "keep", "affiliation='member' jid='bob@localhost'")
	admin(alice, "keep", "affiliation='outcast' jid='carol@localhost'")
	alice.Send("<message to='%s' type='groupchat'><subject>kept subject</subject></message>", roomJID("keep"))
	alice.Expect(func(el *xml.Element) bool { return el.ChildText("", "subject") == "kept subject" })
	create(t, alice, "temp", "alice")
	// The persistent room stays when its last occupant leaves.
	alice.Send("<presence to='%s/alice' type='unavailable'/>", roomJID("keep"))
	expectPresenceFrom(t, alice, roomJID("keep")+"/alice", "unavailable")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.Shutdown(ctx)

	ts2 := testserver.Start(t, cfg)
	bob := ts2.Online(t, "bob", password, "r")
	items := bob.IQ("get", svc, "<query xmlns='http://jabber.org/protocol/disco#items'/>")
	if !strings.Contains(items.String(), "jid='"+roomJID("keep")+"'") || strings.Contains(items.String(), roomJID("temp")) {
		t.Fatalf("rooms after restart: %s", items)
	}
	// bob is still a member of the members-only room and sees the subject.
	sendJoin(bob, "keep", "bob", "")
	if self := expectSelf(t, bob, "keep", "bob"); hasStatus(self, 201) || item(self).Attr("affiliation") != "member" {
		t.Fatalf("member after restart: %s", self)
	}
	if s := expectSubject(t, bob, "keep"); s.ChildText("", "subject") != "kept subject" {
		t.Fatalf("subject after restart: %s", s)
	}
	carol := ts2.Online(t, "carol", password, "r")
	sendJoin(carol, "keep", "carol", "")
	if c := expectJoinError(t, carol, "keep"); c != "forbidden" {
		t.Fatalf("ban after restart: %q", c)
	}
	alice2 := ts2.Online(t, "alice", password, "r")
	if l := adminList(alice2, "keep", "affiliation='owner'"); !strings.Contains(l.String(), "alice@localhost") {
		t.Fatalf("owner after restart: %s", l)
	}
	// Destroying removes it from storage too.
	alice2.IQ("set", roomJID("keep"), "<query xmlns='"+nsOwner+"'><destroy/></query>")
	if n, _ := ts2.Store().KV().List(ctx, "muc.rooms", svc); len(n) != 0 {
		t.Fatalf("stored rooms after destroy: %d", len(n))
	}
}

// TestVoiceRequests (§7.13, §8.6): a visitor's request goes to the
// moderators as a form; approved, the visitor becomes a participant. Only
// a visitor may ask, only a moderator may answer.
func TestVoiceRequests(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	alice, bob, carol := online(t, ts, "alice"), online(t, ts, "bob"), online(t, ts, "carol")
	room := roomJID("v")
	create(t, alice, "v", "alice")
	configure(t, alice, "v", map[string]string{"muc#roomconfig_moderatedroom": "1"})
	join(t, bob, "v", "bob")
	join(t, carol, "v", "carol")
	request := func(c *testserver.Client, role string) {
		c.Send("<message to='%s' id='vr'><x xmlns='jabber:x:data' type='submit'>"+
			"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>"+
			"<field var='muc#role' type='list-single'><value>%s</value></field></x></message>", room, role)
	}
	request(bob, "participant")
	fwd := alice.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && el.Attr("from") == room && el.Child("jabber:x:data", "x") != nil
	})
	x := fwd.Child("jabber:x:data", "x")
	fields := map[string]string{}
	for _, f := range x.Elements() {
		fields[f.Attr("var")] = f.ChildText("jabber:x:data", "value")
	}
	if x.Attr("type") != "form" || fields["FORM_TYPE"] != nsMUC+"#request" || fields["muc#roomnick"] != "bob" ||
		fields["muc#jid"] != "bob@localhost" || fields["muc#request_allow"] != "false" {
		t.Fatalf("request forwarded to the moderator as %s", fwd)
	}
	answer := func(c *testserver.Client, allow string) {
		c.Send("<message to='%s'><x xmlns='jabber:x:data' type='submit'>"+
			"<field var='FORM_TYPE'><value>http://jabber.org/protocol/muc#request</value></field>"+
			"<field var='muc#role'><value>participant</value></field>"+
			"<field var='muc#roomnick'><value>bob</value></field>"+
			"<field var='muc#request_allow'><value>%s</value></field></x></message>", room, allow)
	}
	// carol, a visitor, cannot answer it.
	answer(carol, "true")
	if e := carol.ExpectStanza("message", "type=error"); cond(e) != "forbidden" {
		t.Fatalf("visitor approves: %s", e)
	}
	answer(alice, "true")
	expectItem(t, bob, room+"/bob", "role", "participant")
	// bob has voice now: asking again is out of place.
	request(bob, "participant")
	if e := bob.ExpectStanza("message", "type=error"); cond(e) != "not-allowed" {
		t.Fatalf("participant asks for voice: %s", e)
	}
	bob.Send("<message to='%s' type='groupchat'><body>heard</body></message>", room)
	expectGroupchat(t, carol, "heard")
}
