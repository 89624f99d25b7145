package muc_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// The tests of this file put their client listeners on 127.0.10.1.
const loopback = "[c2s]\nlisten = [\"127.0.10.1:0\"]\ndirect_tls_listen = [\"127.0.10.1:0\"]\n"

const (
	nsModerate  = "urn:xmpp:message-moderate:1"
	nsModerate0 = "urn:xmpp:message-moderate:0"
	nsFasten    = "urn:xmpp:fasten:0"
	nsRetract   = "urn:xmpp:message-retract:1"
	nsRetract0  = "urn:xmpp:message-retract:0"
	nsSID       = "urn:xmpp:sid:0"
	nsMAM       = "urn:xmpp:mam:2"
	nsForward   = "urn:xmpp:forward:0"
)

// speak sends a groupchat message and returns the room's stanza-id from
// the copy the sender gets back.
func speak(t *testing.T, c *testserver.Client, room, id, body string) string {
	t.Helper()
	c.Send("<message to='%s' type='groupchat' id='%s'><body>%s</body></message>", roomJID(room), id, body)
	el := c.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && el.Attr("type") == "groupchat" && el.Attr("id") == id
	})
	return roomSID(t, el, room)
}

// roomSID returns the stanza-id the room put on a message.
func roomSID(t *testing.T, el *xml.Element, room string) string {
	t.Helper()
	for _, c := range el.Elements() {
		if c.Space == nsSID && c.Local == "stanza-id" && c.Attr("by") == roomJID(room) {
			return c.Attr("id")
		}
	}
	t.Fatalf("no stanza-id by the room on %s", el)
	return ""
}

// childOID returns the occupant-id of a stanza (its direct child), or "".
func childOID(el *xml.Element) string {
	if o := el.Child(nsOID, "occupant-id"); o != nil {
		return o.Attr("id")
	}
	return ""
}

// archive queries the room's archive and returns the archived messages
// by archive id, and the ids in order.
func archive(t *testing.T, c *testserver.Client, room string) (map[string]*xml.Element, []string) {
	t.Helper()
	qid := fmt.Sprintf("q%d", time.Now().UnixNano())
	c.Send("<iq type='set' id='%s' to='%s'><query xmlns='%s' queryid='%s'/></iq>", qid, roomJID(room), nsMAM, qid)
	msgs := map[string]*xml.Element{}
	var order []string
	for {
		el := c.Expect(func(el *xml.Element) bool {
			if el.Local == "iq" && el.Attr("id") == qid {
				return true
			}
			r := el.Child(nsMAM, "result")
			return el.Local == "message" && r != nil && r.Attr("queryid") == qid
		})
		if el.Local == "iq" {
			if el.Attr("type") != "result" {
				t.Fatalf("archive query: %s", el)
			}
			return msgs, order
		}
		r := el.Child(nsMAM, "result")
		msgs[r.Attr("id")] = r.Child(nsForward, "forwarded").Child("", "message")
		order = append(order, r.Attr("id"))
	}
}

// expectAnnouncement waits for a groupchat message from the room's bare JID
// that retracts id.
func expectAnnouncement(t *testing.T, c *testserver.Client, room, id string) *xml.Element {
	t.Helper()
	return c.Expect(func(el *xml.Element) bool {
		rt := el.Child(nsRetract, "retract")
		return el.Local == "message" && el.Attr("from") == roomJID(room) && el.Attr("type") == "groupchat" &&
			rt != nil && rt.Attr("id") == id
	})
}

// TestModeratedRetraction: XEP-0425 in a room that archives. The room
// announces both versions; a participant may not moderate (forbidden) and
// an unknown id is item-not-found; a moderator's request (0.3 and 0.2
// forms) is announced to every occupant from the room's bare JID with the
// moderator's occupant JID, occupant id and reason in both forms; the
// archive then holds a tombstone where the message was (no text, the
// author's occupant id, the moderation) and the announcement after it;
// the message has left the discussion history; asking again changes
// nothing; the room's own messages cannot be moderated.
func TestModeratedRetraction(t *testing.T) {
	ts := start(t, loopback, "alice", "bob", "carol", "dave")
	a, b, c := online(t, ts, "alice"), online(t, ts, "bob"), online(t, ts, "carol")
	create(t, a, "tea", "Alice")
	bobSelf := join(t, b, "tea", "Bob")
	join(t, c, "tea", "Carol")
	aliceOID := childOID(expectPresenceFrom(t, c, roomJID("tea")+"/Alice", ""))

	info := c.IQ("get", roomJID("tea"), "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	var feats []string
	for _, f := range info.Child("http://jabber.org/protocol/disco#info", "query").Elements() {
		feats = append(feats, f.Attr("var"))
	}
	for _, want := range []string{nsModerate, nsModerate0, nsRetract, nsRetract + "#tombstone"} {
		if !slices.Contains(feats, want) {
			t.Fatalf("room disco#info lacks %s: %v", want, feats)
		}
	}

	sid := speak(t, b, "tea", "spam-1", "DM me for free magic potions!")
	expectGroupchat(t, a, "DM me for free magic potions!")
	expectGroupchat(t, c, "DM me for free magic potions!")

	moderate := func(cl *testserver.Client, id, reason string) *xml.Element {
		r := ""
		if reason != "" {
			r = "<reason>" + reason + "</reason>"
		}
		return cl.IQ("set", roomJID("tea"), "<moderate xmlns='"+nsModerate+"' id='"+id+"'><retract xmlns='"+nsRetract+"'/>"+r+"</moderate>")
	}
	if got := cond(moderate(c, sid, "")); got != "forbidden" {
		t.Fatalf("a participant's moderation: %q, want forbidden", got)
	}
	if got := cond(moderate(a, "no-such-id", "")); got != "item-not-found" {
		t.Fatalf("moderation of an unknown id: %q, want item-not-found", got)
	}
	if got := cond(a.IQ("set", roomJID("tea"), "<moderate xmlns='"+nsModerate+"' id='"+sid+"'/>")); got != "feature-not-implemented" {
		t.Fatalf("moderation without <retract/>: %q, want feature-not-implemented", got)
	}

	if r := moderate(a, sid, "Spam"); r.Attr("type") != "result" {
		t.Fatalf("moderation: %s", r)
	}
	// Every occupant, the moderator too, hears of it from the room.
	var annSID string
	for _, cl := range []*testserver.Client{a, b, c} {
		ann := expectAnnouncement(t, cl, "tea", sid)
		rt := ann.Child(nsRetract, "retract")
		mod := rt.Child(nsModerate, "moderated")
		if mod == nil || mod.Attr("by") != roomJID("tea")+"/Alice" || childOID(mod) != aliceOID || rt.ChildText(nsRetract, "reason") != "Spam" {
			t.Fatalf("0.3 announcement: %s", ann)
		}
		if childOID(ann) != "" || ann.Child("", "body") != nil {
			t.Fatalf("the announcement speaks for nobody and says nothing else: %s", ann)
		}
		at := ann.Child(nsFasten, "apply-to")
		if at == nil || at.Attr("id") != sid {
			t.Fatalf("0.2 announcement: %s", ann)
		}
		mod0 := at.Child(nsModerate0, "moderated")
		if mod0 == nil || mod0.Attr("by") != roomJID("tea")+"/Alice" || mod0.Child(nsRetract0, "retract") == nil ||
			mod0.ChildText(nsModerate0, "reason") != "Spam" || childOID(mod0) != childOID(mod) {
			t.Fatalf("0.2 announcement: %s", ann)
		}
		annSID = roomSID(t, ann, "tea")
	}

	msgs, order := archive(t, c, "tea")
	tomb := msgs[sid]
	if tomb == nil {
		t.Fatalf("the moderated message left the archive: %v", order)
	}
	if tomb.Child("", "body") != nil || strings.Contains(tomb.String(), "potions") {
		t.Fatalf("the tombstone still says what the message said: %s", tomb)
	}
	rd := tomb.Child(nsRetract, "retracted")
	if rd == nil || rd.Attr("stamp") == "" || rd.Attr("id") == "" || rd.ChildText(nsRetract, "reason") != "Spam" ||
		rd.Child(nsModerate, "moderated") == nil || rd.Child(nsModerate, "moderated").Attr("by") != roomJID("tea")+"/Alice" ||
		childOID(rd.Child(nsModerate, "moderated")) != aliceOID {
		t.Fatalf("0.3 tombstone: %s", tomb)
	}
	if m0 := tomb.Child(nsModerate0, "moderated"); m0 == nil || m0.Child(nsRetract0, "retracted") == nil {
		t.Fatalf("0.2 tombstone: %s", tomb)
	}
	if childOID(tomb) != childOID(bobSelf) || tomb.Attr("from") != roomJID("tea")+"/Bob" || tomb.Attr("id") != "spam-1" {
		t.Fatalf("the tombstone lost its author (occupant id %s): %s", childOID(bobSelf), tomb)
	}
	if i := slices.Index(order, sid); i < 0 || i+1 >= len(order) || order[i+1] != annSID {
		t.Fatalf("archive order %v: want the announcement %s right after the tombstone %s", order, annSID, sid)
	}
	if ann := msgs[annSID]; ann == nil || ann.Child(nsRetract, "retract") == nil || childOID(ann) != "" {
		t.Fatalf("archived announcement: %v", ann)
	}

	// A newcomer's history no longer has the message.
	d := online(t, ts, "dave")
	sendJoin(d, "tea", "Dave", "")
	expectSelf(t, d, "tea", "Dave")
	expectSubject(t, d, "tea")
	for _, el := range d.Pending() {
		if el.Local == "message" && strings.Contains(el.String(), "potions") {
			t.Fatalf("the retracted message is still in the history: %s", el)
		}
	}

	// Asked again: success, and nobody is told twice.
	if r := moderate(a, sid, "Spam"); r.Attr("type") != "result" {
		t.Fatalf("second moderation: %s", r)
	}
	for _, el := range b.Drain() {
		if el.Local == "message" && el.Child(nsRetract, "retract") != nil {
			t.Fatalf("second announcement: %s", el)
		}
	}
	// The room's own message is no occupant's.
	if got := cond(moderate(a, annSID, "")); got != "not-acceptable" {
		t.Fatalf("moderation of the room's announcement: %q, want not-acceptable", got)
	}

	// The 0.2 request (Cheogram, older Gajim) works the same.
	sid2 := speak(t, c, "tea", "spam-2", "more potions")
	r := a.IQ("set", roomJID("tea"), "<apply-to xmlns='"+nsFasten+"' id='"+sid2+"'><moderate xmlns='"+nsModerate0+"'><retract xmlns='"+nsRetract0+"'/><reason>Again</reason></moderate></apply-to>")
	if r.Attr("type") != "result" {
		t.Fatalf("0.2 moderation: %s", r)
	}
	ann := expectAnnouncement(t, b, "tea", sid2)
	if ann.Child(nsRetract, "retract").ChildText(nsRetract, "reason") != "Again" {
		t.Fatalf("announcement of a 0.2 request: %s", ann)
	}
	msgs, _ = archive(t, b, "tea")
	if m := msgs[sid2]; m == nil || m.Child("", "body") != nil || m.Child(nsRetract, "retracted") == nil {
		t.Fatalf("tombstone after a 0.2 request: %v", m)
	}
}

// TestModerationNeedsArchive: a room that does not archive gives no
// stanza-ids and announces no retraction; a moderation request there
// names nothing (item-not-found when the host keeps no room archives).
func TestModerationNeedsArchive(t *testing.T) {
	ts := start(t, loopback+"[[host]]\ndomain = \"localhost\"\n[host.archive]\nrooms = false\n", "alice")
	a := online(t, ts, "alice")
	create(t, a, "quiet", "Alice")
	info := a.IQ("get", roomJID("quiet"), "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if strings.Contains(info.String(), nsModerate) || strings.Contains(info.String(), nsRetract) {
		t.Fatalf("a room without archive announces retraction: %s", info)
	}
	r := a.IQ("set", roomJID("quiet"), "<moderate xmlns='"+nsModerate+"' id='x'><retract xmlns='"+nsRetract+"'/></moderate>")
	if got := cond(r); got != "item-not-found" {
		t.Fatalf("moderation without an archive: %q, want item-not-found", got)
	}
}

// TestRetractOwnMessage: XEP-0424 in a room. An occupant's retraction of
// its own message is relayed to everyone and archived, and the archive
// keeps a tombstone naming the retraction in the message's place; the
// message leaves the history. A retraction of someone else's message is
// relayed (clients judge it) but leaves the archive alone, as does one
// of an unknown id. A retraction with no body is archived too. An
// occupant cannot pass off a moderation or a tombstone as the room's.
func TestRetractOwnMessage(t *testing.T) {
	ts := start(t, loopback, "alice", "bob", "carol")
	a, b, c := online(t, ts, "alice"), online(t, ts, "bob"), online(t, ts, "carol")
	create(t, a, "tea", "Alice")
	join(t, b, "tea", "Bob")
	join(t, c, "tea", "Carol")

	mine := speak(t, b, "tea", "m1", "oops, wrong room")
	theirs := speak(t, c, "tea", "m2", "carol's words")

	retract := func(cl *testserver.Client, id, msgID, body string) *xml.Element {
		cl.Send("<message to='%s' type='groupchat' id='%s'><retract xmlns='%s' id='%s'/>%s<store xmlns='urn:xmpp:hints'/></message>",
			roomJID("tea"), msgID, nsRetract, id, body)
		return a.Expect(func(el *xml.Element) bool {
			return el.Local == "message" && el.Attr("type") == "groupchat" && el.Attr("id") == msgID
		})
	}
	// Bob retracts his own message: Alice gets the retraction.
	got := retract(b, mine, "r1", "<fallback xmlns='urn:xmpp:fallback:0' for='"+nsRetract+"'/><body>/me retracted a message</body>")
	if rt := got.Child(nsRetract, "retract"); rt == nil || rt.Attr("id") != mine {
		t.Fatalf("relayed retraction: %s", got)
	}
	r1 := roomSID(t, got, "tea")
	// Bob tries to retract Carol's message: relayed all the same.
	got = retract(b, theirs, "r2", "")
	if rt := got.Child(nsRetract, "retract"); rt == nil || rt.Attr("id") != theirs {
		t.Fatalf("relayed retraction of another's message: %s", got)
	}
	r2 := roomSID(t, got, "tea") // archived without a body
	retract(b, "no-such-id", "r3", "")
	// The 0.2 form (Converse, Cheogram): <apply-to><retract/></apply-to>.
	older := speak(t, b, "tea", "m3", "said in the old form")
	b.Send("<message to='%s' type='groupchat' id='r4'><apply-to xmlns='%s' id='%s'><retract xmlns='%s'/></apply-to><store xmlns='urn:xmpp:hints'/></message>",
		roomJID("tea"), nsFasten, older, nsRetract0)
	a.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.Attr("id") == "r4" })

	msgs, _ := archive(t, c, "tea")
	if m := msgs[older]; m == nil || m.Child("", "body") != nil || m.Child(nsRetract, "retracted") == nil {
		t.Fatalf("own message retracted in the 0.2 form not replaced by a tombstone: %v", m)
	}
	tomb := msgs[mine]
	if tomb == nil || tomb.Child("", "body") != nil || strings.Contains(tomb.String(), "wrong room") {
		t.Fatalf("own message not replaced by a tombstone: %v", tomb)
	}
	if rd := tomb.Child(nsRetract, "retracted"); rd == nil || rd.Attr("id") != "r1" || rd.Attr("stamp") == "" {
		t.Fatalf("tombstone does not name the retraction: %s", tomb)
	}
	if childOID(tomb) == "" || tomb.Attr("from") != roomJID("tea")+"/Bob" {
		t.Fatalf("tombstone lost its author: %s", tomb)
	}
	if m := msgs[theirs]; m == nil || m.ChildText("", "body") != "carol's words" || m.Child(nsRetract, "retracted") != nil {
		t.Fatalf("another occupant's message was touched by Bob's retraction: %v", m)
	}
	for _, id := range []string{r1, r2} {
		if m := msgs[id]; m == nil || m.Child(nsRetract, "retract") == nil {
			t.Fatalf("retraction %s not archived: %v", id, m)
		}
	}

	// The newcomer's history: Carol's message, not Bob's retracted one.
	ts.AddUsers(t, password, "dave")
	d := online(t, ts, "dave")
	sendJoin(d, "tea", "Dave", "")
	expectSelf(t, d, "tea", "Dave")
	expectSubject(t, d, "tea")
	var hist string
	for _, el := range d.Pending() {
		hist += el.String()
	}
	if strings.Contains(hist, "wrong room") || !strings.Contains(hist, "carol's words") {
		t.Fatalf("history after the retraction: %s", hist)
	}

	// Forgeries: a moderation inside an occupant's retraction, a
	// tombstone, a 0.2 moderation. None reaches anyone.
	b.Send("<message to='%s' type='groupchat' id='f1'><body>look</body>"+
		"<retract xmlns='%s' id='%s'><moderated xmlns='%s' by='%s/Alice'/></retract>"+
		"<retracted xmlns='%s' id='x'/>"+
		"<apply-to xmlns='%s' id='%s'><moderated xmlns='%s' by='%s/Alice'><retract xmlns='%s'/></moderated></apply-to>"+
		"<moderated xmlns='%s' by='x'/></message>",
		roomJID("tea"), nsRetract, theirs, nsModerate, roomJID("tea"), nsRetract, nsFasten, theirs, nsModerate0, roomJID("tea"), nsRetract0, nsModerate0)
	f := expectGroupchat(t, a, "look")
	for _, ch := range f.Elements() {
		if ch.Space == nsRetract || ch.Space == nsRetract0 || ch.Space == nsFasten || ch.Space == nsModerate || ch.Space == nsModerate0 {
			t.Fatalf("forged moderation relayed: %s", f)
		}
	}
	msgs, _ = archive(t, c, "tea")
	if m := msgs[theirs]; m == nil || m.ChildText("", "body") != "carol's words" {
		t.Fatalf("a forged moderation changed the archive: %v", m)
	}
}
