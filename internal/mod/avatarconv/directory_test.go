package avatarconv_test

import (
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/internal/directory/ldaptest"
	"parley/internal/mod/avatarconv"
	"parley/internal/pubsub"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// TestMain says in one line when the directory tests skip for want of slapd.
func TestMain(m *testing.M) { os.Exit(ldaptest.Main(m)) }

// fixturePhoto is alice's jpegPhoto in the ldaptest fixture.
const fixturePhoto = "/9j/4AAQSkZJRgABAQAAAQABAAD/2Q=="

func sha1Hex(t *testing.T, b64 string) (string, int) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:]), len(b)
}

// dirServer starts slapd and a directory host polling it every second,
// with extra appended to the [directory] section.
func dirServer(t *testing.T, extra string) (*ldaptest.Server, *testserver.TS) {
	t.Helper()
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, fmt.Sprintf(`[[host]]
domain = "example.test"
accounts = "directory"
%spoll_interval = "1s"
%s`, srv.DirectoryTOML(), extra))
	return srv, ts
}

// metadataInfo returns the <info/> of the account's current metadata item
// as its owner reads it, nil when there is none (no node, no item, or
// avatar disabled).
func metadataInfo(t *testing.T, c *testserver.Client) *xml.Element {
	t.Helper()
	r := c.IQ("get", "", "<pubsub xmlns='"+pubsub.NS+"'><items node='"+avatarconv.NSMetadata+"' max_items='1'/></pubsub>")
	if r.Attr("type") != "result" {
		return nil
	}
	items := r.Child(pubsub.NS, "pubsub").Child(pubsub.NS, "items")
	var last *xml.Element
	for _, it := range items.Elements() {
		last = it
	}
	if last == nil {
		return nil
	}
	md := last.Child(avatarconv.NSMetadata, "metadata")
	if md == nil {
		return nil
	}
	return md.Child(avatarconv.NSMetadata, "info")
}

// waitMetadata polls the owner's metadata until ok accepts its <info/>
// (nil: none); the directory is polled every second.
func waitMetadata(t *testing.T, c *testserver.Client, what string, ok func(info *xml.Element) bool) *xml.Element {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info := metadataInfo(t, c)
		if ok(info) {
			return info
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: metadata info is %v", what, info)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func expectForbidden(t *testing.T, c *testserver.Client, what, payload string) {
	t.Helper()
	r := c.IQ("set", "", payload)
	if testserver.ErrorCondition(r) != "forbidden" || !strings.Contains(r.String(), "directory") {
		t.Fatalf("%s: %s, want forbidden with a text naming the directory", what, r)
	}
}

// TestDirectoryAvatarReadOnly: with photo_data readonly (the default) the
// directory's jpegPhoto is the user's XEP-0084 avatar (data, metadata
// with SHA-1 id, type, bytes, and size where the image tells it), the
// user cannot change the avatar nodes nor the vCard PHOTO, and changes in
// the directory reach PEP, the vCard and presence.
func TestDirectoryAvatarReadOnly(t *testing.T) {
	srv, ts := dirServer(t, "")
	alice := ts.Online(t, "alice", "alice-pass", "r1")
	bob := ts.Online(t, "bob", "bob-pass", "r1")
	dirID, dirLen := sha1Hex(t, fixturePhoto)

	info := waitMetadata(t, alice, "the directory photo", func(i *xml.Element) bool { return i != nil && i.Attr("id") == dirID })
	if info.Attr("type") != "image/jpeg" || info.Attr("bytes") != strconv.Itoa(dirLen) {
		t.Fatalf("metadata of the directory photo: %s", info)
	}
	r := alice.IQ("get", "", "<pubsub xmlns='"+pubsub.NS+"'><items node='"+avatarconv.NSData+"'><item id='"+dirID+"'/></items></pubsub>")
	if !strings.Contains(r.String(), fixturePhoto) {
		t.Fatalf("avatar data: %s", r)
	}

	// Every change to the avatar nodes is refused; reading is not.
	pngID, _ := pngHash(t)
	for _, tc := range []struct{ what, payload string }{
		{"publish data", "<pubsub xmlns='" + pubsub.NS + "'><publish node='" + avatarconv.NSData + "'><item id='" + pngID + "'><data xmlns='urn:xmpp:avatar:data'>" + png + "</data></item></publish></pubsub>"},
		{"publish metadata", "<pubsub xmlns='" + pubsub.NS + "'><publish node='" + avatarconv.NSMetadata + "'><item id='" + pngID + "'><metadata xmlns='urn:xmpp:avatar:metadata'><info id='" + pngID + "' type='image/png' bytes='70'/></metadata></item></publish></pubsub>"},
		{"disable", "<pubsub xmlns='" + pubsub.NS + "'><publish node='" + avatarconv.NSMetadata + "'><item id='x'><metadata xmlns='urn:xmpp:avatar:metadata'/></item></publish></pubsub>"},
		{"retract", "<pubsub xmlns='" + pubsub.NS + "'><retract node='" + avatarconv.NSMetadata + "'><item id='" + dirID + "'/></retract></pubsub>"},
		{"create", "<pubsub xmlns='" + pubsub.NS + "'><create node='" + avatarconv.NSData + "'/></pubsub>"},
		{"configure", "<pubsub xmlns='" + pubsub.NSOwner + "'><configure node='" + avatarconv.NSMetadata + "'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + pubsub.NSNodeConfig + "</value></field><field var='pubsub#access_model'><value>whitelist</value></field></x></configure></pubsub>"},
		{"purge", "<pubsub xmlns='" + pubsub.NSOwner + "'><purge node='" + avatarconv.NSData + "'/></pubsub>"},
		{"delete", "<pubsub xmlns='" + pubsub.NSOwner + "'><delete node='" + avatarconv.NSMetadata + "'/></pubsub>"},
	} {
		expectForbidden(t, alice, tc.what, tc.payload)
	}
	if info := metadataInfo(t, alice); info == nil || info.Attr("id") != dirID {
		t.Fatalf("the avatar changed after refusals: %v", info)
	}
	// Another user's nodes stay untouched by the guard's reach: a
	// non-avatar node publishes as usual.
	publish(t, alice, "http://jabber.org/protocol/tune", "current", "<tune xmlns='http://jabber.org/protocol/tune'/>")

	// The vCard PHOTO is the directory's too.
	r = alice.IQ("set", "", "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>"+png+"</BINVAL></PHOTO></vCard>")
	if testserver.ErrorCondition(r) != "not-allowed" {
		t.Fatalf("vCard PHOTO set: %s, want not-allowed", r)
	}
	r = bob.IQ("get", "alice@example.test", "<vCard xmlns='vcard-temp'/>")
	if got := r.Child("vcard-temp", "vCard").Child("vcard-temp", "PHOTO").ChildText("vcard-temp", "BINVAL"); got != fixturePhoto {
		t.Fatalf("vCard PHOTO: %s", r)
	}

	// Presence advertises the directory photo.
	alice.Send("<presence><status>dir</status></presence>")
	if h, _ := photoOf(alice.ExpectStanza("presence", "from="+alice.JID)); h != dirID {
		t.Fatalf("presence photo %q, want %s", h, dirID)
	}

	// The directory changes: the avatar follows (PNG: size known).
	srv.Modify(t, "dn: uid=alice,"+ldaptest.PeopleBase+"\nchangetype: modify\nreplace: jpegPhoto\njpegPhoto:: "+png+"\n")
	info = waitMetadata(t, alice, "the new directory photo", func(i *xml.Element) bool { return i != nil && i.Attr("id") == pngID })
	if info.Attr("type") != "image/png" || info.Attr("width") != "1" || info.Attr("height") != "1" {
		t.Fatalf("metadata of the new photo: %s", info)
	}
	alice.Send("<presence><status>new</status></presence>")
	if h, _ := photoOf(alice.ExpectStanza("presence", "from="+alice.JID)); h != pngID {
		t.Fatalf("presence photo %q after the change, want %s", h, pngID)
	}

	// The photo is removed from the directory: the avatar is disabled.
	srv.Modify(t, "dn: uid=alice,"+ldaptest.PeopleBase+"\nchangetype: modify\ndelete: jpegPhoto\n")
	waitMetadata(t, alice, "no directory photo", func(i *xml.Element) bool { return i == nil })
	r = alice.IQ("get", "", "<pubsub xmlns='"+pubsub.NS+"'><items node='"+avatarconv.NSMetadata+"' max_items='1'/></pubsub>")
	if !strings.Contains(r.String(), "<metadata xmlns='urn:xmpp:avatar:metadata'/>") && !strings.Contains(r.String(), `<metadata xmlns="urn:xmpp:avatar:metadata"/>`) && !strings.Contains(r.String(), "<metadata xmlns='urn:xmpp:avatar:metadata'></metadata>") {
		t.Fatalf("the avatar is not disabled with empty metadata (XEP-0084 §4.5): %s", r)
	}
}

// TestDirectoryAvatarUpdate: with photo_data in update mode the directory
// photo is published too, but the user may publish an avatar, which is
// written to the directory and not published back by the next poll.
func TestDirectoryAvatarUpdate(t *testing.T) {
	srv, ts := dirServer(t, "[directory.profile.photo_data]\nmode = \"update\"\n")
	alice := ts.Online(t, "alice", "alice-pass", "r1")
	dirID, _ := sha1Hex(t, fixturePhoto)
	waitMetadata(t, alice, "the directory photo", func(i *xml.Element) bool { return i != nil && i.Attr("id") == dirID })

	id, _ := pngHash(t)
	publish(t, alice, avatarconv.NSData, id, "<data xmlns='urn:xmpp:avatar:data'>"+png+"</data>")
	publish(t, alice, avatarconv.NSMetadata, id, "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='"+id+"' type='image/png' bytes='70'/></metadata>")
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(srv.Search(t, ldaptest.PeopleBase, "(uid=alice)", "jpegPhoto"), "jpegPhoto:: "+png) {
		if time.Now().After(deadline) {
			t.Fatalf("the user's avatar did not reach the directory:\n%s", srv.Search(t, ldaptest.PeopleBase, "(uid=alice)", "jpegPhoto"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Two polls later the avatar is still the user's item: a
	// republication by the server would carry the width and height.
	time.Sleep(2500 * time.Millisecond)
	if info := metadataInfo(t, alice); info == nil || info.Attr("id") != id || info.Attr("width") != "" {
		t.Fatalf("metadata after polls: %v", info)
	}
}
