package pep_test

import (
	"slices"
	"strings"
	"testing"

	"parley/internal/pubsub"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const (
	nodeTune   = "http://jabber.org/protocol/tune"
	nodeAvatar = "urn:xmpp:avatar:metadata"
	tune       = "<tune xmlns='http://jabber.org/protocol/tune'><title>Allegro</title></tune>"
)

// TestDisco: the account is a pubsub/pep service and announces what the
// code implements (XEP-0163 §6.1).
func TestDisco(t *testing.T) {
	ts := start(t, "", "alice")
	alice := ts.Login(t, "alice", password, "r")
	r := alice.IQ("get", "alice@localhost", "<query xmlns='"+nsDiscoInfo+"'/>")
	q := r.Child(nsDiscoInfo, "query")
	if q == nil {
		t.Fatalf("disco#info: %s", r)
	}
	pep := false
	var feats []string
	for _, el := range q.Elements() {
		switch el.Local {
		case "identity":
			pep = pep || (el.Attr("category") == "pubsub" && el.Attr("type") == "pep")
		case "feature":
			feats = append(feats, el.Attr("var"))
		}
	}
	if !pep {
		t.Errorf("no pubsub/pep identity: %s", q)
	}
	for _, f := range []string{"auto-create", "publish-options", "persistent-items", "last-published",
		"access-presence", "access-open", "access-roster", "access-whitelist", "retrieve-items", "retract-items",
		"purge-nodes", "delete-nodes", "config-node", "create-nodes", "filtered-notifications", "auto-subscribe",
		"publish", "subscribe", "create-and-configure", "config-node-max"} {
		if !slices.Contains(feats, pubsub.Feature(f)) {
			t.Errorf("account does not announce %s", pubsub.Feature(f))
		}
	}
	for _, f := range []string{pubsub.NS, pubsub.NSOwner} {
		if !slices.Contains(feats, f) {
			t.Errorf("account does not announce %s", f)
		}
	}
	if slices.Contains(feats, pubsub.Feature("access-authorize")) {
		t.Error("access-authorize announced, but not implemented")
	}

	// Node discovery (XEP-0060 §5.2–§5.5).
	publish(t, alice, nodeTune, "current", tune)
	r = alice.IQ("get", "alice@localhost", "<query xmlns='http://jabber.org/protocol/disco#items'/>")
	if !strings.Contains(r.String(), "node='"+nodeTune+"'") {
		t.Errorf("disco#items lacks the node: %s", r)
	}
	r = alice.IQ("get", "alice@localhost", "<query xmlns='"+nsDiscoInfo+"' node='"+nodeTune+"'/>")
	if s := r.String(); !strings.Contains(s, "type='leaf'") || !strings.Contains(s, pubsub.NSMetaData) {
		t.Errorf("node disco#info: %s", r)
	}
	r = alice.IQ("get", "alice@localhost", "<query xmlns='http://jabber.org/protocol/disco#items' node='"+nodeTune+"'/>")
	if !strings.Contains(r.String(), "name='current'") {
		t.Errorf("node disco#items: %s", r)
	}
}

// TestNotificationFilter: of two resources of the publisher and two of a
// contact, only those that advertised <node>+notify get the event
// (XEP-0163 §4.2); the contact's carries the publishing resource as
// replyto, the owner's does not (§4.3.1).
func TestNotificationFilter(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	mutual(t, ts, "alice", "bob")
	a1 := online(t, ts, "alice", "interested", features(nodeTune), nil)
	a2 := online(t, ts, "alice", "indifferent", features(), nil)
	b1 := online(t, ts, "bob", "interested", features(nodeTune), nil)
	b2 := online(t, ts, "bob", "nocaps", nil, nil)

	publish(t, a1, nodeTune, "current", tune)
	ev := a1.Expect(isEvent("alice@localhost", nodeTune))
	if ev.Attr("type") != "headline" || !strings.Contains(ev.String(), "<title>Allegro</title>") {
		t.Fatalf("owner's event: %s", ev)
	}
	if ev.Child(pubsub.NSAddress, "addresses") != nil {
		t.Errorf("owner's event has a replyto: %s", ev)
	}
	ev = b1.Expect(isEvent("alice@localhost", nodeTune))
	if a := ev.Child(pubsub.NSAddress, "addresses"); a == nil || !strings.Contains(a.String(), "jid='"+a1.JID+"'") {
		t.Errorf("contact's event lacks replyto %s: %s", a1.JID, ev)
	}
	expectNone(t, a2, "alice@localhost", nodeTune)
	expectNone(t, b2, "alice@localhost", nodeTune)

	// Retraction is an event too (notify_retract defaults to true).
	r := pubsubIQ(a1, "set", "", false, "<retract node='"+nodeTune+"'><item id='current'/></retract>")
	if r.Attr("type") != "result" {
		t.Fatalf("retract: %s", r)
	}
	ev = b1.Expect(isEvent("alice@localhost", nodeTune))
	if ev.Child(pubsub.NSEvent, "event").Child(pubsub.NSEvent, "items").Child(pubsub.NSEvent, "retract") == nil {
		t.Errorf("retract event: %s", ev)
	}
	expectNone(t, b2, "alice@localhost", nodeTune)
}

// TestLyingCaps: a verification string that does not match what the
// client then claims is ignored (XEP-0115 §5.4): no +notify, no events; a
// second resource advertising the same string is asked itself.
func TestLyingCaps(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	mutual(t, ts, "alice", "bob")
	alice := online(t, ts, "alice", "r", features(), nil)
	// Bob advertises the string of a client with other features but
	// answers with +notify for the tune: the answer does not hash to the
	// string (the server has not seen it before, so it asks).
	liar := online(t, ts, "bob", "liar", features("urn:x:other"), features(nodeTune))
	publish(t, alice, nodeTune, "1", tune)
	expectNone(t, liar, "alice@localhost", nodeTune)

	// The honest string for +notify is unaffected; and a string nobody
	// has verified yet is asked of the next resource that advertises it.
	liar2 := online(t, ts, "bob", "liar2", features(nodeAvatar), features(nodeAvatar, nodeTune))
	honest := ts.Login(t, "bob", password, "honest")
	honest.Send("<presence><c xmlns='%s' hash='sha-1' node='%s' ver='%s'/></presence>", nsCaps, capsNode, capsVer(features(nodeAvatar)))
	q := honest.Expect(func(el *xml.Element) bool {
		return el.Local == "iq" && el.Attr("type") == "get" && el.Child(nsDiscoInfo, "query") != nil
	})
	answerDisco(t, honest, q, features(nodeAvatar))
	honest.ExpectStanza("presence", "from="+honest.JID)
	publish(t, alice, nodeAvatar, "1", "<metadata xmlns='urn:xmpp:avatar:metadata'/>")
	honest.Expect(isEvent("alice@localhost", nodeAvatar))
	liar2.Expect(isEvent("alice@localhost", nodeAvatar)) // same string, verified by honest
	publish(t, alice, nodeTune, "2", tune)
	expectNone(t, liar2, "alice@localhost", nodeTune)
}

// TestLastItem: the last item reaches a contact's resource that becomes
// available (XEP-0163 §4.3.3), with a delay stamp, and the owner's own new
// resource; not a resource without +notify.
func TestLastItem(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	mutual(t, ts, "alice", "bob")
	alice := online(t, ts, "alice", "r", features(), nil)
	publish(t, alice, nodeTune, "current", tune)

	bob := online(t, ts, "bob", "r", features(nodeTune), nil)
	ev := bob.Expect(isEvent("alice@localhost", nodeTune))
	if ev.Child(nsDelay, "delay") == nil || !strings.Contains(ev.String(), "<title>Allegro</title>") {
		t.Fatalf("last item: %s", ev)
	}
	alice2 := online(t, ts, "alice", "r2", features(nodeTune), nil)
	alice2.Expect(isEvent("alice@localhost", nodeTune))
	bob2 := online(t, ts, "bob", "r2", features(), nil)
	expectNone(t, bob2, "alice@localhost", nodeTune)

	// send_last_published_item = never: nothing on login.
	r := pubsubIQ(alice, "set", "", true, "<configure node='"+nodeTune+"'><x xmlns='jabber:x:data' type='submit'>"+
		"<field var='pubsub#send_last_published_item'><value>never</value></field></x></configure>")
	if r.Attr("type") != "result" {
		t.Fatalf("configure: %s", r)
	}
	bob3 := online(t, ts, "bob", "r3", features(nodeTune), nil)
	expectNone(t, bob3, "alice@localhost", nodeTune)
}

// TestLastItemOnSubscription: a contact that gains a presence
// subscription is subscribed automatically and gets the last item
// (XEP-0163 §4.1, XEP-0060 §6.1.7).
func TestLastItemOnSubscription(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	alice := online(t, ts, "alice", "r", features(), nil)
	publish(t, alice, nodeAvatar, "abc", "<metadata xmlns='urn:xmpp:avatar:metadata'/>")
	bob := online(t, ts, "bob", "r", features(nodeAvatar), nil)
	expectNone(t, bob, "alice@localhost", nodeAvatar)

	bob.Send("<presence type='subscribe' to='alice@localhost'/>")
	alice.ExpectStanza("presence", "type=subscribe", "from=bob@localhost")
	alice.Send("<presence type='subscribed' to='bob@localhost'/>")
	ev := bob.Expect(isEvent("alice@localhost", nodeAvatar))
	if !strings.Contains(ev.String(), "id='abc'") {
		t.Fatalf("last item on subscription: %s", ev)
	}
}

// TestPublishRules: publishing to another account's service is forbidden,
// a payload over limits.max_pep_item_bytes is not-acceptable with
// payload-too-big, and the node count is bounded by limits.max_pep_nodes.
func TestPublishRules(t *testing.T) {
	ts := start(t, "[limits]\nmax_pep_nodes = 2\nmax_pep_item_bytes = 2048\n", "alice", "bob")
	mutual(t, ts, "alice", "bob")
	alice := ts.Login(t, "alice", password, "r")
	bob := ts.Login(t, "bob", password, "r")
	publish(t, alice, nodeTune, "1", tune)
	for _, tc := range []struct {
		name string
		c    *testserver.Client
		to   string
		node string
		body string
		want string
	}{
		{"someone else's service", bob, "alice@localhost", nodeTune, tune, "forbidden"},
		{"someone else's new node", bob, "alice@localhost", "urn:x:new", tune, "forbidden"},
		{"too big", alice, "", nodeTune, "<tune xmlns='http://jabber.org/protocol/tune'><title>" + strings.Repeat("x", 2100) + "</title></tune>", "not-acceptable/payload-too-big"},
		{"second node", alice, "", nodeAvatar, "<metadata xmlns='urn:xmpp:avatar:metadata'/>", ""},
		{"third node", alice, "", "urn:x:third", "<x xmlns='urn:x'/>", "resource-constraint/max-nodes-exceeded"},
	} {
		r := pubsubIQ(tc.c, "set", tc.to, false, "<publish node='"+tc.node+"'><item id='2'>"+tc.body+"</item></publish>")
		if got := errorOf(r); got != tc.want {
			t.Errorf("%s: %q, want %q (%s)", tc.name, got, tc.want, r)
		}
	}
}

// TestOperations walks every pubsub operation over XMPP with its success
// and error cases (XEP-0060 §6–§8), from the owner and from others.
func TestOperations(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	mutual(t, ts, "alice", "bob") // carol is nobody to alice
	alice := ts.Login(t, "alice", password, "r")
	bob := ts.Login(t, "bob", password, "r")
	carol := ts.Login(t, "carol", password, "r")
	clients := map[string]*testserver.Client{"alice": alice, "bob": bob, "carol": carol}
	form := func(fields ...string) string {
		var b strings.Builder
		b.WriteString("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + pubsub.NSNodeConfig + "</value></field>")
		for i := 0; i+1 < len(fields); i += 2 {
			b.WriteString("<field var='" + fields[i] + "'><value>" + fields[i+1] + "</value></field>")
		}
		return b.String() + "</x>"
	}
	options := strings.NewReplacer("<x xmlns", "<publish-options><x xmlns", "</x>", "</x></publish-options>", pubsub.NSNodeConfig, pubsub.NSPublishOptions)
	const a = "alice@localhost"
	for _, tc := range []struct {
		name, who, typ, to string
		owner              bool
		inner              string
		want               string // error, "" for a result
		contains           string // in the result
	}{
		{"create", "alice", "set", "", false, "<create node='n'/>", "", ""},
		{"create again", "alice", "set", "", false, "<create node='n'/>", "conflict", ""},
		{"create without node", "alice", "set", "", false, "<create/>", "not-acceptable/nodeid-required", ""},
		{"create on another's", "bob", "set", a, false, "<create node='x'/>", "forbidden", ""},
		{"create and configure", "alice", "set", "", false, "<create node='open'/><configure>" + form("pubsub#access_model", "open", "pubsub#max_items", "max") + "</configure>", "", ""},
		{"configure get", "alice", "get", "", true, "<configure node='n'/>", "", "pubsub#access_model"},
		{"configure get by another", "bob", "get", a, true, "<configure node='n'/>", "forbidden", ""},
		{"configure set", "alice", "set", "", true, "<configure node='n'>" + form("pubsub#max_items", "3") + "</configure>", "", ""},
		{"configure unknown option", "alice", "set", "", true, "<configure node='n'>" + form("pubsub#colour", "red") + "</configure>", "not-acceptable", ""},
		{"configure missing node", "alice", "set", "", true, "<configure node='zz'>" + form("pubsub#max_items", "3") + "</configure>", "item-not-found", ""},
		{"default", "alice", "get", "", true, "<default/>", "", "pubsub#send_last_published_item"},
		{"publish", "alice", "set", "", false, "<publish node='n'><item id='1'><x xmlns='urn:x'>one</x></item></publish>", "", "id='1'"},
		{"publish generated id", "alice", "set", "", false, "<publish node='n'><item><x xmlns='urn:x'>two</x></item></publish>", "", "<item id="},
		{"publish no payload", "alice", "set", "", false, "<publish node='n'><item id='e'/></publish>", "bad-request/payload-required", ""},
		{"publish two payloads", "alice", "set", "", false, "<publish node='n'><item id='e'><x xmlns='urn:x'/><y xmlns='urn:x'/></item></publish>", "bad-request/invalid-payload", ""},
		{"publish-options met", "alice", "set", "", false, "<publish node='open'><item id='o'><x xmlns='urn:x'/></item></publish>" + options.Replace(form("pubsub#access_model", "open")), "", ""},
		{"publish-options not met", "alice", "set", "", false, "<publish node='n'><item id='e'><x xmlns='urn:x'/></item></publish>" + options.Replace(form("pubsub#access_model", "open")), "conflict/precondition-not-met", ""},
		{"publish-options auto-create", "alice", "set", "", false, "<publish node='wl'><item id='w'><x xmlns='urn:x'/></item></publish>" + options.Replace(form("pubsub#access_model", "whitelist")), "", ""},
		{"items", "alice", "get", "", false, "<items node='n'/>", "", "<x xmlns='urn:x'>one</x>"},
		{"items max_items", "alice", "get", "", false, "<items node='n' max_items='1'/>", "", "two"},
		{"items by id", "alice", "get", "", false, "<items node='n'><item id='1'/></items>", "", "one"},
		{"items missing node", "alice", "get", "", false, "<items node='zz'/>", "item-not-found", ""},
		{"items presence: contact", "bob", "get", a, false, "<items node='n'/>", "", "one"},
		{"items presence: stranger", "carol", "get", a, false, "<items node='n'/>", "not-authorized/presence-subscription-required", ""},
		{"items open: stranger", "carol", "get", a, false, "<items node='open'/>", "", "id='o'"},
		{"items whitelist: contact", "bob", "get", a, false, "<items node='wl'/>", "not-allowed/closed-node", ""},
		{"items whitelist: owner", "alice", "get", "", false, "<items node='wl'/>", "", "id='w'"},
		{"subscribe", "carol", "set", a, false, "<subscribe node='open' jid='carol@localhost'/>", "", "subscription='subscribed'"},
		{"subscribe someone else", "carol", "set", a, false, "<subscribe node='open' jid='bob@localhost'/>", "bad-request/invalid-jid", ""},
		{"subscribe presence node", "carol", "set", a, false, "<subscribe node='n' jid='carol@localhost'/>", "not-authorized/presence-subscription-required", ""},
		{"subscriptions", "carol", "get", a, false, "<subscriptions/>", "", "node='open'"},
		{"owner subscriptions", "alice", "get", "", true, "<subscriptions node='open'/>", "", "jid='carol@localhost'"},
		{"unsubscribe", "carol", "set", a, false, "<unsubscribe node='open' jid='carol@localhost'/>", "", ""},
		{"unsubscribe again", "carol", "set", a, false, "<unsubscribe node='open' jid='carol@localhost'/>", "unexpected-request/not-subscribed", ""},
		{"affiliations set", "alice", "set", "", true, "<affiliations node='wl'><affiliation jid='bob@localhost' affiliation='member'/></affiliations>", "", ""},
		{"items whitelist: member", "bob", "get", a, false, "<items node='wl'/>", "", "id='w'"},
		{"affiliations get", "alice", "get", "", true, "<affiliations node='wl'/>", "", "affiliation='member'"},
		{"own affiliations", "bob", "get", a, false, "<affiliations/>", "", "node='wl'"},
		{"retract by another", "bob", "set", a, false, "<retract node='n'><item id='1'/></retract>", "forbidden", ""},
		{"retract", "alice", "set", "", false, "<retract node='n'><item id='1'/></retract>", "", ""},
		{"retract missing item", "alice", "set", "", false, "<retract node='n'><item id='1'/></retract>", "item-not-found", ""},
		{"retract without item", "alice", "set", "", false, "<retract node='n'/>", "bad-request/item-required", ""},
		{"purge by another", "bob", "set", a, true, "<purge node='n'/>", "forbidden", ""},
		{"purge", "alice", "set", "", true, "<purge node='n'/>", "", ""},
		{"items after purge", "alice", "get", "", false, "<items node='n'/>", "", ""},
		{"delete by another", "bob", "set", a, true, "<delete node='n'/>", "forbidden", ""},
		{"delete", "alice", "set", "", true, "<delete node='n'/>", "", ""},
		{"delete again", "alice", "set", "", true, "<delete node='n'/>", "item-not-found", ""},
		{"subscription options", "carol", "get", a, false, "<options node='open' jid='carol@localhost'/>", "feature-not-implemented/unsupported", ""},
	} {
		r := pubsubIQ(clients[tc.who], tc.typ, tc.to, tc.owner, tc.inner)
		if got := errorOf(r); got != tc.want {
			t.Errorf("%s: %q, want %q: %s", tc.name, got, tc.want, r)
			continue
		}
		if tc.contains != "" && !strings.Contains(r.String(), tc.contains) {
			t.Errorf("%s: result lacks %q: %s", tc.name, tc.contains, r)
		}
	}
}
