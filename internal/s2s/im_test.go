package s2s_test

import (
	"testing"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// TestInstantMessagingAcrossServers: everything two local users can do
// works between alice@a.test and bob@b.test (dialback over TLS).
func TestInstantMessagingAcrossServers(t *testing.T) {
	a, b := federation(t, peerCfg{extra: "accept_self_signed = true"}, peerCfg{extra: "accept_self_signed = true"})
	alice, bob := users(t, a, b)
	isPresence := func(from, typ string) func(*xml.Element) bool {
		return func(el *xml.Element) bool {
			return el.Local == "presence" && el.Attr("from") == from && el.Attr("type") == typ
		}
	}

	// alice subscribes to bob; bob approves and alice sees bob online.
	alice.Send("<presence to='bob@b.test' type='subscribe'/>")
	bob.Expect(isPresence("alice@a.test", "subscribe"))
	bob.Send("<presence to='alice@a.test' type='subscribed'/>")
	alice.Expect(isPresence("bob@b.test", "subscribed"))
	alice.Expect(isPresence(bob.JID, ""))

	// And the other way round.
	bob.Send("<presence to='alice@a.test' type='subscribe'/>")
	alice.Expect(isPresence("bob@b.test", "subscribe"))
	alice.Send("<presence to='bob@b.test' type='subscribed'/>")
	bob.Expect(isPresence(alice.JID, ""))

	exchange(t, alice, bob)

	// IQs across: version, disco, vCard, ping.
	if r := bob.IQ("set", "", "<vCard xmlns='vcard-temp'><FN>Bob</FN></vCard>"); r.Attr("type") != "result" {
		t.Fatalf("vcard set: %s", r)
	}
	for _, q := range []struct{ to, payload string }{
		{"b.test", "<query xmlns='jabber:iq:version'/>"},
		{"b.test", "<query xmlns='http://jabber.org/protocol/disco#info'/>"},
		{"bob@b.test", "<vCard xmlns='vcard-temp'/>"},
		{"b.test", "<ping xmlns='urn:xmpp:ping'/>"},
	} {
		res := alice.IQ("get", q.to, q.payload)
		if res.Attr("type") != "result" || res.Attr("from") != q.to {
			t.Fatalf("iq %s to %s: %s", q.payload, q.to, res)
		}
	}

	// Offline delivery: bob leaves (alice sees it), alice writes, bob
	// comes back and gets the message with a delay stamp.
	bob.Close()
	alice.Expect(isPresence(bob.JID, "unavailable"))
	alice.Send("<message to='bob@b.test' type='chat' id='off1'><body>while you were out</body></message>")
	waitStored(t, b)
	bob2 := b.Online(t, "bob@b.test", "bob-password", "again")
	msg := bob2.ExpectStanza("message", "id=off1")
	if msg.Child("urn:xmpp:delay", "delay") == nil {
		t.Fatalf("offline message without delay: %s", msg)
	}
	// Alice sees bob back online.
	alice.Expect(isPresence(bob2.JID, ""))
}

// waitStored waits until the remote message reached b (stored offline):
// an IQ ping round trip on the same path orders after it.
func waitStored(t *testing.T, b *testserver.TS) {
	t.Helper()
	b.AddUser(t, "probe@b.test", "probe-password")
	c := b.Login(t, "probe@b.test", "probe-password", "p")
	c.IQ("get", "a.test", "<ping xmlns='urn:xmpp:ping'/>")
}
