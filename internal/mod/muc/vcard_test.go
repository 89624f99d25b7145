package muc_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// A 1x1 PNG, base64, and a second image (any bytes do for a hash).
const (
	roomPNG   = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	roomOther = "R0lGODlhAQABAAAAACw="
)

func hashOf(t *testing.T, b64 string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func roomCard(photos ...string) string {
	var b strings.Builder
	b.WriteString("<vCard xmlns='vcard-temp'><FN>The Room</FN>")
	for _, p := range photos {
		b.WriteString("<PHOTO><TYPE>image/png</TYPE><BINVAL>" + p + "</BINVAL></PHOTO>")
	}
	b.WriteString("</vCard>")
	return b.String()
}

// avatarHashes returns the muc#roominfo_avatarhash values of a room's
// disco#info, and whether the room announces vcard-temp.
func avatarHashes(t *testing.T, c *testserver.Client, room string) ([]string, bool) {
	t.Helper()
	r := c.IQ("get", roomJID(room), "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	q := r.Child("http://jabber.org/protocol/disco#info", "query")
	if q == nil {
		t.Fatalf("disco#info: %s", r)
	}
	feature := strings.Contains(q.String(), "var='vcard-temp'")
	var out []string
	for _, x := range q.Elements() {
		if x.Local != "x" {
			continue
		}
		for _, f := range x.Elements() {
			if f.Attr("var") != "muc#roominfo_avatarhash" {
				continue
			}
			if f.Attr("type") != "text-multi" {
				t.Fatalf("avatarhash field type %q", f.Attr("type"))
			}
			for _, v := range f.Elements() {
				out = append(out, v.Text())
			}
		}
	}
	return out, feature
}

func isConfigChange(el *xml.Element) bool {
	return el.Local == "message" && el.Attr("type") == "groupchat" && hasStatus(el, 104)
}

// TestRoomVCard (XEP-0054 on a room, XEP-0486): anyone reads the room's
// vCard, only owners set it, the avatar hashes appear in disco#info,
// occupants get status 104 on a change, an empty vCard removes it, and
// bounds and bad payloads get their errors.
func TestRoomVCard(t *testing.T) {
	ts := start(t, "[limits]\nmax_vcard_bytes = 2048\n", "alice", "bob", "carol")
	alice, bob, carol := online(t, ts, "alice"), online(t, ts, "bob"), online(t, ts, "carol")
	create(t, alice, "pics", "alice")
	join(t, bob, "pics", "bob")

	if info := bob.IQ("get", svc, "<query xmlns='http://jabber.org/protocol/disco#info'/>"); !strings.Contains(info.String(), "var='vcard-temp'") {
		t.Fatalf("service disco#info lacks vcard-temp: %s", info)
	}
	if h, feat := avatarHashes(t, carol, "pics"); len(h) != 0 || !feat {
		t.Fatalf("before any avatar: hashes %v, vcard-temp announced %v", h, feat)
	}
	if r := carol.IQ("get", roomJID("pics"), "<vCard xmlns='vcard-temp'/>"); r.Attr("type") != "result" || r.FirstElement() == nil || len(r.FirstElement().Elements()) != 0 {
		t.Fatalf("vCard before any was set: %s", r)
	}

	// Not an owner: forbidden, with a text.
	r := bob.IQ("set", roomJID("pics"), roomCard(roomPNG))
	if cond(r) != "forbidden" || !strings.Contains(r.String(), "owner") {
		t.Fatalf("member's set: %s", r)
	}
	r = carol.IQ("set", roomJID("pics"), roomCard(roomPNG))
	if cond(r) != "forbidden" {
		t.Fatalf("outsider's set: %s", r)
	}

	// The owner sets it: occupants learn of it with 104.
	if r := alice.IQ("set", roomJID("pics"), roomCard(roomPNG)); r.Attr("type") != "result" {
		t.Fatalf("owner's set: %s", r)
	}
	for _, c := range []*testserver.Client{alice, bob} {
		c.Expect(isConfigChange)
	}
	h, _ := avatarHashes(t, carol, "pics")
	if len(h) != 1 || h[0] != hashOf(t, roomPNG) {
		t.Fatalf("avatar hashes %v, want [%s]", h, hashOf(t, roomPNG))
	}
	r = carol.IQ("get", roomJID("pics"), "<vCard xmlns='vcard-temp'/>")
	if got := r.Child("vcard-temp", "vCard"); got == nil || got.Child("vcard-temp", "PHOTO").ChildText("vcard-temp", "BINVAL") != roomPNG {
		t.Fatalf("vCard read by a non-occupant: %s", r)
	}

	// Two formats of the avatar: both hashes (XEP-0486 §5.1).
	alice.IQ("set", roomJID("pics"), roomCard(roomPNG, roomOther))
	bob.Expect(isConfigChange)
	if h, _ := avatarHashes(t, bob, "pics"); len(h) != 2 || h[1] != hashOf(t, roomOther) {
		t.Fatalf("two photos: hashes %v", h)
	}

	// Errors: too big, wrong element; nothing changes.
	big := "<vCard xmlns='vcard-temp'><DESC>" + strings.Repeat("x", 3000) + "</DESC></vCard>"
	if r := alice.IQ("set", roomJID("pics"), big); cond(r) != "not-acceptable" {
		t.Fatalf("oversized vCard: %s", r)
	}
	if r := alice.IQ("set", roomJID("pics"), "<card xmlns='vcard-temp'/>"); cond(r) != "bad-request" {
		t.Fatalf("wrong element: %s", r)
	}
	if h, _ := avatarHashes(t, bob, "pics"); len(h) != 2 {
		t.Fatalf("refused sets changed the hashes: %v", h)
	}

	// An empty vCard removes the avatar.
	alice.IQ("set", roomJID("pics"), "<vCard xmlns='vcard-temp'/>")
	bob.Expect(isConfigChange)
	if h, _ := avatarHashes(t, carol, "pics"); len(h) != 0 {
		t.Fatalf("after removal: hashes %v", h)
	}
}

// TestRoomVCardHiddenRoom: a hidden members-only room does not exist for
// outsiders, its vCard included.
func TestRoomVCardHiddenRoom(t *testing.T) {
	ts := start(t, "", "alice", "carol")
	alice, carol := online(t, ts, "alice"), online(t, ts, "carol")
	create(t, alice, "secret", "alice")
	configure(t, alice, "secret", map[string]string{"muc#roomconfig_membersonly": "1", "muc#roomconfig_publicroom": "0"})
	alice.IQ("set", roomJID("secret"), roomCard(roomPNG))
	if r := carol.IQ("get", roomJID("secret"), "<vCard xmlns='vcard-temp'/>"); cond(r) != "item-not-found" {
		t.Fatalf("outsider reads a hidden room's vCard: %s", r)
	}
}

// TestRoomVCardPersistence: a persistent room's vCard survives a restart,
// one set while the room was temporary is stored when it becomes
// persistent, and destroying the room removes it from storage.
func TestRoomVCardPersistence(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf("data_dir = %q\n", dir)
	ts := start(t, cfg, "alice", "bob")
	alice := online(t, ts, "alice")
	create(t, alice, "kept", "alice")
	alice.IQ("set", roomJID("kept"), roomCard(roomPNG))
	if r := configure(t, alice, "kept", map[string]string{"muc#roomconfig_persistentroom": "1"}); r.Attr("type") != "result" {
		t.Fatalf("configure: %s", r)
	}
	create(t, alice, "temp", "alice")
	alice.IQ("set", roomJID("temp"), roomCard(roomOther))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.Shutdown(ctx)

	ts2 := testserver.Start(t, cfg)
	bob := ts2.Online(t, "bob", password, "r")
	if h, _ := avatarHashes(t, bob, "kept"); len(h) != 1 || h[0] != hashOf(t, roomPNG) {
		t.Fatalf("hashes after restart: %v", h)
	}
	r := bob.IQ("get", roomJID("kept"), "<vCard xmlns='vcard-temp'/>")
	if !strings.Contains(r.String(), roomPNG) {
		t.Fatalf("vCard after restart: %s", r)
	}
	if n, _ := ts2.Store().KV().List(ctx, "muc.vcards", svc); len(n) != 1 {
		t.Fatalf("stored room vCards: %d, want only the persistent room's", len(n))
	}
	alice2 := ts2.Online(t, "alice", password, "r")
	alice2.IQ("set", roomJID("kept"), "<query xmlns='"+nsOwner+"'><destroy/></query>")
	if n, _ := ts2.Store().KV().List(ctx, "muc.vcards", svc); len(n) != 0 {
		t.Fatalf("stored room vCards after destroy: %d", len(n))
	}
}

// TestOccupantAvatarRelayed: an occupant's XEP-0153 update element
// reaches the other occupants in its presence from the room, with the
// hash of the account's avatar (the server stamps it, XEP-0398).
func TestOccupantAvatarRelayed(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice, bob := online(t, ts, "alice"), online(t, ts, "bob")
	create(t, alice, "faces", "alice")
	// alice's account has a vCard photo: her presence carries its hash
	// whatever her client put there.
	alice.IQ("set", "", "<vCard xmlns='vcard-temp'>"+strings.TrimPrefix(roomCard(roomPNG), "<vCard xmlns='vcard-temp'>"))
	join(t, bob, "faces", "bob")
	alice.Send("<presence to='%s/alice'><status>pic</status><x xmlns='vcard-temp:x:update'><photo>0000</photo></x></presence>", roomJID("faces"))
	el := bob.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == roomJID("faces")+"/alice" && el.ChildText("", "status") == "pic"
	})
	x := el.Child("vcard-temp:x:update", "x")
	if x == nil || x.ChildText("vcard-temp:x:update", "photo") != hashOf(t, roomPNG) {
		t.Fatalf("occupant presence: %s", el)
	}
	// bob's own update element is relayed as he sent it (his account
	// has no avatar: nothing to correct).
	bob.Send("<presence to='%s/bob'><status>mine</status><x xmlns='vcard-temp:x:update'><photo/></x></presence>", roomJID("faces"))
	el = alice.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == roomJID("faces")+"/bob" && el.ChildText("", "status") == "mine"
	})
	if x := el.Child("vcard-temp:x:update", "x"); x == nil || x.Child("vcard-temp:x:update", "photo") == nil {
		t.Fatalf("bob's update element was not relayed: %s", el)
	}
}
