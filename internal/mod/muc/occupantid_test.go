package muc_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const nsOID = "urn:xmpp:occupant-id:0"

// forgedOID is what a client claims; the room must replace it.
const forgedOID = "<occupant-id xmlns='" + nsOID + "' id='forged'/>"

// oidOf returns the one occupant-id of el, failing when there is none or
// more than one (XEP-0421 §4: "MUST NOT contain more than one").
func oidOf(t *testing.T, el *xml.Element) string {
	t.Helper()
	var ids []string
	for _, c := range el.Elements() {
		if c.Space == nsOID {
			ids = append(ids, c.Attr("id"))
		}
	}
	if len(ids) != 1 || ids[0] == "" || ids[0] == "forged" || len(ids[0]) > 128 {
		t.Fatalf("occupant-ids %q in %s", ids, el)
	}
	return ids[0]
}

// wantOID is the id the room must give user in room: HMAC-SHA-256 under
// the service's stored key of the room's and the user's bare JIDs, so it
// comes from a secret kept in storage (the same after a restart and on
// every node) and cannot be computed from the JIDs alone.
func wantOID(t *testing.T, ts *testserver.TS, room, user string) string {
	t.Helper()
	key, err := ts.Store().KV().Get(context.Background(), "muc.keys", svc, "occupant-id")
	if err != nil || len(key) < 32 {
		t.Fatalf("occupant-id key in storage: %v (%d bytes)", err, len(key))
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(roomJID(room) + "\x00" + user + "@localhost"))
	return hex.EncodeToString(m.Sum(nil))
}

func features(t *testing.T, c *testserver.Client, to string) []string {
	t.Helper()
	var out []string
	for _, f := range c.IQ("get", to, "<query xmlns='http://jabber.org/protocol/disco#info'/>").FirstElement().Elements() {
		if f.Local == "feature" {
			out = append(out, f.Attr("var"))
		}
	}
	return out
}

// TestOccupantID: XEP-0421. Rooms and the service announce it; every
// presence and message the room sends for an occupant (self-presence,
// others' presence, leaving, groupchat, subject, history, private
// messages) carries exactly one occupant-id, the room's and never a
// client's; the id is the same for a user across nicks and sessions,
// differs between users and between rooms.
func TestOccupantID(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "oid", "alice")
	for _, to := range []string{svc, roomJID("oid")} {
		if f := features(t, bob, to); !slices.Contains(f, nsOID) {
			t.Fatalf("%s does not announce %s: %v", to, nsOID, f)
		}
	}
	aliceID, bobID := wantOID(t, ts, "oid", "alice"), wantOID(t, ts, "oid", "bob")
	if aliceID == bobID || strings.Contains(aliceID, "alice") {
		t.Fatalf("ids %s, %s", aliceID, bobID)
	}

	// A join with a forged id: everyone gets the room's.
	bob.Send("<presence to='%s/bob'><x xmlns='%s'/>%s</presence>", roomJID("oid"), nsMUC, forgedOID)
	if got := oidOf(t, bob.ExpectStanza("presence", "from="+roomJID("oid")+"/alice")); got != aliceID {
		t.Fatalf("alice's presence to bob: id %s, want %s", got, aliceID)
	}
	if got := oidOf(t, expectSelf(t, bob, "oid", "bob")); got != bobID {
		t.Fatalf("bob's self-presence: id %s, want %s", got, bobID)
	}
	expectSubject(t, bob, "oid")
	if got := oidOf(t, expectPresenceFrom(t, alice, roomJID("oid")+"/bob", "")); got != bobID {
		t.Fatalf("bob's presence to alice: id %s, want %s", got, bobID)
	}
	// A status change with a forged id.
	bob.Send("<presence to='%s/bob'><show>away</show>%s</presence>", roomJID("oid"), forgedOID)
	if got := oidOf(t, expectPresenceFrom(t, alice, roomJID("oid")+"/bob", "")); got != bobID {
		t.Fatalf("status change: id %s", got)
	}
	expectPresenceFrom(t, bob, roomJID("oid")+"/bob", "")

	// Groupchat, forged id replaced, the same id in every copy.
	bob.Send("<message to='%s' type='groupchat' id='g1'><body>hi</body>%s</message>", roomJID("oid"), forgedOID)
	for _, c := range []*testserver.Client{alice, bob} {
		if got := oidOf(t, c.ExpectStanza("message", "id=g1")); got != bobID {
			t.Fatalf("groupchat to %s: id %s, want %s", c.JID, got, bobID)
		}
	}
	// A subject change carries the setter's id.
	alice.Send("<message to='%s' type='groupchat' id='s1'><subject>ids</subject>%s</message>", roomJID("oid"), forgedOID)
	if got := oidOf(t, bob.ExpectStanza("message", "id=s1")); got != aliceID {
		t.Fatalf("subject change: id %s, want %s", got, aliceID)
	}
	alice.ExpectStanza("message", "id=s1")
	// A private message through the room.
	bob.Send("<message to='%s/alice' type='chat' id='pm'><body>psst</body>%s</message>", roomJID("oid"), forgedOID)
	if got := oidOf(t, alice.ExpectStanza("message", "id=pm")); got != bobID {
		t.Fatalf("private message: id %s, want %s", got, bobID)
	}

	// A newcomer: history and subject carry the senders' ids.
	carol := online(t, ts, "carol")
	sendJoin(carol, "oid", "carol", "")
	expectSelf(t, carol, "oid", "carol")
	if got := oidOf(t, expectGroupchat(t, carol, "hi")); got != bobID {
		t.Fatalf("history: id %s, want %s", got, bobID)
	}
	if got := oidOf(t, expectSubject(t, carol, "oid")); got != aliceID {
		t.Fatalf("subject on entry: id %s, want %s", got, aliceID)
	}

	// Leaving carries the id; so does coming back under another nick
	// from another session, and it is the same id.
	bob.Send("<presence to='%s/bob' type='unavailable'/>", roomJID("oid"))
	if got := oidOf(t, expectPresenceFrom(t, alice, roomJID("oid")+"/bob", "unavailable")); got != bobID {
		t.Fatalf("leaving: id %s", got)
	}
	if got := oidOf(t, expectPresenceFrom(t, bob, roomJID("oid")+"/bob", "unavailable")); got != bobID {
		t.Fatalf("own leaving: id %s", got)
	}
	bob2 := ts.Online(t, "bob", password, "other")
	sendJoin(bob2, "oid", "robert", "")
	if got := oidOf(t, expectSelf(t, bob2, "oid", "robert")); got != bobID {
		t.Fatalf("rejoin as robert: id %s, want %s", got, bobID)
	}
	// A nick change keeps it too (both presences of §7.6).
	bob2.Send("<presence to='%s/bert'/>", roomJID("oid"))
	if got := oidOf(t, expectPresenceFrom(t, alice, roomJID("oid")+"/robert", "unavailable")); got != bobID {
		t.Fatalf("nick change, old nick: id %s", got)
	}
	if got := oidOf(t, expectPresenceFrom(t, alice, roomJID("oid")+"/bert", "")); got != bobID {
		t.Fatalf("nick change, new nick: id %s", got)
	}

	// Another room, another id for the same user.
	create(t, bob2, "elsewhere", "bob")
	if wantOID(t, ts, "elsewhere", "bob") == bobID {
		t.Fatal("a user's id is the same in two rooms")
	}
	bob2.Send("<message to='%s' type='groupchat' id='g2'><body>here</body></message>", roomJID("elsewhere"))
	if got := oidOf(t, bob2.ExpectStanza("message", "id=g2")); got != wantOID(t, ts, "elsewhere", "bob") {
		t.Fatalf("other room: id %s", got)
	}
}

// TestOccupantIDRestart: the key is kept in storage, so a user's id in a
// room is the same after a restart (a temporary room created again under
// the same name included), and the stored subject keeps its setter's id.
func TestOccupantIDRestart(t *testing.T) {
	cfg := fmt.Sprintf("data_dir = %q\n", t.TempDir())
	ts := start(t, cfg, "alice", "bob")
	alice := online(t, ts, "alice")
	create(t, alice, "kept", "alice")
	if r := configure(t, alice, "kept", map[string]string{"muc#roomconfig_persistentroom": "1"}); r.Attr("type") != "result" {
		t.Fatalf("configure: %s", r)
	}
	alice.Send("<message to='%s' type='groupchat' id='s1'><subject>before</subject></message>", roomJID("kept"))
	before := oidOf(t, alice.ExpectStanza("message", "id=s1"))
	create(t, alice, "temp", "alice")
	alice.Send("<message to='%s' type='groupchat' id='g1'><body>x</body></message>", roomJID("temp"))
	tempBefore := oidOf(t, alice.ExpectStanza("message", "id=g1"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.Shutdown(ctx)

	ts2 := testserver.Start(t, cfg)
	alice = ts2.Online(t, "alice", password, "again")
	sendJoin(alice, "kept", "Alice", "")
	if got := oidOf(t, expectSelf(t, alice, "kept", "Alice")); got != before {
		t.Fatalf("after restart: id %s, before %s", got, before)
	}
	if got := oidOf(t, expectSubject(t, alice, "kept")); got != before {
		t.Fatalf("stored subject: id %s, want %s", got, before)
	}
	create(t, alice, "temp", "alice")
	alice.Send("<message to='%s' type='groupchat' id='g2'><body>y</body></message>", roomJID("temp"))
	if got := oidOf(t, alice.ExpectStanza("message", "id=g2")); got != tempBefore {
		t.Fatalf("temporary room made again: id %s, before %s", got, tempBefore)
	}
}
