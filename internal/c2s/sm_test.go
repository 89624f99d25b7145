package c2s_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

const nsSM = "urn:xmpp:sm:3"

// noArchive turns message archiving off: the tests that use it look at the
// offline-storage path for unacknowledged messages, which archived ones
// do not take (TestSMTimeoutArchivedNotDuplicated).
const noArchive = "[[host]]\ndomain = \"localhost\"\n[host.archive]\nenabled = false\n"

// enableSM sends <enable/> with the given attributes and returns <enabled/>.
func enableSM(t *testing.T, c *testserver.Client, attrs string) *xml.Element {
	t.Helper()
	c.Send("<enable xmlns='%s' %s/>", nsSM, attrs)
	el := c.Expect(func(el *xml.Element) bool { return el.Space == nsSM && (el.Local == "enabled" || el.Local == "failed") })
	if el.Local != "enabled" {
		t.Fatalf("enable: %s", el)
	}
	return el
}

// smClient is a logged-in, available client with stream management on.
func smClient(t *testing.T, ts *testserver.TS, user, res string) (*testserver.Client, string) {
	t.Helper()
	c := ts.Login(t, user, "password1", res)
	if c.Features == nil || c.Features.Child(nsSM, "sm") == nil {
		t.Fatalf("no <sm/> feature after authentication: %v", c.Features)
	}
	id := enableSM(t, c, "resume='true'").Attr("id")
	c.Send("<presence/>")
	c.ExpectStanza("presence", "from="+c.JID)
	return c, id
}

// cut drops the client's TCP connection without closing the stream, as a
// phone losing its network does.
func cut(c *testserver.Client) {
	if tc, ok := c.Conn.(interface{ NetConn() net.Conn }); ok {
		if tcp, ok := tc.NetConn().(*net.TCPConn); ok {
			_ = tcp.SetLinger(0)
		}
		_ = tc.NetConn().Close()
		return
	}
	_ = c.Conn.Close()
}

// expectBodies reads messages until it has the bodies want, in order, and
// fails on any other message with a body (a duplicate or a stray).
func expectBodies(t *testing.T, c *testserver.Client, want ...string) {
	t.Helper()
	for _, w := range want {
		el := c.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") != "" })
		if got := el.ChildText("", "body"); got != w {
			t.Fatalf("got message %q, want %q", got, w)
		}
	}
}

// expectBodySet is expectBodies when the order is not defined (stanzas
// stored offline while the new session comes up).
func expectBodySet(t *testing.T, c *testserver.Client, want ...string) {
	t.Helper()
	left := map[string]bool{}
	for _, w := range want {
		left[w] = true
	}
	for range want {
		el := c.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") != "" })
		b := el.ChildText("", "body")
		if !left[b] {
			t.Fatalf("unexpected or duplicated message %q", b)
		}
		delete(left, b)
	}
}

func ackH(t *testing.T, c *testserver.Client) uint32 {
	t.Helper()
	c.Send("<r xmlns='%s'/>", nsSM)
	a := c.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "a" })
	h, err := strconv.ParseUint(a.Attr("h"), 10, 32)
	if err != nil {
		t.Fatalf("bad <a/>: %s", a)
	}
	return uint32(h)
}

func TestSMEnableNegotiatesMax(t *testing.T) {
	ts := testserver.Start(t, "[c2s.stream_management]\nresume_timeout = \"2m\"\n")
	ts.AddUser(t, "alice", "password1")
	c := ts.Login(t, "alice", "password1", "a")
	if e := enableSM(t, c, "resume='true' max='30'"); e.Attr("max") != "30" || e.Attr("resume") != "true" || len(e.Attr("id")) < 20 {
		t.Fatalf("client asked for 30 s: %s", e)
	}
	c2 := ts.Login(t, "alice", "password1", "b")
	if e := enableSM(t, c2, "resume='1' max='100000'"); e.Attr("max") != "120" {
		t.Fatalf("server maximum is 120 s: %s", e)
	}
	c3 := ts.Login(t, "alice", "password1", "c")
	if e := enableSM(t, c3, ""); e.Attr("id") != "" || e.Attr("resume") != "" {
		t.Fatalf("no resumption asked, none granted: %s", e)
	}
	// A second <enable/> on the same stream fails; the stream goes on.
	c3.Send("<enable xmlns='%s'/>", nsSM)
	if f := c3.Expect(func(el *xml.Element) bool { return el.Space == nsSM }); f.Local != "failed" || f.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "unexpected-request") == nil {
		t.Fatalf("second enable: %s", f)
	}
	if r := c3.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>"); r.Attr("type") != "result" {
		t.Fatalf("stream unusable after a failed enable: %s", r)
	}
}

func TestSMEnableBeforeBindFails(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	c := ts.Authenticated(t, "alice", "password1")
	c.Send("<enable xmlns='%s' resume='true'/>", nsSM)
	if f := c.Expect(func(el *xml.Element) bool { return el.Space == nsSM }); f.Local != "failed" || f.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "unexpected-request") == nil {
		t.Fatalf("enable before bind: %s", f)
	}
	c.Bind("a")
	enableSM(t, c, "")
}

// Before authentication, <enable/> and <resume/> are out of order
// (XEP-0198 §3, §5): <failed/> with unexpected-request, and the stream
// goes on to log in; an ack element is data before authentication.
func TestSMBeforeAuthentication(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	c := tlsClient(t, ts)
	for _, el := range []string{"<enable xmlns='%s' resume='true'/>", "<resume xmlns='%s' previd='x' h='0'/>"} {
		c.Send(el, nsSM)
		if f := c.Expect(func(el *xml.Element) bool { return el.Space == nsSM }); f.Local != "failed" || f.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "unexpected-request") == nil {
			t.Fatalf("%s before authentication: %s", el, f)
		}
	}
	c.Send("<auth xmlns='%s' mechanism='PLAIN'>%s</auth>", nsSASL, base64.StdEncoding.EncodeToString([]byte("\x00alice\x00password1")))
	if el := c.Expect(func(el *xml.Element) bool { return el.Local == "success" || el.Local == "failure" }); el.Local != "success" {
		t.Fatalf("login after the failed enable: %s", el)
	}
	d := tlsClient(t, ts)
	d.Send("<r xmlns='%s'/>", nsSM)
	d.ExpectStreamError("not-authorized")
}

func TestSMNotEnabledRefusesAcks(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	c := ts.Login(t, "alice", "password1", "a")
	c.Send("<r xmlns='%s'/>", nsSM)
	c.ExpectStreamError("unsupported-stanza-type")
}

func TestSMCountsHandledStanzas(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	c := ts.Login(t, "alice", "password1", "a")
	enableSM(t, c, "")
	if h := ackH(t, c); h != 0 {
		t.Fatalf("h before any stanza = %d", h)
	}
	c.Send("<presence/>")
	c.Send("<message to='bob@localhost' type='chat'><body>1</body></message>")
	c.Send("<message to='nobody@localhost' type='chat'><body>bounced</body></message>")
	c.Send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	if h := ackH(t, c); h != 4 {
		t.Fatalf("h after four stanzas = %d", h)
	}
}

// The server asks for acks and drops acknowledged stanzas; a client that
// acknowledges more than it was sent ends its stream (XEP-0198 §4).
func TestSMServerRequestsAndHandledCountTooHigh(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	alice, _ := smClient(t, ts, "alice", "a")
	bob := ts.Online(t, "bob", "password1", "b")
	bob.Send("<message to='%s' type='chat'><body>hi</body></message>", alice.JID)
	expectBodies(t, alice, "hi")
	alice.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "r" })
	alice.Send("<a xmlns='%s' h='99'/>", nsSM)
	el := alice.Expect(func(el *xml.Element) bool {
		return el.Local == "error" && el.Space == "http://etherx.jabber.org/streams"
	})
	if el.Child("urn:ietf:params:xml:ns:xmpp-streams", "undefined-condition") == nil || el.Child(nsSM, "handled-count-too-high") == nil {
		t.Fatalf("stream error for h too high: %s", el)
	}
	if hc := el.Child(nsSM, "handled-count-too-high"); hc.Attr("h") != "99" {
		t.Fatalf("handled-count-too-high: %s", hc)
	}
}

func TestSMBadHIsRefused(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	c := ts.Login(t, "alice", "password1", "a")
	enableSM(t, c, "")
	c.Send("<a xmlns='%s' h='-1'/>", nsSM)
	c.ExpectStreamError("invalid-xml")
}

// The heart of XEP-0198: the connection is cut after some stanzas were
// acknowledged; everything sent after the last ack, including what arrived
// while detached, comes again after <resumed/>, once and in order.
func TestSMResumeAfterCutConnection(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	alice, id := smClient(t, ts, "alice", "phone")
	bob := ts.Online(t, "bob", "password1", "b")
	// The initial presence reflection was stanza 1 (bind result is not
	// counted: it came before <enable/>).
	for i := 1; i <= 3; i++ {
		bob.Send("<message to='%s' type='chat'><body>m%d</body></message>", alice.JID, i)
	}
	expectBodies(t, alice, "m1", "m2", "m3")
	alice.Send("<a xmlns='%s' h='2'/>", nsSM) // presence + m1 acknowledged
	alice.Send("<message to='bob@localhost' type='chat'><body>from phone</body></message>")
	expectBodies(t, bob, "from phone")
	cut(alice)
	time.Sleep(100 * time.Millisecond)
	bob.Send("<message to='%s' type='chat'><body>m4</body></message>", alice.JID)
	bob.Send("<message to='alice@localhost' type='chat'><body>m5</body></message>")
	// bob still sees alice available: a detached session keeps its presence.
	time.Sleep(100 * time.Millisecond)

	again := ts.Authenticated(t, "alice", "password1")
	again.Send("<resume xmlns='%s' previd='%s' h='3'/>", nsSM, id)
	r := again.Expect(func(el *xml.Element) bool { return el.Space == nsSM })
	if r.Local != "resumed" || r.Attr("previd") != id {
		t.Fatalf("resume: %s", r)
	}
	if r.Attr("h") != "2" { // presence and the message to bob
		t.Fatalf("resumed h=%s, want 2", r.Attr("h"))
	}
	again.JID = alice.JID
	expectBodies(t, again, "m3", "m4", "m5")
	// The session goes on: same full JID, still available, counters kept.
	again.Send("<message to='bob@localhost' type='chat'><body>back</body></message>")
	expectBodies(t, bob, "back")
	if h := ackH(t, again); h != 3 {
		t.Fatalf("h after resumption = %d, want 3", h)
	}
	bob.Send("<message to='%s' type='chat'><body>m6</body></message>", alice.JID)
	expectBodies(t, again, "m6")
	if n := len(ts.Router().Sessions(jid.MustParse("alice@localhost"))); n != 1 {
		t.Fatalf("%d sessions for alice after resumption", n)
	}
}

func TestSMResumeRefusals(t *testing.T) {
	// Long enough for the four refused attempts below (four logins each)
	// on a loaded machine: the session must still be waiting for them.
	ts := testserver.Start(t, "[c2s.stream_management]\nresume_timeout = \"4s\"\n")
	ts.AddUsers(t, "password1", "alice", "mallory")
	alice, id := smClient(t, ts, "alice", "a")
	cut(alice)
	time.Sleep(100 * time.Millisecond)

	failed := func(c *testserver.Client, previd, h, cond string) {
		t.Helper()
		c.Send("<resume xmlns='%s' previd='%s' h='%s'/>", nsSM, previd, h)
		f := c.Expect(func(el *xml.Element) bool { return el.Space == nsSM })
		if f.Local != "failed" || f.Child("urn:ietf:params:xml:ns:xmpp-stanzas", cond) == nil {
			t.Fatalf("resume %s h=%s: %s, want %s", previd, h, f, cond)
		}
	}
	// Another account cannot take alice's session, even knowing its id.
	failed(ts.Authenticated(t, "mallory", "password1"), id, "0", "item-not-found")
	failed(ts.Authenticated(t, "alice", "password1"), "no-such-id", "0", "item-not-found")
	failed(ts.Authenticated(t, "alice", "password1"), id, "x", "bad-request")
	// More acknowledged than was ever sent: refused, the session stays.
	failed(ts.Authenticated(t, "alice", "password1"), id, "7", "undefined-condition")
	// After the deadline the session is gone.
	deadline := time.Now().Add(15 * time.Second)
	for len(ts.Router().Sessions(jid.MustParse("alice@localhost"))) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the detached session outlived resume_timeout")
		}
		time.Sleep(50 * time.Millisecond)
	}
	failed(ts.Authenticated(t, "alice", "password1"), id, "1", "item-not-found")
}

// A detached session that times out hands its unacknowledged messages to
// offline storage and bounces IQ requests; nothing is dropped.
func TestSMTimeoutStoresUnackedOffline(t *testing.T) {
	ts := testserver.Start(t, noArchive+"[c2s.stream_management]\nresume_timeout = \"1s\"\n")
	ts.AddUsers(t, "password1", "alice", "bob")
	alice, _ := smClient(t, ts, "alice", "a")
	bob := ts.Online(t, "bob", "password1", "b")
	bob.Send("<message to='%s' type='chat'><body>before</body></message>", alice.JID)
	expectBodies(t, alice, "before") // delivered, never acknowledged
	cut(alice)
	time.Sleep(100 * time.Millisecond)
	bob.Send("<message to='%s' type='chat'><body>while detached</body></message>", alice.JID)
	bob.Send("<iq type='get' id='v1' to='%s'><query xmlns='jabber:iq:version'/></iq>", alice.JID)
	if e := bob.ExpectStanza("iq", "id=v1"); testserver.ErrorCondition(e) != "service-unavailable" {
		t.Fatalf("IQ to a session that timed out: %s", e)
	}
	again := ts.Login(t, "alice", "password1", "a2")
	again.Send("<presence/>")
	expectBodies(t, again, "before", "while detached")
}

// A new bind of the same full JID ends the detached session; its
// unacknowledged stanzas go to the new session.
func TestSMNewBindReplacesDetachedSession(t *testing.T) {
	ts := testserver.Start(t, noArchive)
	ts.AddUsers(t, "password1", "alice", "bob")
	alice, id := smClient(t, ts, "alice", "phone")
	bob := ts.Online(t, "bob", "password1", "b")
	bob.Send("<message to='%s' type='chat'><body>unacked</body></message>", alice.JID)
	expectBodies(t, alice, "unacked")
	cut(alice)
	time.Sleep(100 * time.Millisecond)
	fresh := ts.Login(t, "alice", "password1", "phone")
	fresh.Send("<presence/>")
	expectBodies(t, fresh, "unacked")
	c := ts.Authenticated(t, "alice", "password1")
	c.Send("<resume xmlns='%s' previd='%s' h='0'/>", nsSM, id)
	if f := c.Expect(func(el *xml.Element) bool { return el.Space == nsSM }); f.Local != "failed" {
		t.Fatalf("resume of a replaced session: %s", f)
	}
}

// Over max_unacked the stream ends with resource-constraint and every
// stanza, the one over the limit included, is handled as undelivered.
func TestSMUnackedQueueBound(t *testing.T) {
	ts := testserver.Start(t, noArchive+"[c2s.stream_management]\nmax_unacked = 3\n")
	ts.AddUsers(t, "password1", "alice", "bob")
	alice, _ := smClient(t, ts, "alice", "a") // presence reflection: 1 unacked
	bob := ts.Online(t, "bob", "password1", "b")
	for i := 1; i <= 3; i++ {
		bob.Send("<message to='%s' type='chat'><body>q%d</body></message>", alice.JID, i)
	}
	alice.ExpectStreamError("resource-constraint")
	waitFor(t, "alice's session to end", func() bool { return len(ts.Router().Sessions(jid.MustParse("alice@localhost"))) == 0 })
	again := ts.Login(t, "alice", "password1", "a2")
	again.Send("<presence/>")
	expectBodySet(t, again, "q1", "q2", "q3")
}

// Shutdown ends detached sessions too, and their unacknowledged messages
// are stored before storage closes.
func TestSMShutdownStoresDetached(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf("data_dir = %q\n", dir) + noArchive
	ts := testserver.Start(t, cfg)
	ts.AddUsers(t, "password1", "alice", "bob")
	alice, _ := smClient(t, ts, "alice", "a")
	bob := ts.Online(t, "bob", "password1", "b")
	bob.Send("<message to='%s' type='chat'><body>kept</body></message>", alice.JID)
	expectBodies(t, alice, "kept")
	cut(alice)
	time.Sleep(100 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.Shutdown(ctx)

	ts2 := testserver.Start(t, cfg)
	again := ts2.Login(t, "alice", "password1", "a")
	again.Send("<presence/>")
	expectBodies(t, again, "kept")
}

// Resumption works across listeners: lost on the STARTTLS port, resumed on
// the direct TLS port.
func TestSMResumeOnOtherListener(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice")
	alice, id := smClient(t, ts, "alice", "a")
	cut(alice)
	time.Sleep(100 * time.Millisecond)
	c := testserver.DialTLS(t, ts.DirectTLSAddr(), "localhost")
	c.Open("localhost")
	c.AuthPlain("localhost", "alice", "password1")
	c.Send("<resume xmlns='%s' previd='%s' h='0'/>", nsSM, id)
	if r := c.Expect(func(el *xml.Element) bool { return el.Space == nsSM }); r.Local != "resumed" {
		t.Fatalf("resume on the direct TLS port: %s", r)
	}
	// The presence reflection that was never acknowledged comes again.
	c.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && strings.HasPrefix(el.Attr("from"), "alice@localhost/")
	})
}

// With the archive on (the default), an unacknowledged message that the
// recipient's archive holds is not copied into offline storage when the
// detached session times out: the client finds it in the archive, once.
func TestSMTimeoutArchivedNotDuplicated(t *testing.T) {
	ts := testserver.Start(t, "[c2s.stream_management]\nresume_timeout = \"1s\"\n")
	ts.AddUsers(t, "password1", "alice", "bob")
	alice, _ := smClient(t, ts, "alice", "a")
	bob := ts.Online(t, "bob", "password1", "b")
	bob.Send("<message to='%s' type='chat'><body>archived</body></message>", alice.JID)
	if m := alice.ExpectStanza("message"); m.Child("urn:xmpp:sid:0", "stanza-id") == nil {
		t.Fatalf("delivered without a stanza-id: %s", m)
	}
	cut(alice)
	waitFor(t, "the detached session to expire", func() bool {
		return len(ts.Router().Sessions(jid.MustParse("alice@localhost"))) == 0
	})
	if n, err := ts.Store().Offline().Count(context.Background(), "alice@localhost"); err != nil || n != 0 {
		t.Fatalf("%d offline copies of an archived message (%v)", n, err)
	}
	page, err := ts.Store().Archive().Query(context.Background(), "alice@localhost", storage.ArchiveQuery{Limit: 10})
	if err != nil || page.Count != 1 {
		t.Fatalf("alice's archive: %+v %v", page, err)
	}
}

// A stanza the old connection is routing when the client resumes on a new
// one is counted in <resumed h/>: the resumption waits for it. Otherwise
// the client, seeing h without it, sends it again, and it is delivered
// twice (found by a test racing a message against a resumption: 12 in 25
// runs). The routing is held in a hook here, so the race is certain.
func TestSMResumeCountsStanzaInFlight(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	entered, release := make(chan struct{}), make(chan struct{})
	off := ts.Router().Host("localhost").Stanzas.On("out/message", 0, func(ev *module.StanzaEvent) bool {
		if ev.Stanza.ChildText("", "body") == "racing" {
			close(entered)
			<-release
		}
		return false
	})
	defer off()
	alice, id := smClient(t, ts, "alice", "phone")
	bob := ts.Online(t, "bob", "password1", "b")
	alice.Send("<message to='bob@localhost' type='chat'><body>racing</body></message>")
	<-entered // the old connection's reader is routing it
	again := ts.Authenticated(t, "alice", "password1")
	again.Send("<resume xmlns='%s' previd='%s' h='0'/>", nsSM, id)
	time.Sleep(200 * time.Millisecond) // the resumption reaches its wait
	close(release)
	r := again.Expect(func(el *xml.Element) bool { return el.Space == nsSM })
	if r.Local != "resumed" || r.Attr("h") != "2" { // the initial presence and "racing"
		t.Fatalf("resumed as %s, want h=2 (the stanza in flight counted)", r)
	}
	expectBodies(t, bob, "racing")
	// The old connection is told it lost the session.
	alice.ExpectStreamError("conflict")
}

// Results of an archive query that the session never acknowledged are
// not handed to offline storage when it ends: they answered that
// session's query, and stored they would be replayed to every later login
// (and fill the offline quota).
func TestSMTimeoutDropsArchiveResults(t *testing.T) {
	ts := testserver.Start(t, "[c2s.stream_management]\nresume_timeout = \"1s\"\n")
	ts.AddUsers(t, "password1", "alice", "bob")
	alice, _ := smClient(t, ts, "alice", "a")
	bob := ts.Online(t, "bob", "password1", "b")
	for i := range 3 {
		bob.Send("<message to='alice@localhost' type='chat'><body>m%d</body></message>", i)
	}
	expectBodies(t, alice, "m0", "m1", "m2")
	alice.Send("<a xmlns='%s' h='1'/>", nsSM) // the presence; the rest stays unacknowledged
	alice.Send("<iq type='set' id='q'><query xmlns='urn:xmpp:mam:2' queryid='catchup'/></iq>")
	for range 3 {
		alice.Expect(func(el *xml.Element) bool { return el.Child("urn:xmpp:mam:2", "result") != nil })
	}
	alice.ExpectStanza("iq", "id=q")
	cut(alice)
	waitFor(t, "the detached session to expire", func() bool {
		return len(ts.Router().Sessions(jid.MustParse("alice@localhost"))) == 0
	})
	if n, err := ts.Store().Offline().Count(context.Background(), "alice@localhost"); err != nil || n != 0 {
		t.Fatalf("%d stanzas stored offline after the session ended (%v), want none: archive results and archived messages alike", n, err)
	}
}

// The wait for a stanza in flight is bounded: when its routing outlasts
// limits.write_timeout (stuck on storage, say), the resumption fails with
// resource-constraint rather than hang, and the session stays where it is.
func TestSMResumeWaitIsBounded(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nwrite_timeout = \"1s\"\n")
	ts.AddUsers(t, "password1", "alice", "bob")
	entered, release := make(chan struct{}), make(chan struct{})
	off := ts.Router().Host("localhost").Stanzas.On("out/message", 0, func(ev *module.StanzaEvent) bool {
		if ev.Stanza.ChildText("", "body") == "stuck" {
			close(entered)
			<-release
		}
		return false
	})
	defer off()
	alice, id := smClient(t, ts, "alice", "phone")
	alice.Send("<message to='bob@localhost' type='chat'><body>stuck</body></message>")
	<-entered
	again := ts.Authenticated(t, "alice", "password1")
	again.Send("<resume xmlns='%s' previd='%s' h='0'/>", nsSM, id)
	f := again.Expect(func(el *xml.Element) bool { return el.Space == nsSM })
	close(release)
	if f.Local != "failed" || f.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "resource-constraint") == nil {
		t.Fatalf("resumption while a stanza is stuck in routing: %s, want failed with resource-constraint", f)
	}
	// The session is still alice's phone, on its own connection.
	alice.Send("<iq type='get' id='p' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	if r := alice.ExpectStanza("iq", "id=p"); r.Attr("type") != "result" {
		t.Fatalf("the session after the failed resumption: %s", r)
	}
}
