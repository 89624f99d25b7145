package push_test

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/internal/module"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

const password = "password123"

const (
	nsPush   = "urn:xmpp:push:0"
	nsPubSub = "http://jabber.org/protocol/pubsub"
	nsData   = "jabber:x:data"
	appJID   = "app@localhost/server"
)

func start(t *testing.T, cfg string) (ts *testserver.TS, alice, app, carol *testserver.Client) {
	t.Helper()
	ts = testserver.Start(t, cfg)
	ts.AddUsers(t, password, "alice", "app", "carol")
	// alice is logged in but never available: every message to her goes
	// to offline storage, which is when push notifications are sent.
	alice = ts.Login(t, "alice", password, "phone")
	app = ts.Login(t, "app", password, "server")
	carol = ts.Login(t, "carol", password, "desk")
	return ts, alice, app, carol
}

func enable(t *testing.T, c *testserver.Client, node, form string) {
	t.Helper()
	r := c.IQ("set", "", fmt.Sprintf("<enable xmlns='%s' jid='%s' node='%s'>%s</enable>", nsPush, appJID, node, form))
	if cond := testserver.ErrorCondition(r); cond != "" {
		t.Fatalf("enable %s: %s", node, r)
	}
}

// notification is a parsed publish of the module: its node, summary
// fields and publish-options form.
type notification struct {
	iq      *xml.Element
	node    string
	fields  map[string]string
	options *xml.Element
}

func parse(el *xml.Element) (notification, bool) {
	if el.Local != "iq" || el.Attr("type") != "set" {
		return notification{}, false
	}
	ps := el.Child(nsPubSub, "pubsub")
	if ps == nil {
		return notification{}, false
	}
	pub := ps.Child(nsPubSub, "publish")
	if pub == nil || pub.Child(nsPubSub, "item") == nil {
		return notification{}, false
	}
	n := pub.Child(nsPubSub, "item").Child(nsPush, "notification")
	if n == nil || n.Child(nsData, "x") == nil {
		return notification{}, false
	}
	out := notification{iq: el, node: pub.Attr("node"), fields: map[string]string{}}
	for _, f := range n.Child(nsData, "x").Elements() {
		out.fields[f.Attr("var")] = f.ChildText(nsData, "value")
	}
	if po := ps.Child(nsPubSub, "publish-options"); po != nil {
		out.options = po.Child(nsData, "x")
	}
	return out, true
}

// expectNotification waits for a notification for node; a notification for
// any node in forbidden fails the test (read so far, queued ones too).
func expectNotification(t *testing.T, app *testserver.Client, node string, forbidden ...string) notification {
	t.Helper()
	var got notification
	app.Expect(func(el *xml.Element) bool {
		n, ok := parse(el)
		if !ok {
			return false
		}
		for _, f := range forbidden {
			if n.node == f {
				t.Fatalf("notification for %s: %s", f, el)
			}
		}
		got = n
		return n.node == node
	})
	return got
}

func answer(app *testserver.Client, n notification, errCond string) {
	if errCond == "" {
		app.Send("<iq type='result' id='%s' to='%s'/>", n.iq.Attr("id"), n.iq.Attr("from"))
		return
	}
	app.Send("<iq type='error' id='%s' to='%s'><error type='cancel'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
		n.iq.Attr("id"), n.iq.Attr("from"), errCond)
}

// expectNoMoreNotifications fails the test if a notification reaches app
// before the answer to a ping it sends now.
func expectNoMoreNotifications(t *testing.T, app *testserver.Client) {
	t.Helper()
	app.Send("<iq type='get' id='barrier' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	app.Expect(func(el *xml.Element) bool {
		if _, ok := parse(el); ok {
			t.Fatalf("extra notification %s", el)
		}
		return el.Attr("id") == "barrier"
	})
}

func message(c *testserver.Client, body string) {
	c.Send("<message type='chat' to='alice@localhost'><body>%s</body></message>", body)
}

// TestFeature: the account's disco#info announces urn:xmpp:push:0.
func TestFeature(t *testing.T) {
	_, alice, _, _ := start(t, "")
	r := alice.IQ("get", "alice@localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if !strings.Contains(r.String(), "var=\""+nsPush+"\"") && !strings.Contains(r.String(), "var='"+nsPush+"'") {
		t.Fatalf("disco#info lacks %s: %s", nsPush, r)
	}
}

// TestNotificationMinimal: a message for an account with no available
// session is notified with a growing message-count, the publish-options,
// nothing about the sender or body; chat states are not notified.
func TestNotificationMinimal(t *testing.T) {
	_, alice, app, carol := start(t, "")
	opts := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='secret'><value>s3cr3t</value></field></x>"
	enable(t, alice, "n1", opts)
	carol.Send("<message type='chat' to='alice@localhost'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	message(carol, "hello")
	n := expectNotification(t, app, "n1")
	if n.iq.Attr("from") != "alice@localhost" {
		t.Fatalf("from %q, want the account's bare JID", n.iq.Attr("from"))
	}
	if n.fields["FORM_TYPE"] != "urn:xmpp:push:summary" || n.fields["message-count"] != "1" {
		t.Fatalf("summary %v", n.fields)
	}
	if _, ok := n.fields["last-message-sender"]; ok {
		t.Fatalf("minimal summary names the sender: %v", n.fields)
	}
	if _, ok := n.fields["last-message-body"]; ok {
		t.Fatalf("minimal summary has the body: %v", n.fields)
	}
	if n.options == nil || !strings.Contains(n.options.String(), "s3cr3t") {
		t.Fatalf("publish-options missing: %s", n.iq)
	}
	answer(app, n, "")
	message(carol, "again")
	if n = expectNotification(t, app, "n1"); n.fields["message-count"] != "2" {
		t.Fatalf("second summary %v", n.fields)
	}
	answer(app, n, "")
}

// TestSummaryModes: "sender" adds the sender, "full" the body too.
func TestSummaryModes(t *testing.T) {
	for _, mode := range []string{"sender", "full"} {
		t.Run(mode, func(t *testing.T) {
			_, alice, app, carol := start(t, "[[host]]\ndomain = \"localhost\"\n[host.push]\nsummary = \""+mode+"\"\n")
			enable(t, alice, "n1", "")
			message(carol, "wherefore")
			n := expectNotification(t, app, "n1")
			if n.fields["last-message-sender"] != "carol@localhost/desk" {
				t.Fatalf("sender in %v", n.fields)
			}
			body, has := n.fields["last-message-body"]
			if mode == "full" && body != "wherefore" || mode == "sender" && has {
				t.Fatalf("%s summary %v", mode, n.fields)
			}
			if n.options != nil {
				t.Fatalf("publish-options without a form: %s", n.iq)
			}
		})
	}
}

// TestDisableAndErrors: a disabled registration and one whose app server
// answered with an error get no more notifications; the others do.
func TestDisableAndErrors(t *testing.T) {
	_, alice, app, carol := start(t, "")
	enable(t, alice, "keep", "")
	enable(t, alice, "gone", "")
	enable(t, alice, "refused", "")
	if r := alice.IQ("set", "", "<disable xmlns='"+nsPush+"' jid='"+appJID+"' node='gone'/>"); testserver.ErrorCondition(r) != "" {
		t.Fatalf("disable: %s", r)
	}
	message(carol, "one")
	answer(app, expectNotification(t, app, "keep", "gone"), "")
	answer(app, expectNotification(t, app, "refused", "gone"), "item-not-found")
	// The error reply is handled on the app server's session; a ping
	// round trip makes sure it was before the next message.
	app.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
	message(carol, "two")
	answer(app, expectNotification(t, app, "keep", "gone", "refused"), "")
	// Notifications of one message are routed together, so a "refused" one
	// for "two" would have arrived before the next "keep" one.
	message(carol, "three")
	answer(app, expectNotification(t, app, "keep", "gone", "refused"), "")
	// Disabling by service alone removes all of its registrations.
	if r := alice.IQ("set", "", "<disable xmlns='"+nsPush+"' jid='"+appJID+"'/>"); testserver.ErrorCondition(r) != "" {
		t.Fatalf("disable all: %s", r)
	}
	enable(t, alice, "fresh", "")
	message(carol, "five")
	answer(app, expectNotification(t, app, "fresh", "gone", "refused", "keep"), "")
}

// TestBounds: enable's checks and the per-account registration bound;
// re-enabling a registration at the bound still works.
func TestBounds(t *testing.T) {
	_, alice, _, _ := start(t, "[[host]]\ndomain = \"localhost\"\n[host.push]\nmax_registrations = 2\n")
	enable(t, alice, "a", "")
	enable(t, alice, "b", "")
	enable(t, alice, "a", "")
	for _, tc := range []struct{ payload, cond string }{
		{"<enable xmlns='" + nsPush + "' jid='" + appJID + "' node='c'/>", "resource-constraint"},
		{"<enable xmlns='" + nsPush + "' jid='" + appJID + "'/>", "bad-request"},
		{"<enable xmlns='" + nsPush + "' node='x'/>", "bad-request"},
		{"<enable xmlns='" + nsPush + "' jid='" + appJID + "' node='a'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></enable>", "bad-request"},
		{"<other xmlns='" + nsPush + "'/>", "bad-request"},
	} {
		if r := alice.IQ("set", "", tc.payload); testserver.ErrorCondition(r) != tc.cond {
			t.Fatalf("%s: %s, want %s", tc.payload, r, tc.cond)
		}
	}
	// Someone else's account is not theirs to configure.
	if r := alice.IQ("set", "carol@localhost", "<enable xmlns='"+nsPush+"' jid='"+appJID+"' node='z'/>"); testserver.ErrorCondition(r) == "" {
		t.Fatalf("enable for another account: %s", r)
	}
}

// TestStalledAppServer: an app server that never answers holds at most
// max_pending notifications; later ones are dropped until the timeout
// frees the slot, and messages are delivered all along.
func TestStalledAppServer(t *testing.T) {
	_, alice, app, carol := start(t, "[[host]]\ndomain = \"localhost\"\n[host.push]\nmax_pending = 1\ntimeout = \"1s\"\n")
	enable(t, alice, "n1", "")
	message(carol, "one")
	if n := expectNotification(t, app, "n1"); n.fields["message-count"] != "1" {
		t.Fatalf("first: %v", n.fields)
	}
	message(carol, "two")               // count 2: dropped, one is pending
	time.Sleep(2500 * time.Millisecond) // the 1 s timeout, with room for a late timer
	message(carol, "three")
	if n := expectNotification(t, app, "n1"); n.fields["message-count"] != "3" {
		t.Fatalf("after the timeout: %v", n.fields)
	}
	// The messages themselves were all stored for alice.
	alice.Send("<presence/>")
	for _, b := range []string{"one", "two", "three"} {
		alice.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") == b })
	}
}

// TestHeldEvents: the "detached" and "held" events c2s fires for a session
// whose client is not reading are notified although the account is
// available, one notification per event counting its messages (a chat
// state alone does not count); after "resumed" the count starts again.
// The test fires the events by hand; the tests below have c2s fire them
// for a real cut connection.
func TestHeldEvents(t *testing.T) {
	ts, alice, app, _ := start(t, "")
	enable(t, alice, "n1", "")
	alice.Send("<presence/>")
	alice.ExpectStanza("presence", "from="+alice.JID)
	// The session's 'available' handlers (which reset push state) run in
	// its read loop after the presence reflection went out; a ping
	// answered after them orders the hand-fired events below.
	alice.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
	h := ts.Hosts()[0]
	bare, _ := jid.Parse("alice@localhost")
	sessions := ts.Router().Sessions(bare)
	if len(sessions) != 1 {
		t.Fatalf("sessions %v", sessions)
	}
	s := sessions[0]
	msg := func(body string) *xml.Element {
		return xml.New("", "message").SetAttr("from", "carol@localhost/pc").SetAttr("type", "chat").
			Append(xml.New("", "body").AppendText(body))
	}
	composing := xml.New("", "message").SetAttr("from", "carol@localhost/pc").SetAttr("type", "chat").
		Append(xml.New("http://jabber.org/protocol/chatstates", "composing"))
	fire := func(name string, els ...*xml.Element) {
		h.Sessions.Fire(name, &module.SessionEvent{Ctx: context.Background(), Host: h, Session: s, Unacked: els})
	}

	fire(module.EventSessionDetached, msg("one"), composing, msg("two"))
	if n := expectNotification(t, app, "n1"); n.fields["message-count"] != "2" {
		t.Fatalf("detached: %v", n.fields)
	}
	fire(module.EventSessionHeld, composing)
	fire(module.EventSessionHeld, msg("three"))
	if n := expectNotification(t, app, "n1"); n.fields["message-count"] != "3" {
		t.Fatalf("held: %v", n.fields)
	}
	fire(module.EventSessionResumed)
	fire(module.EventSessionDetached)
	fire(module.EventSessionHeld, msg("four"))
	if n := expectNotification(t, app, "n1"); n.fields["message-count"] != "1" {
		t.Fatalf("after resumption: %v", n.fields)
	}
	expectNoMoreNotifications(t, app)
}

// pushAndStreamManagement registers alice's app server (node n1), enables
// resumable stream management and sends initial presence.
func pushAndStreamManagement(t *testing.T, alice *testserver.Client) {
	t.Helper()
	enable(t, alice, "n1", "")
	alice.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	alice.Expect(func(el *xml.Element) bool { return el.Local == "enabled" })
	alice.Send("<presence/>")
	alice.ExpectStanza("presence", "from="+alice.JID)
}

// cutConnection closes c's TCP connection under TLS, as a network that
// drops a phone does: no closing stream, no TLS close_notify.
func cutConnection(c *testserver.Client) {
	if tc, ok := c.Conn.(interface{ NetConn() net.Conn }); ok {
		_ = tc.NetConn().Close()
	}
}

// The real thing: a stream-managed session whose connection is cut
// detaches (c2s fires "detached"), and a message queued to it while the
// phone is away wakes the app server.
func TestCutStreamManagedSessionNotifies(t *testing.T) {
	_, alice, app, carol := start(t, "")
	pushAndStreamManagement(t, alice)
	cutConnection(alice)
	// Queued before the server noticed the cut (then it is unacknowledged
	// when the session detaches) or after (queued to the detached
	// session): one notification either way.
	message(carol, "while the phone sleeps")
	if n := expectNotification(t, app, "n1"); n.fields["message-count"] != "1" {
		t.Fatalf("notification for a detached session: %v", n.fields)
	}
}

// Messages written into a connection that is already dead, before the
// server notices, are in the session's unacknowledged queue when it
// detaches: the app server hears of them then, in one notification
// counting them all (a chat state alone does not count), instead of
// nobody hearing of them until the phone wakes up.
func TestDetachNotifiesForUnacknowledged(t *testing.T) {
	_, alice, app, carol := start(t, "")
	pushAndStreamManagement(t, alice)
	message(carol, "one")
	message(carol, "two")
	carol.Send("<message type='chat' to='alice@localhost'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>")
	for _, b := range []string{"one", "two"} {
		alice.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") == b })
	}
	alice.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && el.Child("http://jabber.org/protocol/chatstates", "composing") != nil
	})
	// Read, never acknowledged: then the connection dies.
	cutConnection(alice)
	if n := expectNotification(t, app, "n1"); n.fields["message-count"] != "2" {
		t.Fatalf("notification at detach: %v, want message-count 2", n.fields)
	}
	expectNoMoreNotifications(t, app)
}

// A message queued to a session after it detached is told of as well,
// once: the detach's notification counted the unacknowledged one, this one
// counts both.
func TestQueuedAfterDetachNotifies(t *testing.T) {
	_, alice, app, carol := start(t, "")
	pushAndStreamManagement(t, alice)
	detachWithOneUnacked(t, alice, app, carol)
	message(carol, "two")
	if n := expectNotification(t, app, "n1"); n.fields["message-count"] != "2" {
		t.Fatalf("notification after detach: %v", n.fields)
	}
	expectNoMoreNotifications(t, app)
}

// detachWithOneUnacked has carol send alice "one", which alice reads and
// never acknowledges, cuts alice's connection and expects the detach's
// notification counting it.
func detachWithOneUnacked(t *testing.T, alice, app, carol *testserver.Client) {
	t.Helper()
	message(carol, "one")
	alice.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") == "one" })
	cutConnection(alice)
	if n := expectNotification(t, app, "n1"); n.fields["message-count"] != "1" {
		t.Fatalf("notification at detach: %v", n.fields)
	}
}

// A burst of messages while the connection is cut: some reach the dead
// connection before the server notices (told of at the detach), the rest
// are queued to the detached session (told of as held), and a message in
// flight across the detach is in exactly one of the two. So the counts add
// up to the burst exactly: the last notification says n, and none follows.
func TestBurstAcrossDetachCountedOnce(t *testing.T) {
	_, alice, app, carol := start(t, "")
	pushAndStreamManagement(t, alice)
	const n = 40
	cut := make(chan struct{})
	go func() {
		defer close(cut)
		cutConnection(alice)
	}()
	for i := range n {
		message(carol, "m"+strconv.Itoa(i))
	}
	<-cut
	for {
		got := expectNotification(t, app, "n1")
		answer(app, got, "")
		c, err := strconv.Atoi(got.fields["message-count"])
		if err != nil || c > n {
			t.Fatalf("message-count %q after a burst of %d", got.fields["message-count"], n)
		}
		if c == n {
			break
		}
	}
	expectNoMoreNotifications(t, app)
}

// When a detached session's client never comes back, the messages it did
// not acknowledge go to offline storage (the archive is off here, so
// nothing holds them but offline storage). The app server heard of them
// at the detach: it is not woken a second time for the same messages.
func TestExpiredSessionNotNotifiedTwice(t *testing.T) {
	ts, alice, app, carol := start(t, "[c2s.stream_management]\nresume_timeout = \"1s\"\n[[host]]\ndomain = \"localhost\"\n[host.archive]\nenabled = false\n")
	pushAndStreamManagement(t, alice)
	detachWithOneUnacked(t, alice, app, carol)
	time.Sleep(2500 * time.Millisecond) // the resumption timeout runs out
	expectNoMoreNotifications(t, app)
	// Stored all the same: the next login gets it.
	again := ts.Online(t, "alice", password, "phone")
	again.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") == "one" })
}
