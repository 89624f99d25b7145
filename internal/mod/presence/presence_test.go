package presence_test

import (
	"sync/atomic"
	"testing"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

func isPresence(from, typ string) func(*xml.Element) bool {
	return func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == from && el.Attr("type") == typ
	}
}

// The whole handshake of RFC 6121 §3.1 in both directions between two
// local users, with the state of both rosters after every step.
func TestSubscriptionHandshake(t *testing.T) {
	ts := start(t, "alice", "bob")
	a := online(t, ts, "alice", "r1")
	b := online(t, ts, "bob", "r1")

	// alice asks: her item gets ask='subscribe'; bob gets the request
	// from her bare JID but no roster item yet.
	a.Send("<presence to='bob@localhost' type='subscribe'><status>hi, it's alice</status></presence>")
	expectItem(t, a, "bob@localhost", "none", "subscribe")
	req := b.ExpectStanza("presence", "type=subscribe", "from=alice@localhost")
	if req.ChildText("", "status") != "hi, it's alice" || req.Attr("to") != "bob@localhost" {
		t.Fatalf("request: %s", req)
	}
	if hasItem(ts, "bob", "alice") {
		t.Fatal("bob has a roster item before approving")
	}
	// alice does not see bob's presence yet.
	noneBefore(t, b, a, "presence of bob", isPresence(b.JID, ""))

	// bob approves: none → from for bob, none+ask → to for alice, who
	// gets the approval and bob's presence.
	b.Send("<presence to='alice@localhost' type='subscribed'/>")
	expectItem(t, b, "alice@localhost", "from", "")
	expectItem(t, a, "bob@localhost", "to", "")
	a.ExpectStanza("presence", "type=subscribed", "from=bob@localhost")
	a.ExpectStanza("presence", "from="+b.JID)

	// bob asks back.
	b.Send("<presence to='alice@localhost' type='subscribe'/>")
	expectItem(t, b, "alice@localhost", "from", "subscribe")
	a.ExpectStanza("presence", "type=subscribe", "from=bob@localhost")
	a.Send("<presence to='bob@localhost' type='subscribed'/>")
	expectItem(t, a, "bob@localhost", "both", "")
	expectItem(t, b, "alice@localhost", "both", "")
	b.ExpectStanza("presence", "type=subscribed", "from=alice@localhost")
	b.ExpectStanza("presence", "from="+a.JID)

	if it := item(t, ts, "alice", "bob"); it.Subscription != storage.SubBoth || it.AskOut || it.PendingIn {
		t.Fatalf("alice's item: %+v", it)
	}
	if it := item(t, ts, "bob", "alice"); it.Subscription != storage.SubBoth || it.AskOut || it.PendingIn {
		t.Fatalf("bob's item: %+v", it)
	}

	// Presence updates now flow both ways with show, status and priority.
	a.Send("<presence><show>away</show><status>lunch</status><priority>5</priority></presence>")
	p := b.ExpectStanza("presence", "from="+a.JID)
	if p.ChildText("", "show") != "away" || p.ChildText("", "status") != "lunch" || p.ChildText("", "priority") != "5" {
		t.Fatalf("broadcast: %s", p)
	}
	a.ExpectStanza("presence", "from="+a.JID) // reflected
	if s := ts.Router().Sessions(mustJID(t, "alice@localhost"))[0]; s.Priority() != 5 {
		t.Fatalf("priority %d", s.Priority())
	}

	// A subscribe from an existing subscriber is answered by alice's
	// server, which bob's server absorbs (RFC 6121 A.3.2: "Both", no
	// delivery); alice is not bothered.
	b.Send("<presence to='alice@localhost' type='subscribe'/>")
	noneBefore(t, b, a, "repeated request", isPresence("bob@localhost", "subscribe"))
	noneBefore(t, a, b, "answer", isPresence("alice@localhost", "subscribed"))
}

func TestPreApproval(t *testing.T) {
	ts := start(t, "alice", "bob")
	a := online(t, ts, "alice", "r1")
	b := online(t, ts, "bob", "r1")

	// bob pre-approves alice (RFC 6121 §3.4): an item with
	// approved='true', and nothing goes to alice.
	b.Send("<presence to='alice@localhost' type='subscribed'/>")
	it := expectItem(t, b, "alice@localhost", "none", "")
	if it.Attr("approved") != "true" {
		t.Fatalf("pre-approval push: %s", it)
	}
	noneBefore(t, b, a, "subscribed", isPresence("bob@localhost", "subscribed"))

	// alice's request is approved by the server without reaching bob.
	a.Send("<presence to='bob@localhost' type='subscribe'/>")
	expectItem(t, a, "bob@localhost", "none", "subscribe")
	expectItem(t, a, "bob@localhost", "to", "")
	a.ExpectStanza("presence", "type=subscribed", "from=bob@localhost")
	a.ExpectStanza("presence", "from="+b.JID)
	if it := expectItem(t, b, "alice@localhost", "from", ""); it.HasAttr("approved") {
		t.Fatalf("approval still shown: %s", it)
	}
	noneBefore(t, a, b, "subscription request", isPresence("alice@localhost", "subscribe"))

	// A pre-approval is withdrawn with unsubscribed.
	b.Send("<presence to='carol@example.org' type='subscribed'/>")
	if it := expectItem(t, b, "carol@example.org", "none", ""); it.Attr("approved") != "true" {
		t.Fatalf("push: %s", it)
	}
	b.Send("<presence to='carol@example.org' type='unsubscribed'/>")
	if it := expectItem(t, b, "carol@example.org", "none", ""); it.HasAttr("approved") {
		t.Fatalf("push: %s", it)
	}
}

func TestUnsubscribeAndUnsubscribed(t *testing.T) {
	ts := start(t, "alice", "bob")
	mutual(t, ts, "alice", "bob")
	a := online(t, ts, "alice", "r1")
	b := online(t, ts, "bob", "r1")
	a.ExpectStanza("presence", "from="+b.JID)
	b.ExpectStanza("presence", "from="+a.JID) // answer to bob's probe

	// alice stops her subscription to bob: both → from / both → to,
	// and alice's client is told that bob is gone for her.
	a.Send("<presence to='bob@localhost' type='unsubscribe'/>")
	expectItem(t, a, "bob@localhost", "from", "")
	expectItem(t, b, "alice@localhost", "to", "")
	b.ExpectStanza("presence", "type=unsubscribe", "from=alice@localhost")
	a.ExpectStanza("presence", "type=unavailable", "from="+b.JID)

	// alice cancels bob's subscription to her: from → none / to → none.
	a.Send("<presence to='bob@localhost' type='unsubscribed'/>")
	expectItem(t, a, "bob@localhost", "none", "")
	expectItem(t, b, "alice@localhost", "none", "")
	b.ExpectStanza("presence", "type=unsubscribed", "from=alice@localhost")
	b.ExpectStanza("presence", "type=unavailable", "from="+a.JID)

	// No presence flows any more.
	a.Send("<presence><status>still here</status></presence>")
	a.ExpectStanza("presence", "from="+a.JID)
	noneBefore(t, a, b, "presence of alice", isPresence(a.JID, ""))
}

// A subscription request to a user without an available resource is kept
// and delivered at each initial presence until answered (RFC 6121 §3.1.3).
func TestSubscriptionRequestWhileOffline(t *testing.T) {
	ts := start(t, "alice", "bob")
	a := online(t, ts, "alice", "r1")
	a.Send("<presence to='bob@localhost' type='subscribe'><status>please</status></presence>")
	expectItem(t, a, "bob@localhost", "none", "subscribe")

	b := online(t, ts, "bob", "r1")
	req := b.ExpectStanza("presence", "type=subscribe", "from=alice@localhost")
	if req.ChildText("", "status") != "please" {
		t.Fatalf("stored request lost its status: %s", req)
	}
	b.Close()
	b.ExpectClosed()

	// Not answered: delivered again on the next login.
	b = online(t, ts, "bob", "r2")
	b.ExpectStanza("presence", "type=subscribe", "from=alice@localhost")
	b.Send("<presence to='alice@localhost' type='unsubscribed'/>")
	a.ExpectStanza("presence", "type=unsubscribed", "from=bob@localhost")
	expectItem(t, a, "bob@localhost", "none", "")
	b.Close()
	b.ExpectClosed()

	// Answered: not delivered any more.
	b = online(t, ts, "bob", "r3")
	noneBefore(t, a, b, "answered request", isPresence("alice@localhost", "subscribe"))
}

// On initial presence the server probes the user's contacts: subscribed
// contacts online are seen at once, offline ones as unavailable.
func TestProbesOnLogin(t *testing.T) {
	ts := start(t, "alice", "bob", "carol", "dave")
	mutual(t, ts, "alice", "bob")
	mutual(t, ts, "alice", "carol")
	setItem(t, ts, "alice", "dave", storage.SubTo)   // alice → dave...
	setItem(t, ts, "dave", "alice", storage.SubNone) // ...but dave never agreed

	b := ts.Login(t, "bob", password, "r1")
	b.Send("<presence><show>dnd</show><status>busy</status></presence>")
	b.ExpectStanza("presence", "from="+b.JID)
	d := online(t, ts, "dave", "r1")

	a := ts.Login(t, "alice", password, "r1")
	a.Send("<presence/>")
	p := a.ExpectStanza("presence", "from="+b.JID)
	if p.ChildText("", "show") != "dnd" || p.ChildText("", "status") != "busy" {
		t.Fatalf("probe answer: %s", p)
	}
	a.ExpectStanza("presence", "type=unavailable", "from=carol@localhost")
	b.ExpectStanza("presence", "from="+a.JID)
	// dave does not have alice as a subscriber: a probe reveals nothing.
	noneBefore(t, d, a, "presence of dave", isPresence(d.JID, ""))
}

// The user's own resources see each other (RFC 6121 §4.2.2, §4.4.2).
func TestOwnResources(t *testing.T) {
	ts := start(t, "alice")
	a1 := online(t, ts, "alice", "r1")
	a2 := online(t, ts, "alice", "r2")
	a1.ExpectStanza("presence", "from="+a2.JID)
	a2.ExpectStanza("presence", "from="+a1.JID) // the new resource learns of r1

	a2.Send("<presence><show>xa</show></presence>")
	if p := a1.ExpectStanza("presence", "from="+a2.JID); p.ChildText("", "show") != "xa" {
		t.Fatalf("update: %s", p)
	}
	a2.Send("<presence type='unavailable'/>")
	a1.ExpectStanza("presence", "from="+a2.JID, "type=unavailable")
}

func TestDirectedPresence(t *testing.T) {
	ts := start(t, "alice", "bob", "carol")
	a := online(t, ts, "alice", "r1")
	b := online(t, ts, "bob", "r1")
	c := online(t, ts, "carol", "r1")

	// No subscription: directed presence still reaches its target.
	a.Send("<presence to='%s'><status>psst</status></presence>", b.JID)
	if p := b.ExpectStanza("presence", "from="+a.JID); p.ChildText("", "status") != "psst" {
		t.Fatalf("directed: %s", p)
	}
	a.Send("<presence to='carol@localhost'/>")
	c.ExpectStanza("presence", "from="+a.JID)
	// Directed unavailable takes carol off the list.
	a.Send("<presence to='carol@localhost' type='unavailable'/>")
	c.ExpectStanza("presence", "from="+a.JID, "type=unavailable")

	// When alice leaves, bob is told; carol is not told again.
	a.Close()
	b.ExpectStanza("presence", "from="+a.JID, "type=unavailable")
	noneBefore(t, b, c, "second unavailable", isPresence(a.JID, "unavailable"))
}

// A connection that drops without </stream:stream> still makes the
// server broadcast unavailable presence (RFC 6121 §4.5.2), to
// subscribers, the user's other resources and directed-presence targets.
func TestAbruptDisconnect(t *testing.T) {
	ts := start(t, "alice", "bob", "carol")
	mutual(t, ts, "alice", "bob")
	a := online(t, ts, "alice", "r1")
	a2 := online(t, ts, "alice", "r2")
	b := online(t, ts, "bob", "r1")
	c := online(t, ts, "carol", "r1")
	a.Send("<presence to='%s'/>", c.JID)
	c.ExpectStanza("presence", "from="+a.JID)

	_ = a.Conn.Close()
	b.ExpectStanza("presence", "from="+a.JID, "type=unavailable")
	a2.ExpectStanza("presence", "from="+a.JID, "type=unavailable")
	c.ExpectStanza("presence", "from="+a.JID, "type=unavailable")

	// A probe now finds only r2.
	b.Send("<presence type='unavailable'/>")
	b.Send("<presence/>")
	b.ExpectStanza("presence", "from="+a2.JID)
}

// Removing a contact cancels both subscriptions and tells the contact
// (RFC 6121 §2.5.2).
func TestRosterRemoveCancelsSubscriptions(t *testing.T) {
	ts := start(t, "alice", "bob")
	mutual(t, ts, "alice", "bob")
	a := online(t, ts, "alice", "r1")
	b := online(t, ts, "bob", "r1")
	res := a.IQ("set", "", "<query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query>")
	if res.Attr("type") != "result" {
		t.Fatalf("remove: %s", res)
	}
	if it := expectPush(t, a, "bob@localhost"); it.Attr("subscription") != "remove" {
		t.Fatalf("push: %s", it)
	}
	b.ExpectStanza("presence", "type=unsubscribe", "from=alice@localhost")
	b.ExpectStanza("presence", "type=unsubscribed", "from=alice@localhost")
	b.ExpectStanza("presence", "type=unavailable", "from="+a.JID)
	// unsubscribe takes bob's "from" away, unsubscribed his "to".
	expectItem(t, b, "alice@localhost", "to", "")
	expectItem(t, b, "alice@localhost", "none", "")
}

func TestSubscribeToNonexistentAccount(t *testing.T) {
	ts := start(t, "alice")
	a := online(t, ts, "alice", "r1")
	a.Send("<presence to='nobody@localhost' type='subscribe'/>")
	expectItem(t, a, "nobody@localhost", "none", "subscribe")
	a.ExpectStanza("presence", "type=unsubscribed", "from=nobody@localhost")
	expectItem(t, a, "nobody@localhost", "none", "")
}

func TestInvalidPresence(t *testing.T) {
	ts := start(t, "alice")
	a := online(t, ts, "alice", "r1")
	tests := []struct{ name, stanza string }{
		{"unknown type", "<presence id='x1' type='bogus'/>"},
		{"subscribe without to", "<presence id='x1' type='subscribe'/>"},
		{"subscribe to self", "<presence id='x1' type='subscribe' to='alice@localhost'/>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a.Send("%s", tt.stanza)
			el := a.ExpectStanza("presence", "id=x1")
			if testserver.ErrorCondition(el) != "bad-request" {
				t.Fatalf("got %s", el)
			}
		})
	}
}

// module.EventSessionAvailable fires once per session, on its first
// available presence.
func TestAvailableEventOnce(t *testing.T) {
	ts := start(t, "alice")
	var n atomic.Int32
	off := ts.Hosts()[0].Sessions.On(module.EventSessionAvailable, 0, func(*module.SessionEvent) bool {
		n.Add(1)
		return false
	})
	defer off()
	a := online(t, ts, "alice", "r1")
	for _, p := range []string{"<presence><show>away</show></presence>", "<presence type='unavailable'/>", "<presence/>"} {
		a.Send("%s", p)
		a.ExpectStanza("presence", "from="+a.JID)
	}
	if got := n.Load(); got != 1 {
		t.Fatalf("available fired %d times", got)
	}
}

func mustJID(t *testing.T, s string) jid.JID {
	t.Helper()
	j, err := jid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

// A session replaced by a new one with the same resource (RFC 6120
// §7.7.2.2) must not leave the new one looking offline to contacts.
func TestReplacedSession(t *testing.T) {
	ts := start(t, "alice", "bob")
	mutual(t, ts, "alice", "bob")
	b := online(t, ts, "bob", "r1")
	old := online(t, ts, "alice", "r1")
	b.ExpectStanza("presence", "from="+old.JID)

	a := ts.Login(t, "alice", password, "r1")
	old.ExpectClosed()
	a.Send("<presence><status>new</status></presence>")
	a.ExpectStanza("presence", "from="+a.JID)

	// Whatever bob saw in between, the last word about alice/r1 is the
	// new session's available presence.
	body := "marker"
	a.Send("<message type='chat' to='%s'><body>%s</body></message>", b.JID, body)
	var last *xml.Element
	b.Expect(func(el *xml.Element) bool {
		if el.Local == "presence" && el.Attr("from") == a.JID {
			last = el
		}
		return el.Local == "message" && el.ChildText("", "body") == body
	})
	if last == nil || last.Attr("type") != "" || last.ChildText("", "status") != "new" {
		t.Fatalf("last presence of alice/r1 seen by bob: %v", last)
	}
}
