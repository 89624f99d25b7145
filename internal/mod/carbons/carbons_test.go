package carbons_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// TestEnableDisable walks XEP-0280 §3-§5 and §9.1: the feature is on the
// server's disco#info; enable and disable answer with a result, repeated or
// not, without 'to' or addressed to the server; other payloads, other
// accounts and IQ-get are refused; a disabled session gets no copies.
func TestEnableDisable(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice", "a", 0)
	obs := online(t, ts, "alice", "obs", -1)
	bob := online(t, ts, "bob", "b", 0)

	info := a.IQ("get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if !strings.Contains(info.String(), "var='"+nsCarbons+"'") {
		t.Fatalf("disco#info lacks %s: %s", nsCarbons, info)
	}
	for _, tc := range []struct {
		name, from, typ, to, payload, cond string
	}{
		{"enable", "obs", "set", "", "<enable xmlns='" + nsCarbons + "'/>", ""},
		{"enable again", "obs", "set", "", "<enable xmlns='" + nsCarbons + "'/>", ""},
		{"disable", "obs", "set", "alice@localhost", "<disable xmlns='" + nsCarbons + "'/>", ""},
		{"disable again", "obs", "set", "", "<disable xmlns='" + nsCarbons + "'/>", ""},
		{"enable addressed to the server", "obs", "set", "localhost", "<enable xmlns='" + nsCarbons + "'/>", ""},
		{"unknown element", "obs", "set", "", "<private xmlns='" + nsCarbons + "'/>", "bad-request"},
		{"get", "obs", "get", "", "<enable xmlns='" + nsCarbons + "'/>", "service-unavailable"},
		{"another account's", "bob", "set", "alice@localhost", "<enable xmlns='" + nsCarbons + "'/>", "service-unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := map[string]*testserver.Client{"obs": obs, "bob": bob}[tc.from]
			r := c.IQ(tc.typ, tc.to, tc.payload)
			if got := testserver.ErrorCondition(r); got != tc.cond {
				t.Fatalf("reply %s: condition %q, want %q", r, got, tc.cond)
			}
		})
	}
	// obs is enabled (the last successful request); disabling stops copies.
	chat(bob, "alice@localhost/a", "while-enabled")
	expectMessages(t, obs, "received:while-enabled")
	if r := obs.IQ("set", "", "<disable xmlns='"+nsCarbons+"'/>"); r.Attr("type") != "result" {
		t.Fatalf("disable: %s", r)
	}
	chat(bob, "alice@localhost/a", "while-disabled")
	expectMessages(t, a, "while-enabled", "while-disabled")
	enable(t, obs)
	chat(bob, "alice@localhost/a", "enabled-again")
	expectMessages(t, obs, "received:enabled-again")
}

// TestReceived: a message to one resource is copied, wrapped in <received/>
// from the account's bare JID to each resource's full JID, to the other
// carbons-enabled resources (§7); a bare-JID message reaches the resources
// RFC 6121 §8.5.2.1.1 picks and is copied to the enabled ones it does not
// reach (lower or negative priority); nobody gets both the message and a
// copy, and resources without carbons get no copies.
func TestReceived(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	r1 := online(t, ts, "alice", "r1", 1)
	r2 := online(t, ts, "alice", "r2", 1)
	low := online(t, ts, "alice", "low", 0)
	plain := online(t, ts, "alice", "plain", 1)
	neg := online(t, ts, "alice", "neg", -1)
	for _, c := range []*testserver.Client{r1, r2, low, neg} {
		enable(t, c)
	}
	bob := online(t, ts, "bob", "b", 0)

	chat(bob, "alice@localhost/r1", "to-r1")
	chat(bob, "alice@localhost", "to-bare")
	chat(bob, "alice@localhost/plain", "end")

	expectMessages(t, r1, "to-r1", "to-bare", "received:end")
	got := expectMessages(t, r2, "received:to-r1", "to-bare", "received:end")
	expectMessages(t, low, "received:to-r1", "received:to-bare", "received:end")
	expectMessages(t, plain, "to-bare", "end")
	expectMessages(t, neg, "received:to-r1", "received:to-bare", "received:end")

	c := got[0]
	if c.Attr("from") != "alice@localhost" || c.Attr("to") != r2.JID || c.Attr("type") != "chat" {
		t.Fatalf("carbon addressing: %s", c)
	}
	inner := forwarded(c, "received")
	if inner.Attr("from") != bob.JID || inner.Attr("to") != "alice@localhost/r1" || inner.Attr("type") != "chat" || inner.Attr("id") != "to-r1" {
		t.Fatalf("forwarded message: %s", inner)
	}
	// The forwarded message keeps its jabber:client namespace on the wire.
	if s := c.String(); !strings.Contains(s, "<forwarded xmlns='"+nsForward+"'><message") {
		t.Fatalf("serialized carbon: %s", s)
	}
}

// TestSent: a message a client sends is copied in <sent/> to the account's
// other carbons-enabled resources, whether or not the sender enabled
// carbons (§8), never to the sender itself.
func TestSent(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice", "a", 0)
	b := online(t, ts, "alice", "b", 0)
	c := online(t, ts, "alice", "c", 0)
	enable(t, b)
	enable(t, c)
	bob := online(t, ts, "bob", "x", 0)

	chat(a, "bob@localhost", "from-a")
	bob.ExpectStanza("message", "id=from-a") // orders the two senders' copies
	chat(b, "bob@localhost/x", "from-b")
	bob.ExpectStanza("message", "id=from-b")
	chat(bob, "alice@localhost/a", "end")

	expectMessages(t, a, "end")
	got := expectMessages(t, b, "sent:from-a", "received:end")
	expectMessages(t, c, "sent:from-a", "sent:from-b", "received:end")

	s := got[0]
	if s.Attr("from") != "alice@localhost" || s.Attr("to") != b.JID || s.Attr("type") != "chat" {
		t.Fatalf("carbon addressing: %s", s)
	}
	inner := forwarded(s, "sent")
	if inner.Attr("from") != a.JID || inner.Attr("to") != "bob@localhost" {
		t.Fatalf("forwarded message: %s", inner)
	}
	// The archive is on by default: the sent copy names the id the
	// message has in alice's archive (XEP-0313 §3.5).
	if sid := inner.Child("urn:xmpp:sid:0", "stanza-id"); sid == nil || sid.Attr("by") != "alice@localhost" || sid.Attr("id") == "" {
		t.Fatalf("sent carbon without alice's stanza-id: %s", inner)
	}
}

// TestEligibility walks the rules of §6.1 the module applies, and §9: each
// case message goes between bob and alice/a, then a marker; alice's
// carbons-enabled observer (priority -1, so never a bare-JID recipient)
// must see the case's copy before the marker's exactly when the case is
// eligible.
func TestEligibility(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice", "a", 0)
	obs := online(t, ts, "alice", "obs", -1)
	enable(t, obs)
	bob := online(t, ts, "bob", "b", 0)

	const (
		muc      = "<x xmlns='http://jabber.org/protocol/muc#user'/>"
		invite   = "<x xmlns='http://jabber.org/protocol/muc#user'><invite from='bob@localhost'/></x>"
		direct   = "<x xmlns='jabber:x:conference' jid='room@conference.localhost'/>"
		private  = "<private xmlns='urn:xmpp:carbons:2'/>"
		noCopy   = "<no-copy xmlns='urn:xmpp:hints'/>"
		body     = "<body>hi</body>"
		receipt  = "<request xmlns='urn:xmpp:receipts'/>"
		state    = "<composing xmlns='http://jabber.org/protocol/chatstates'/>"
		marker   = "<displayed xmlns='urn:xmpp:chat-markers:0' id='x'/>"
		other    = "<x xmlns='urn:example:other'/>"
		received = "received"
		sent     = "sent"
	)
	for i, tc := range []struct {
		name     string
		dir      string // received: bob → alice; sent: alice/a → bob
		to, typ  string // to is relative: "full" (the peer's resource) or "bare"
		payload  string
		eligible bool
	}{
		{"chat", received, "full", "chat", body, true},
		{"chat to the bare JID", received, "bare", "chat", body, true},
		{"normal with body", received, "full", "normal", body, true},
		{"no type with body", received, "full", "", body, true},
		{"normal, receipt request only", received, "full", "normal", receipt, true},
		{"normal, chat state only", received, "full", "", state, true},
		{"normal, chat marker only", received, "full", "normal", marker, true},
		{"headline with a receipt", received, "full", "headline", body + receipt, true},
		{"normal, other payload only", received, "full", "normal", other, false},
		{"headline with body", received, "full", "headline", body, false},
		{"groupchat to a full JID", received, "full", "groupchat", body, false},
		{"error", received, "full", "error", body, false},
		{"private and no-copy", received, "full", "chat", body + private + noCopy, false},
		{"private only", received, "full", "chat", body + private, false},
		{"no-copy only", received, "full", "chat", body + noCopy, false},
		{"direct invitation (XEP-0249)", received, "full", "normal", direct, true},
		{"mediated invitation", received, "bare", "normal", invite, true},
		{"MUC private message received", received, "full", "chat", body + muc, false},
		{"sent chat", sent, "full", "chat", body, true},
		{"sent normal with body to the bare JID", sent, "bare", "", body, true},
		{"sent MUC private message to a full JID", sent, "full", "chat", body + muc, true},
		{"sent muc#user message to a bare JID", sent, "bare", "normal", body + muc, false},
		{"sent mediated invitation", sent, "bare", "normal", invite, true},
		{"sent private and no-copy", sent, "full", "chat", body + private + noCopy, false},
		{"sent groupchat", sent, "full", "groupchat", body, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("case%d", i)
			from, to := bob, "alice@localhost"
			if tc.dir == sent {
				from, to = a, "bob@localhost"
			}
			if tc.to == "full" {
				to += map[string]string{received: "/a", sent: "/b"}[tc.dir]
			}
			typ := ""
			if tc.typ != "" {
				typ = " type='" + tc.typ + "'"
			}
			from.Send("<message id='%s' to='%s'%s>%s</message>", id, to, typ, tc.payload)
			if tc.dir == sent {
				// Copies of what alice sends are made on her stream's
				// goroutine, the marker on bob's: bob's receipt of the
				// case message orders them.
				bob.ExpectStanza("message", "id="+id)
			}
			mark := fmt.Sprintf("mark%d", i)
			chat(bob, "alice@localhost/a", mark)
			want := []string{received + ":" + mark}
			if tc.eligible {
				want = append([]string{tc.dir + ":" + id}, want...)
			}
			got := expectMessages(t, obs, want...)
			if tc.eligible && got[0].Attr("type") != tc.typ {
				t.Fatalf("carbon type %q, want the original's %q: %s", got[0].Attr("type"), tc.typ, got[0])
			}
		})
	}
	// The private element stays in the delivered message: XEP-0280 §9 no
	// longer asks servers to remove it (a sender could otherwise silently
	// change how its messages are delivered).
	bob.Send("<message id='keep' to='alice@localhost/a' type='chat'>%s%s%s</message>", "<body>kept</body>", "<private xmlns='urn:xmpp:carbons:2'/>", "<no-copy xmlns='urn:xmpp:hints'/>")
	m := a.ExpectStanza("message", "id=keep")
	if m.Child(nsCarbons, "private") == nil {
		t.Fatalf("delivered without <private/>: %s", m)
	}
}

// TestMUC: the MUC rules of §6.1 with the real chat-room service: a private
// message from an occupant is not copied (the room gives it to every client
// joined under the nick), one the account sends to an occupant is, and a
// mediated invitation from the room is.
func TestMUC(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	a := online(t, ts, "alice", "a", 0)
	obs := online(t, ts, "alice", "obs", -1)
	enable(t, obs)
	bob := online(t, ts, "bob", "b", 0)
	carol := online(t, ts, "carol", "c", 0)
	carolObs := online(t, ts, "carol", "obs", -1)
	enable(t, carolObs)

	room := "carbons@conference.localhost"
	bob.Send("<presence to='%s/bob'><x xmlns='http://jabber.org/protocol/muc'/></presence>", room)
	bob.ExpectStanza("presence", "from="+room+"/bob")
	if r := bob.IQ("set", room, "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>"); r.Attr("type") != "result" {
		t.Fatalf("instant room: %s", r)
	}
	a.Send("<presence to='%s/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>", room)
	a.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && strings.HasPrefix(el.Attr("from"), room) && el.Child("", "subject") != nil
	})

	bob.Send("<message to='%s/alice' type='chat' id='pm-in'><body>pm-in</body></message>", room)
	a.ExpectStanza("message", "id=pm-in")
	a.Send("<message to='%s/bob' type='chat' id='pm-out'><body>pm-out</body></message>", room)
	bob.ExpectStanza("message", "id=pm-out")
	chat(bob, "alice@localhost/a", "end")
	got := expectMessages(t, obs, "sent:pm-out", "received:end")
	if inner := forwarded(got[0], "sent"); inner.Attr("to") != room+"/bob" {
		t.Fatalf("sent carbon of the private message: %s", got[0])
	}

	bob.Send("<message to='%s' id='inv'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='carol@localhost'/></x></message>", room)
	inv := carol.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.Attr("from") == room })
	got = expectMessages(t, carolObs, "received:"+describe(inv))
	if inner := forwarded(got[0], "received"); inner.Attr("from") != room || inner.Child("http://jabber.org/protocol/muc#user", "x") == nil {
		t.Fatalf("carbon of the invitation: %s", got[0])
	}
}

// TestSpoofedCarbons: carbon wrappers are refused from the account's own
// clients (only servers make carbons) and removed from anything that
// reaches an account from anyone but the account's bare JID (§11, the
// impersonation attack of its example), whether the sender is a local
// user or arrives through the router (as from another server); the rest
// of the stanza is delivered. A wrapper from the account's bare JID is the
// XEP's legitimate form and passes.
func TestSpoofedCarbons(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice", "a", 0)
	obs := online(t, ts, "alice", "obs", -1)
	enable(t, obs)
	bob := online(t, ts, "bob", "b", 0)
	forged := func(kind string) string {
		return "<" + kind + " xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" +
			"<message xmlns='jabber:client' from='juliet@capulet.example/balcony' to='alice@localhost/a' type='chat'><body>forged</body></message>" +
			"</forwarded></" + kind + ">"
	}

	for _, kind := range []string{"received", "sent"} {
		bob.Send("<message to='alice@localhost' type='chat' id='local-%s'>%s</message>", kind, forged(kind))
		e := bob.ExpectStanza("message", "id=local-"+kind)
		if testserver.ErrorCondition(e) != "not-acceptable" {
			t.Fatalf("a client's %s wrapper: %s", kind, e)
		}
		// Also to one's own other resource: clients never send carbons.
		a.Send("<message to='alice@localhost/obs' type='chat' id='self-%s'>%s</message>", kind, forged(kind))
		if e := a.ExpectStanza("message", "id=self-"+kind); testserver.ErrorCondition(e) != "not-acceptable" {
			t.Fatalf("a client's %s wrapper to its own account: %s", kind, e)
		}
	}

	// Through the router, as an S2S stream or a component would hand it in.
	route := func(from, to, id, inner string) {
		el, err := xml.ParseElement([]byte("<message from='"+from+"' to='"+to+"' type='chat' id='"+id+"'>"+inner+"</message>"), xml.DefaultLimits(), "jabber:client")
		if err != nil {
			t.Fatal(err)
		}
		ts.Router().Route(context.Background(), el)
	}
	route("tybalt@capulet.example/home", "alice@localhost/a", "remote-full", forged("received")+"<body>visible</body>")
	route("tybalt@capulet.example/home", "alice@localhost", "remote-bare", forged("sent"))
	route("alice@localhost", "alice@localhost/a", "own", forged("received"))

	m := a.ExpectStanza("message", "id=remote-full")
	if m.Child(nsCarbons, "received") != nil || m.ChildText("", "body") != "visible" {
		t.Fatalf("forged carbon delivered: %s", m)
	}
	m = a.ExpectStanza("message", "id=remote-bare")
	if len(m.Elements()) != 0 {
		t.Fatalf("forged carbon to the bare JID delivered: %s", m)
	}
	m = a.ExpectStanza("message", "id=own")
	if forwarded(m, "received") == nil {
		t.Fatalf("a carbon from the account's bare JID lost its wrapper: %s", m)
	}
	// The observer got copies of the two remote messages as stripped (both
	// are chat), none of the account's own, and nothing forged.
	chat(bob, "alice@localhost/a", "end")
	got := expectMessages(t, obs, "received:remote-full", "received:remote-bare", "received:end")
	if inner := forwarded(got[0], "received"); inner.Child(nsCarbons, "received") != nil {
		t.Fatalf("the copy carries the forged wrapper: %s", got[0])
	}
}

// TestBlockedNotCopied: XEP-0191 blocking runs before carbons, so a message
// refused in either direction is not copied either.
func TestBlockedNotCopied(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	a := online(t, ts, "alice", "a", 0)
	obs := online(t, ts, "alice", "obs", -1)
	enable(t, obs)
	bob := online(t, ts, "bob", "b", 0)
	carol := online(t, ts, "carol", "c", 0)
	if r := a.IQ("set", "", "<block xmlns='urn:xmpp:blocking'><item jid='bob@localhost'/></block>"); r.Attr("type") != "result" {
		t.Fatalf("block: %s", r)
	}
	chat(bob, "alice@localhost/a", "in")
	if e := bob.ExpectStanza("message", "id=in"); testserver.ErrorCondition(e) != "service-unavailable" {
		t.Fatalf("blocked message: %s", e)
	}
	chat(a, "bob@localhost", "out")
	if e := a.ExpectStanza("message", "id=out"); testserver.ErrorCondition(e) != "not-acceptable" {
		t.Fatalf("message to a blocked JID: %s", e)
	}
	chat(carol, "alice@localhost/a", "end")
	expectMessages(t, obs, "received:end")
}

// TestSurvivesResumption: carbons are a session's state, not a stream's, so
// a session resumed with XEP-0198 keeps them: copies made while it was
// detached arrive after resumption, and new ones follow.
func TestSurvivesResumption(t *testing.T) {
	const nsSM = "urn:xmpp:sm:3"
	ts := start(t, "", "alice", "bob")
	phone := ts.Login(t, "alice", password, "phone")
	phone.Send("<enable xmlns='%s' resume='true'/>", nsSM)
	enabled := phone.Expect(func(el *xml.Element) bool { return el.Space == nsSM })
	if enabled.Local != "enabled" {
		t.Fatalf("stream management: %s", enabled)
	}
	enable(t, phone)
	desk := online(t, ts, "alice", "desk", 0)
	bob := online(t, ts, "bob", "b", 0)

	_ = phone.Conn.Close() // the network goes away; the session waits
	chat(bob, "alice@localhost/desk", "while-away")
	desk.ExpectStanza("message", "id=while-away")

	again := ts.Authenticated(t, "alice", password)
	again.Send("<resume xmlns='%s' previd='%s' h='0'/>", nsSM, enabled.Attr("id"))
	if r := again.Expect(func(el *xml.Element) bool { return el.Space == nsSM }); r.Local != "resumed" {
		t.Fatalf("resume: %s", r)
	}
	again.JID = phone.JID
	chat(bob, "alice@localhost/desk", "after")
	expectMessages(t, again, "received:while-away", "received:after")
}
