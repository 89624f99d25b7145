package avatarconv_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/internal/mod/avatarconv"
	"parley/internal/pubsub"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const (
	password    = "password123"
	nsCaps      = "http://jabber.org/protocol/caps"
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
	capsNode    = "https://parley.example/test"
	// A 1x1 PNG, base64.
	png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)

func pngHash(t *testing.T) (string, int) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(png)
	if err != nil {
		t.Fatal(err)
	}
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:]), len(b)
}

// setup boots a server with alice and bob, mutually subscribed, and bob
// online interested in avatar metadata.
func setup(t *testing.T) (*testserver.TS, *testserver.Client, *testserver.Client) {
	t.Helper()
	ts := testserver.Start(t, "")
	ts.AddUsers(t, password, "alice", "bob")
	for _, pair := range [][2]string{{"alice", "bob"}, {"bob", "alice"}} {
		if _, err := ts.Store().Roster().Put(context.Background(), pair[0]+"@localhost",
			storage.RosterItem{JID: pair[1] + "@localhost", Subscription: storage.SubBoth}); err != nil {
			t.Fatal(err)
		}
	}
	alice := online(t, ts, "alice", "r", nil)
	bob := online(t, ts, "bob", "r", []string{avatarconv.NSMetadata + "+notify"})
	return ts, alice, bob
}

// online logs in and sends presence with XEP-0115 caps advertising
// feats, answering the server's disco#info query; it returns once the
// presence was reflected.
func online(t *testing.T, ts *testserver.TS, user, resource string, feats []string) *testserver.Client {
	t.Helper()
	c := ts.Login(t, user, password, resource)
	feats = append([]string{nsDiscoInfo, nsCaps}, feats...)
	sorted := slices.Clone(feats)
	slices.Sort(sorted)
	sum := sha1.Sum([]byte("client/pc//test<" + strings.Join(sorted, "<") + "<"))
	ver := base64.StdEncoding.EncodeToString(sum[:])
	c.Send("<presence><c xmlns='%s' hash='sha-1' node='%s' ver='%s'/></presence>", nsCaps, capsNode, ver)
	for {
		el := c.Expect(func(el *xml.Element) bool {
			return (el.Local == "presence" && el.Attr("from") == c.JID) ||
				(el.Local == "iq" && el.Attr("type") == "get" && el.Child(nsDiscoInfo, "query") != nil)
		})
		if el.Local == "presence" {
			return c
		}
		var b strings.Builder
		for _, f := range feats {
			b.WriteString("<feature var='" + f + "'/>")
		}
		c.Send("<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'><identity category='client' type='pc' name='test'/>%s</query></iq>",
			el.Attr("id"), el.Attr("from"), nsDiscoInfo, el.Child(nsDiscoInfo, "query").Attr("node"), b.String())
	}
}

func publish(t *testing.T, c *testserver.Client, node, id, payload string) {
	t.Helper()
	r := c.IQ("set", "", "<pubsub xmlns='"+pubsub.NS+"'><publish node='"+node+"'><item id='"+id+"'>"+payload+"</item></publish></pubsub>")
	if r.Attr("type") != "result" {
		t.Fatalf("publish to %s: %s", node, r)
	}
}

func isMetadataEvent(el *xml.Element) bool {
	if el.Local != "message" || el.Attr("from") != "alice@localhost" {
		return false
	}
	ev := el.Child(pubsub.NSEvent, "event")
	return ev != nil && ev.Child(pubsub.NSEvent, "items") != nil &&
		ev.Child(pubsub.NSEvent, "items").Attr("node") == avatarconv.NSMetadata
}

// expectNoEvent checks that c got no further metadata event: whatever the
// server queued before the ping's answer arrives before it.
func expectNoEvent(t *testing.T, c *testserver.Client) {
	t.Helper()
	id := "none-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.Send("<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>", id)
	el := c.Expect(func(el *xml.Element) bool {
		return isMetadataEvent(el) || (el.Local == "iq" && el.Attr("id") == id)
	})
	if el.Local == "message" {
		t.Fatalf("a second metadata event (a conversion loop?): %s", el)
	}
}

// photoOf returns the x/photo of a presence, and whether it had one.
func photoOf(el *xml.Element) (string, bool) {
	x := el.Child(avatarconv.NSUpdate, "x")
	if x == nil || x.Child(avatarconv.NSUpdate, "photo") == nil {
		return "", false
	}
	return x.ChildText(avatarconv.NSUpdate, "photo"), true
}

func parse(t *testing.T, b []byte) *xml.Element {
	t.Helper()
	el, err := xml.ParseElement(b, xml.Limits{MaxStanzaBytes: 1 << 20, MaxDepth: 16, MaxAttrs: 16}, "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func countItems(t *testing.T, ts *testserver.TS, node string) int {
	t.Helper()
	items, err := ts.Store().PubSub().Items(context.Background(), "alice@localhost", node, 0)
	if err != nil {
		t.Fatalf("items of %s: %v", node, err)
	}
	return len(items)
}

// TestPEPToVCard (XEP-0398 §3.1): an avatar published with XEP-0084 is what
// a contact reads as the vCard PHOTO, and the conversion publishes
// nothing back.
func TestPEPToVCard(t *testing.T) {
	ts, alice, bob := setup(t)
	id, n := pngHash(t)
	alice.IQ("set", "", "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>")
	publish(t, alice, avatarconv.NSData, id, "<data xmlns='urn:xmpp:avatar:data'>"+png+"</data>")
	publish(t, alice, avatarconv.NSMetadata, id, "<metadata xmlns='urn:xmpp:avatar:metadata'>"+
		"<info id='0000000000000000000000000000000000000000' type='image/png' bytes='9' url='https://example.org/a.png'/>"+
		"<info id='"+id+"' type='image/png' bytes='"+strconv.Itoa(n)+"'/></metadata>")
	bob.Expect(isMetadataEvent)
	r := bob.IQ("get", "alice@localhost", "<vCard xmlns='vcard-temp'/>")
	card := r.Child("vcard-temp", "vCard")
	if card == nil || card.ChildText("vcard-temp", "FN") != "Alice" {
		t.Fatalf("vCard lost its other fields: %s", r)
	}
	photo := card.Child("vcard-temp", "PHOTO")
	if photo == nil || photo.ChildText("vcard-temp", "TYPE") != "image/png" || photo.ChildText("vcard-temp", "BINVAL") != png {
		t.Fatalf("vCard PHOTO: %s", r)
	}
	expectNoEvent(t, bob)
	if d, m := countItems(t, ts, avatarconv.NSData), countItems(t, ts, avatarconv.NSMetadata); d != 1 || m != 1 {
		t.Fatalf("data items %d, metadata items %d, want one each", d, m)
	}

	// Data that does not match its ID is not converted.
	publish(t, alice, avatarconv.NSData, "1111111111111111111111111111111111111111", "<data xmlns='urn:xmpp:avatar:data'>AAAA</data>")
	publish(t, alice, avatarconv.NSMetadata, "1111111111111111111111111111111111111111", "<metadata xmlns='urn:xmpp:avatar:metadata'>"+
		"<info id='1111111111111111111111111111111111111111' type='image/png' bytes='3'/></metadata>")
	bob.Expect(isMetadataEvent)
	if r := bob.IQ("get", "alice@localhost", "<vCard xmlns='vcard-temp'/>"); !strings.Contains(r.String(), png) {
		t.Fatalf("a mismatching avatar replaced the PHOTO: %s", r)
	}

	// Disabling the avatar (empty metadata, XEP-0084 §4.5) removes the PHOTO.
	publish(t, alice, avatarconv.NSMetadata, "off", "<metadata xmlns='urn:xmpp:avatar:metadata'/>")
	bob.Expect(isMetadataEvent)
	r = bob.IQ("get", "alice@localhost", "<vCard xmlns='vcard-temp'/>")
	if card := r.Child("vcard-temp", "vCard"); card == nil || card.Child("vcard-temp", "PHOTO") != nil || card.ChildText("vcard-temp", "FN") != "Alice" {
		t.Fatalf("vCard after disabling the avatar: %s", r)
	}
}

// TestVCardToPEP (XEP-0398 §3.2): a PHOTO set through vcard-temp reaches a
// contact interested in avatar metadata, with the data published under the
// image's SHA-1; the vCard stays as the client set it (one write), and one
// event goes out (no loop).
func TestVCardToPEP(t *testing.T) {
	ts, alice, bob := setup(t)
	id, n := pngHash(t)
	set := "<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>" + png + "</BINVAL></PHOTO></vCard>"
	if r := alice.IQ("set", "", set); r.Attr("type") != "result" {
		t.Fatalf("vCard set: %s", r)
	}
	ev := bob.Expect(isMetadataEvent)
	info := ev.Child(pubsub.NSEvent, "event").Child(pubsub.NSEvent, "items").Child(pubsub.NSEvent, "item").
		Child(avatarconv.NSMetadata, "metadata").Child(avatarconv.NSMetadata, "info")
	if info == nil || info.Attr("id") != id || info.Attr("type") != "image/png" || info.Attr("bytes") != strconv.Itoa(n) ||
		info.Attr("width") != "1" || info.Attr("height") != "1" {
		t.Fatalf("metadata event: %s", ev)
	}
	r := bob.IQ("get", "alice@localhost", "<pubsub xmlns='"+pubsub.NS+"'><items node='"+avatarconv.NSData+"'><item id='"+id+"'/></items></pubsub>")
	if !strings.Contains(r.String(), png) {
		t.Fatalf("avatar data: %s", r)
	}
	expectNoEvent(t, bob)
	stored, err := ts.Store().VCards().Get(context.Background(), "alice@localhost")
	if err != nil {
		t.Fatal(err)
	}
	if want := parse(t, []byte(set)).String(); parse(t, stored).String() != want {
		t.Fatalf("stored vCard %s, want the client's %s", stored, want)
	}
	if d, m := countItems(t, ts, avatarconv.NSData), countItems(t, ts, avatarconv.NSMetadata); d != 1 || m != 1 {
		t.Fatalf("data items %d, metadata items %d, want one each", d, m)
	}
	// The same photo again publishes nothing.
	alice.IQ("set", "", set)
	expectNoEvent(t, bob)
}

// TestPresenceHash (XEP-0398 §4): available presence carries the hash of
// the current avatar, also to the sender's own resources, replacing what a
// client put there, except an empty <photo/>; and the feature is announced.
func TestPresenceHash(t *testing.T) {
	ts, alice, bob := setup(t)
	id, _ := pngHash(t)
	// Each presence has its own status, so that earlier ones (the answer
	// to bob's probe) are not taken for it.
	isAlice := func(status string) func(*xml.Element) bool {
		return func(el *xml.Element) bool {
			return el.Local == "presence" && el.Attr("from") == alice.JID && el.ChildText("", "status") == status
		}
	}

	alice.Send("<presence><status>1</status></presence>")
	if h, ok := photoOf(bob.Expect(isAlice("1"))); ok {
		t.Fatalf("no avatar yet: photo %q added", h)
	}

	publish(t, alice, avatarconv.NSData, id, "<data xmlns='urn:xmpp:avatar:data'>"+png+"</data>")
	publish(t, alice, avatarconv.NSMetadata, id, "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='"+id+"' type='image/png' bytes='70'/></metadata>")
	bob.Expect(isMetadataEvent)

	alice.Send("<presence><status>2</status><x xmlns='vcard-temp:x:update'><photo>abc</photo></x></presence>")
	for _, c := range []*testserver.Client{bob, alice} {
		el := c.Expect(isAlice("2"))
		if h, _ := photoOf(el); h != id || len(el.Child(avatarconv.NSUpdate, "x").Elements()) != 1 {
			t.Fatalf("%s got %s, want photo %s", c.JID, el, id)
		}
	}
	alice.Send("<presence><status>3</status><x xmlns='vcard-temp:x:update'><photo/></x></presence>")
	if h, ok := photoOf(bob.Expect(isAlice("3"))); !ok || h != "" {
		t.Fatalf("an empty photo was replaced: %q", h)
	}

	// A resource that comes online later learns alice's presence, stored
	// before the avatar changed or not, with the current hash.
	alice.Send("<presence><status>4</status></presence>")
	bob.Expect(isAlice("4"))
	publish(t, alice, avatarconv.NSMetadata, "off", "<metadata xmlns='urn:xmpp:avatar:metadata'/>")
	bob.Expect(isMetadataEvent)
	publish(t, alice, avatarconv.NSMetadata, id, "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='"+id+"' type='image/png' bytes='70'/></metadata>")
	bob.Expect(isMetadataEvent)
	bob2 := online(t, ts, "bob", "r2", nil)
	if h, _ := photoOf(bob2.Expect(isAlice("4"))); h != id {
		t.Fatalf("presence sent to a new resource carries photo %q, want %s", h, id)
	}
	r := alice.IQ("get", "alice@localhost", "<query xmlns='"+nsDiscoInfo+"'/>")
	if !strings.Contains(r.String(), "var='"+avatarconv.NS+"'") {
		t.Fatalf("disco#info of the account lacks %s: %s", avatarconv.NS, r)
	}
}
