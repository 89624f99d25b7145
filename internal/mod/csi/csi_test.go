package csi_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"parley/internal/mod/csi"
	"parley/internal/module"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

func same(t *testing.T, what string, got []*xml.Element, want ...string) {
	t.Helper()
	if g := describe(got); strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n  got  %q\n  want %q\n  (%v)", what, g, want, strs(got))
	}
}

func isBody(text string) func(*xml.Element) bool {
	return func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") == text }
}

// TestFeature: <csi/> is offered after authentication (XEP-0352 §4.1),
// not before.
func TestFeature(t *testing.T) {
	ts := start(t, "", "alice")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	c.StartTLS("localhost")
	if c.Features.Child(csi.NS, "csi") != nil {
		t.Fatalf("offered before authentication: %s", c.Features)
	}
	c.AuthPlain("localhost", "alice", password)
	if c.Features.Child(csi.NS, "csi") == nil {
		t.Fatalf("not offered after authentication: %s", c.Features)
	}
}

// TestInactiveHoldsUntilMessage: while alice is inactive, contacts'
// presence updates and chat states wait; the next message with a body
// brings the latest presence of each contact resource and the latest chat
// state of each conversation first, in arrival order, presence with a
// delay stamp.
func TestInactiveHoldsUntilMessage(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	ts.GrantSubscription(t, "bob", "alice")
	ts.GrantSubscription(t, "carol", "alice")
	alice := ts.Online(t, "alice", password, "phone")
	as := session(t, ts, alice)
	if got := setState(t, alice, "inactive"); len(got) != 0 {
		t.Fatalf("<inactive/> answered: %v", strs(got))
	}

	bob := ts.Online(t, "bob", password, "r")
	bob.Send("<presence><show>away</show></presence>")
	bob.ExpectStanza("presence", "from="+bob.JID)
	bob.Send("<presence><show>xa</show></presence>")
	bob.ExpectStanza("presence", "from="+bob.JID)
	carol := ts.Online(t, "carol", password, "r")
	waitHeld(t, as, 2)

	// Each step waits until the server holds the stanza, so that the
	// order across senders is known.
	bob.Send("<message type='chat' to='%s'><composing xmlns='%s'/></message>", alice.JID, nsChatStates)
	waitHeld(t, as, 3)
	carol.Send("<message type='chat' to='%s'><composing xmlns='%s'/></message>", alice.JID, nsChatStates)
	waitHeld(t, as, 4)
	// bob's newer state replaces his held one (and moves behind carol's);
	// his message follows it on the same path, so in order.
	bob.Send("<message type='chat' to='%s'><paused xmlns='%s'/></message>", alice.JID, nsChatStates)
	bob.Send("<message type='chat' to='%s'><body>wake up</body></message>", alice.JID)
	got := until(t, alice, isBody("wake up"))
	same(t, "flushed before the message", got,
		"presence "+bob.JID+" show=xa",
		"presence "+carol.JID,
		"message "+carol.JID+" composing",
		"message "+bob.JID+" paused",
		"message "+bob.JID+" body=wake up")
	for _, p := range got[:2] {
		if p.Child("urn:xmpp:delay", "delay") == nil {
			t.Errorf("held presence without a delay stamp: %s", p)
		}
	}

	// Still inactive: holding again; a message carrying its own chat
	// state supersedes the held one of its conversation.
	bob.Send("<message type='chat' to='%s'><composing xmlns='%s'/></message>", alice.JID, nsChatStates)
	waitHeld(t, as, 1)
	bob.Send("<message type='chat' to='%s'><body>there?</body><active xmlns='%s'/></message>", alice.JID, nsChatStates)
	same(t, "superseded chat state", until(t, alice, isBody("there?")),
		"message "+bob.JID+" active body=there?")
}

// TestActiveFlushes: <active/> delivers what was held before the answer
// to anything sent after it (XEP-0352 §5.1), and ends holding.
func TestActiveFlushes(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	ts.GrantSubscription(t, "bob", "alice")
	alice := ts.Online(t, "alice", password, "phone")
	as := session(t, ts, alice)
	setState(t, alice, "inactive")
	bob := ts.Online(t, "bob", password, "r")
	waitHeld(t, as, 1)

	same(t, "before the pong", setState(t, alice, "active"), "presence "+bob.JID)
	bob.Send("<presence><show>dnd</show></presence>")
	alice.ExpectStanza("presence", "from="+bob.JID)
	if n, _ := csi.Held(as); n != 0 {
		t.Fatalf("%d held while active", n)
	}
	// <active/> when already active, and <inactive/> twice, change nothing
	// and are not answered.
	same(t, "active again", setState(t, alice, "active"))
	setState(t, alice, "inactive")
	same(t, "inactive again", setState(t, alice, "inactive"))
}

// TestQueueFull: at limits.csi_queue held stanzas, the next one flushes
// them all with itself: nothing is dropped.
func TestQueueFull(t *testing.T) {
	ts := start(t, "[limits]\ncsi_queue = 3\n", "alice", "bob")
	alice := ts.Online(t, "alice", password, "phone")
	as := session(t, ts, alice)
	setState(t, alice, "inactive")
	bob := ts.Login(t, "bob", password, "r")

	state := func(thread string) {
		bob.Send("<message type='chat' to='%s'><composing xmlns='%s'/><thread>%s</thread></message>", alice.JID, nsChatStates, thread)
	}
	for i := 1; i <= 3; i++ {
		state(fmt.Sprint("t", i))
	}
	waitHeld(t, as, 3)
	state("t4")
	got := until(t, alice, func(el *xml.Element) bool { return el.ChildText("", "thread") == "t4" })
	var want []string
	for i := 1; i <= 4; i++ {
		want = append(want, fmt.Sprintf("message %s composing thread=t%d", bob.JID, i))
	}
	same(t, "flushed when full", got, want...)
	state("t5")
	waitHeld(t, as, 1)
}

// TestUrgentPassesAtOnce: IQs (to the client, and answers to its own),
// subscription requests and stored messages are never held; each comes
// after what was held before it.
func TestUrgentPassesAtOnce(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	ts.GrantSubscription(t, "bob", "alice")
	alice := ts.Online(t, "alice", password, "phone")
	as := session(t, ts, alice)
	setState(t, alice, "inactive")
	bob := ts.Online(t, "bob", password, "r")
	waitHeld(t, as, 1)

	// alice's own IQ is answered at once, after the held presence.
	same(t, "before the pong", ping(t, alice), "presence "+bob.JID)

	// An IQ from a contact is delivered at once.
	bob.Send("<iq type='get' id='v1' to='%s'><query xmlns='jabber:iq:version'/></iq>", alice.JID)
	alice.ExpectStanza("iq", "id=v1", "from="+bob.JID)

	// A subscription request is delivered at once.
	carol := ts.Login(t, "carol", password, "r")
	carol.Send("<presence type='subscribe' to='alice@localhost'/>")
	alice.ExpectStanza("presence", "type=subscribe", "from=carol@localhost")

	// A headline with a <store/> hint is delivered at once.
	carol.Send("<message type='headline' to='%s'><x xmlns='urn:example:x'/><store xmlns='urn:xmpp:hints'/></message>", alice.JID)
	alice.ExpectStanza("message", "from="+carol.JID)
	if n, _ := csi.Held(as); n != 0 {
		t.Fatalf("%d held", n)
	}
}

// TestNonzas: other elements in the CSI namespace, or CSI names in other
// namespaces, end the stream with unsupported-stanza-type like any
// element nobody handles; CSI elements with content or attributes the
// XEP does not define are taken for what they are named.
func TestNonzas(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	ts.GrantSubscription(t, "bob", "alice")
	for _, el := range []string{
		"<csi xmlns='urn:xmpp:csi:0'/>",
		"<Inactive xmlns='urn:xmpp:csi:0'/>",
		"<inactive xmlns='urn:xmpp:csi:1'/>",
		"<inactive/>",
		"<state xmlns='urn:xmpp:csi:0'>inactive</state>",
	} {
		t.Run(el, func(t *testing.T) {
			c := ts.Login(t, "alice", password, "odd")
			c.Send("%s", el)
			c.ExpectStreamError("unsupported-stanza-type")
			c.ExpectClosed()
		})
	}

	t.Run("content ignored", func(t *testing.T) {
		alice := ts.Online(t, "alice", password, "phone")
		as := session(t, ts, alice)
		alice.Send("<csi:inactive xmlns:csi='urn:xmpp:csi:0' reason='screen off'><csi:extra/>text</csi:inactive>")
		ping(t, alice)
		bob := ts.Online(t, "bob", password, "r")
		waitHeld(t, as, 1)
		alice.Send("<active xmlns='urn:xmpp:csi:0'><inactive xmlns='urn:xmpp:csi:0'/></active>")
		same(t, "flushed by a decorated <active/>", ping(t, alice), "presence "+bob.JID)
		bob.Close()
	})
}

// TestSessionEnd: a session that ends with stanzas held discards them with
// its state, and a new session of the same resource starts active.
func TestSessionEnd(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	ts.GrantSubscription(t, "bob", "alice")
	alice := ts.Online(t, "alice", password, "phone")
	as := session(t, ts, alice)
	setState(t, alice, "inactive")
	bob := ts.Online(t, "bob", password, "r")
	waitHeld(t, as, 1)

	alice.Close()
	alice.ExpectClosed()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		n, live := csi.Held(as)
		if n == 0 && !live {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the session ended: %d held, live %v", n, live)
		}
	}

	again := ts.Online(t, "alice", password, "phone")
	bob.Send("<presence><show>chat</show></presence>")
	again.ExpectStanza("presence", "from="+bob.JID)
	if n, live := csi.Held(session(t, ts, again)); n != 0 || live {
		t.Fatalf("new session: %d held, live %v", n, live)
	}
}

// TestResumedStartsActive: a resumed stream starts active (XEP-0352 §5.2);
// on the session event for a resumption, what was held is delivered and
// holding stops. c2s does not fire the event yet, so the test fires it as
// c2s would.
func TestResumedStartsActive(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	ts.GrantSubscription(t, "bob", "alice")
	alice := ts.Online(t, "alice", password, "phone")
	as := session(t, ts, alice)
	setState(t, alice, "inactive")
	bob := ts.Online(t, "bob", password, "r")
	waitHeld(t, as, 1)

	h := ts.Hosts()[0]
	h.Sessions.Fire(module.EventSessionResumed, &module.SessionEvent{Ctx: context.Background(), Host: h, Session: as})
	same(t, "delivered on resumption", ping(t, alice), "presence "+bob.JID)
	bob.Send("<presence><show>away</show></presence>")
	alice.ExpectStanza("presence", "from="+bob.JID)
	if n, live := csi.Held(as); n != 0 || !live {
		t.Fatalf("after resumption: %d held, live %v", n, live)
	}
}

// TestStreamManagementQueueFull: a flush into a detached XEP-0198 session
// whose unacknowledged queue overflows ends the session from inside the
// delivery (unbound fires in the delivering goroutine). Nothing deadlocks
// (the sender, bob, is still served) and the message is handled as
// undelivered: stored offline.
func TestStreamManagementQueueFull(t *testing.T) {
	// Without the archive: an archived message would rightly not be
	// copied into offline storage, and this test reads it from there.
	ts := start(t, "[[host]]\ndomain = \"localhost\"\n[host.archive]\nenabled = false\n[c2s.stream_management]\nmax_unacked = 2\n", "alice", "bob")
	ts.GrantSubscription(t, "bob", "alice")
	alice := ts.Login(t, "alice", password, "phone")
	alice.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	alice.Expect(func(el *xml.Element) bool { return el.Local == "enabled" })
	alice.Send("<presence/>")
	alice.ExpectStanza("presence", "from="+alice.JID)
	as := session(t, ts, alice)
	// An <r/> rather than a ping waits for <inactive/> to be handled: its
	// <a/> is not a stanza, so the unacknowledged queue stays as it is.
	alice.Send("<inactive xmlns='urn:xmpp:csi:0'/><r xmlns='urn:xmpp:sm:3'/>")
	alice.Expect(func(el *xml.Element) bool { return el.Space == "urn:xmpp:sm:3" && el.Local == "a" })
	bob := ts.Online(t, "bob", password, "r")
	waitHeld(t, as, 1)

	// The phone loses its network: the session waits for a resumption.
	if tc, ok := alice.Conn.(interface{ NetConn() net.Conn }); ok {
		_ = tc.NetConn().Close()
	} else {
		_ = alice.Conn.Close()
	}
	time.Sleep(200 * time.Millisecond)

	bob.Send("<message type='chat' to='%s'><body>are you there?</body></message>", alice.JID)
	ping(t, bob)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, live := csi.Held(as); !live {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the session did not end")
		}
	}
	again := ts.Login(t, "alice", password, "laptop")
	again.Send("<presence/>")
	again.Expect(isBody("are you there?"))
}
