package pep_test

import (
	"strings"
	"testing"

	"parley/internal/pubsub"
)

const (
	nodeAvatarData = "urn:xmpp:avatar:data"
	// A 1x1 PNG, base64 (XEP-0084 §4.1 data), and an item ID (clients use the
	// data's SHA-1; the server does not check it).
	avatarPNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	avatarID  = "8b5a3c4e0ae2d6a52c54bd2d4da3f1d8f5b8c5a1"
)

func publishOptions(fields ...string) string {
	var b strings.Builder
	b.WriteString("<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + pubsub.NSPublishOptions + "</value></field>")
	for i := 0; i+1 < len(fields); i += 2 {
		b.WriteString("<field var='" + fields[i] + "'><value>" + fields[i+1] + "</value></field>")
	}
	return b.String() + "</x></publish-options>"
}

// TestAvatar (XEP-0084): the data goes to its own node, the metadata to
// another; a contact interested in the metadata gets its event (and not
// the data's), then fetches the data by the ID the metadata names.
func TestAvatar(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	mutual(t, ts, "alice", "bob")
	alice := online(t, ts, "alice", "r", features(), nil)
	bob := online(t, ts, "bob", "r", features(nodeAvatar), nil)

	publish(t, alice, nodeAvatarData, avatarID, "<data xmlns='urn:xmpp:avatar:data'>"+avatarPNG+"</data>")
	publish(t, alice, nodeAvatar, avatarID, "<metadata xmlns='urn:xmpp:avatar:metadata'><info id='"+avatarID+
		"' type='image/png' bytes='70' height='1' width='1'/></metadata>")
	ev := bob.Expect(isEvent("alice@localhost", nodeAvatar))
	if !strings.Contains(ev.String(), "id='"+avatarID+"'") || !strings.Contains(ev.String(), "type='image/png'") {
		t.Fatalf("metadata event: %s", ev)
	}
	expectNone(t, bob, "alice@localhost", nodeAvatarData)
	r := pubsubIQ(bob, "get", "alice@localhost", false, "<items node='"+nodeAvatarData+"'><item id='"+avatarID+"'/></items>")
	if !strings.Contains(r.String(), avatarPNG) {
		t.Fatalf("avatar data: %s", r)
	}
}

// TestPrivatePEP (XEP-0223): a node published with persist_items and the
// whitelist access model keeps its items for the owner alone: the owner's
// resources are notified and read them, contacts (even interested ones)
// get neither.
func TestPrivatePEP(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	mutual(t, ts, "alice", "bob")
	const node = "urn:xmpp:private-data:test"
	alice := online(t, ts, "alice", "r", features(), nil)
	alice2 := online(t, ts, "alice", "r2", features(node), nil)
	bob := online(t, ts, "bob", "r", features(node), nil)
	r := pubsubIQ(alice, "set", "", false, "<publish node='"+node+"'><item id='current'><secret xmlns='urn:x'>42</secret></item></publish>"+
		publishOptions("pubsub#persist_items", "true", "pubsub#access_model", "whitelist"))
	if r.Attr("type") != "result" {
		t.Fatalf("publish: %s", r)
	}
	alice2.Expect(isEvent("alice@localhost", node))
	expectNone(t, bob, "alice@localhost", node)
	if got := errorOf(pubsubIQ(bob, "get", "alice@localhost", false, "<items node='"+node+"'/>")); got != "not-allowed/closed-node" {
		t.Fatalf("contact reads a private node: %s", got)
	}
	if r := pubsubIQ(alice2, "get", "", false, "<items node='"+node+"'/>"); !strings.Contains(r.String(), ">42<") {
		t.Fatalf("owner reads: %s", r)
	}
	// Discovery shows the node to its owner only.
	if r := bob.IQ("get", "alice@localhost", "<query xmlns='http://jabber.org/protocol/disco#items'/>"); strings.Contains(r.String(), node) {
		t.Fatalf("private node discovered by a contact: %s", r)
	}
	// A new bob resource is not sent the last item either.
	bob2 := online(t, ts, "bob", "r2", features(node), nil)
	expectNone(t, bob2, "alice@localhost", node)
}

// TestOMEMO: the OMEMO device lists and bundles (legacy and
// urn:xmpp:omemo:2) published with the open access model are fetched by
// someone who is not a contact, who may subscribe and then hears of a new
// device list.
func TestOMEMO(t *testing.T) {
	ts := start(t, "", "alice", "carol")
	alice := online(t, ts, "alice", "r", features(), nil)
	carol := ts.Login(t, "carol", password, "r")
	open := publishOptions("pubsub#access_model", "open")
	for _, p := range []struct{ node, id, payload string }{
		{"eu.siacs.conversations.axolotl.devicelist", "current", "<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/></list>"},
		{"eu.siacs.conversations.axolotl.bundles:1", "current", "<bundle xmlns='eu.siacs.conversations.axolotl'><identityKey>AAAA</identityKey></bundle>"},
		{"urn:xmpp:omemo:2:devices", "current", "<devices xmlns='urn:xmpp:omemo:2'><device id='1'/></devices>"},
		{"urn:xmpp:omemo:2:bundles", "1", "<bundle xmlns='urn:xmpp:omemo:2'><ik>AAAA</ik></bundle>"},
	} {
		r := pubsubIQ(alice, "set", "", false, "<publish node='"+p.node+"'><item id='"+p.id+"'>"+p.payload+"</item></publish>"+open)
		if r.Attr("type") != "result" {
			t.Fatalf("publish %s: %s", p.node, r)
		}
		r = pubsubIQ(carol, "get", "alice@localhost", false, "<items node='"+p.node+"'/>")
		if r.Attr("type") != "result" || !strings.Contains(r.String(), "id='"+p.id+"'") {
			t.Fatalf("non-contact fetches %s: %s", p.node, r)
		}
	}
	r := pubsubIQ(carol, "set", "alice@localhost", false, "<subscribe node='eu.siacs.conversations.axolotl.devicelist' jid='"+carol.JID+"'/>")
	if r.Attr("type") != "result" {
		t.Fatalf("subscribe: %s", r)
	}
	carol.Expect(isEvent("alice@localhost", "eu.siacs.conversations.axolotl.devicelist")) // the last item, on subscription
	pubsubIQ(alice, "set", "", false, "<publish node='eu.siacs.conversations.axolotl.devicelist'><item id='current'><list xmlns='eu.siacs.conversations.axolotl'><device id='1'/><device id='2'/></list></item></publish>"+open)
	ev := carol.Expect(isEvent("alice@localhost", "eu.siacs.conversations.axolotl.devicelist"))
	if !strings.Contains(ev.String(), "id='2'") {
		t.Fatalf("explicit subscriber's event: %s", ev)
	}
	if ev.Child(pubsub.NSAddress, "addresses") != nil {
		t.Fatalf("replyto sent to a non-contact: %s", ev)
	}
}

// TestBlockedContact: a contact the account blocks (XEP-0191) gets no
// events and no last items (XEP-0163 §4.3.3 point 3), although it keeps
// its presence subscription.
func TestBlockedContact(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	mutual(t, ts, "alice", "bob")
	alice := online(t, ts, "alice", "r", features(), nil)
	bob := online(t, ts, "bob", "r", features(nodeTune), nil)
	if r := alice.IQ("set", "", "<block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></block>"); r.Attr("type") != "result" {
		t.Fatalf("block: %s", r)
	}
	publish(t, alice, nodeTune, "1", tune)
	expectNone(t, bob, "alice@localhost", nodeTune)
	bob2 := online(t, ts, "bob", "r2", features(nodeTune), nil)
	expectNone(t, bob2, "alice@localhost", nodeTune)
}
