package bosh_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"

	"parley/internal/bosh"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

func sha1hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func attrNS(el *xml.Element, space, local string) string {
	for _, a := range el.Attrs {
		if a.Space == space && a.Local == local {
			return a.Value
		}
	}
	return ""
}

// The whole client life over BOSH: session creation with its attributes
// and the stream features, SASL PLAIN, the XEP-0206 restart, resource
// binding, chat with a TCP client both ways, and terminate.
func TestLoginAndChat(t *testing.T) {
	ts, e := start(t, bosh.Config{})
	c, r := create(t, e, "wait='60' hold='1' ver='1.6' ack='1'")
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/xml; charset=utf-8" {
		t.Fatalf("creation: %s %v", r, r.header)
	}
	b := r.body
	want := map[string]string{"wait": "2", "requests": "2", "hold": "1", "ver": "1.6", "from": "localhost",
		"inactivity": "60", "polling": "2", "maxpause": "120", "ack": b.Attr("ack"), "secure": "true"}
	for k, v := range want {
		if b.Attr(k) != v {
			t.Errorf("creation response %s=%q, want %q", k, b.Attr(k), v)
		}
	}
	if len(c.sid) < 20 || b.Attr("authid") == "" || b.Attr("ack") == "" {
		t.Errorf("creation response sid/authid/ack: %s", r.raw)
	}
	if attrNS(b, bosh.NSXBOSH, "version") != "1.0" || attrNS(b, bosh.NSXBOSH, "restartlogic") != "true" {
		t.Errorf("creation response xmpp:version/restartlogic: %s", r.raw)
	}
	if !bytes.Contains(r.raw, []byte("xmlns:stream='http://etherx.jabber.org/streams'")) || !bytes.Contains(r.raw, []byte("<stream:features")) {
		t.Errorf("features are to be <stream:features/> with the prefix declared: %s", r.raw)
	}
	f := b.FirstElement()
	if f == nil || f.Space != nsStream || f.Local != "features" {
		t.Fatalf("the features are the creation response's first payload: %s", r.raw)
	}
	if f.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls") != nil || !strings.Contains(f.String(), ">PLAIN<") {
		t.Fatalf("features (PLAIN under HTTPS, no STARTTLS): %s", f)
	}
	c.pending = nil

	c.send("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3N3b3JkMQ==</auth>")
	if s := c.expect(func(el *xml.Element) bool { return el.Space == nsSASL }); s.Local != "success" {
		t.Fatalf("auth: %s", s)
	}
	c.send("xmpp:restart='true' to='localhost' xml:lang='en'", "")
	c.expect(func(el *xml.Element) bool { return el.Local == "features" && el.Child(nsBind, "bind") != nil })
	// Stanzas without a namespace inherit the wrapper's, which clients
	// mean as jabber:client (XEP-0206 §2).
	c.send("", "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>")
	res := c.expect(func(el *xml.Element) bool { return el.Local == "iq" && el.Attr("id") == "b1" })
	if res.Attr("type") != "result" || res.Child(nsBind, "bind").ChildText(nsBind, "jid") != "alice@localhost/web" {
		t.Fatalf("bind: %s", res)
	}
	c.send("", "<presence xmlns='jabber:client'/>")
	c.expectLocal("presence")

	bob := ts.Online(t, "bob", "password1", "tcp")
	bob.Send("<message to='alice@localhost/web' type='chat'><body>hello browser</body></message>")
	m := c.expectLocal("message")
	if m.Space != "" || m.ChildText("", "body") != "hello browser" || m.Attr("from") != "bob@localhost/tcp" {
		t.Fatalf("message over BOSH: %s", m)
	}
	c.send("", "<message xmlns='jabber:client' to='bob@localhost/tcp' type='chat'><body>hello tcp</body></message>")
	if got := bob.ExpectStanza("message"); got.ChildText("", "body") != "hello tcp" || got.Attr("from") != "alice@localhost/web" {
		t.Fatalf("message from BOSH: %s", got)
	}

	r = c.send("type='terminate'", "<presence xmlns='jabber:client' type='unavailable'/>")
	if !r.terminated("") {
		t.Fatalf("terminate: %s", r)
	}
	waitUntil(t, 5*time.Second, "the session to end", func() bool { return e.h.Sessions() == 0 })
	if r := c.send("", ""); r.status != http.StatusNotFound || !r.terminated("item-not-found") {
		t.Fatalf("request after terminate: %s", r)
	}
}

// A held request returns when output arrives and, without output, when
// its wait is over; a request beyond 'hold' makes the held one return at
// once.
func TestLongPoll(t *testing.T) {
	ts, e := start(t, bosh.Config{MaxWait: 2 * time.Second})
	alice := online(t, e, "alice", "web", "")
	bob := ts.Online(t, "bob", "password1", "tcp")

	begin := time.Now()
	r := alice.send("", "")
	if d := time.Since(begin); r.body == nil || len(r.body.Children) != 0 || d < 1500*time.Millisecond || d > 4*time.Second {
		t.Fatalf("empty poll returned after %v: %s", d, r)
	}

	done := e.async(t, alice.body(alice.nextRID(), "", ""))
	alice.waitHeld(1, 0)
	begin = time.Now()
	bob.Send("<message to='alice@localhost/web' type='chat'><body>now</body></message>")
	select {
	case r := <-done:
		m := r.body.FirstElement()
		if m == nil || m.ChildText("", "body") != "now" {
			t.Fatalf("held poll: %s", r)
		}
		if d := time.Since(begin); d > time.Second {
			t.Fatalf("held poll answered %v after the message", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held poll not answered")
	}

	// hold=1: a second request makes the first return at once, and the
	// answer acknowledges the second (XEP-0124 §9.1).
	done = e.async(t, alice.body(alice.nextRID(), "", ""))
	alice.waitHeld(1, 0)
	second := alice.nextRID()
	begin = time.Now()
	e.async(t, alice.body(second, "", "<presence xmlns='jabber:client'><show>away</show></presence>"))
	select {
	case r := <-done:
		if d := time.Since(begin); d > time.Second || ridOf(r) != second {
			t.Fatalf("over hold: answered after %v: %s", d, r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the held request was not answered when the next came")
	}
}

// Request IDs beyond the window end the session with item-not-found: a
// terminal condition in a 200 for clients that sent 'ver', 404 for legacy
// ones (XEP-0124 §14.2, §17.1).
func TestRIDOutOfWindow(t *testing.T) {
	_, e := start(t, bosh.Config{})
	c, _ := create(t, e, "")
	if r := e.post(t, c.body(c.rid+5, "", "")); r.status != http.StatusOK || !r.terminated("item-not-found") {
		t.Fatalf("rid beyond the window: %s", r)
	}
	if r := e.post(t, c.body(c.rid+1, "", "")); !r.terminated("item-not-found") {
		t.Fatalf("the session should have ended: %s", r)
	}

	legacy, _ := create(t, e, "legacy")
	if r := e.post(t, legacy.body(legacy.rid+3, "", "")); r.status != http.StatusNotFound || !r.terminated("item-not-found") {
		t.Fatalf("legacy client, rid beyond the window: %s", r)
	}
	waitUntil(t, 5*time.Second, "sessions to end", func() bool { return e.h.Sessions() == 0 })
}

// A request sent again gets the same response (XEP-0124 §14.3); one whose
// response is no longer kept ends the session.
func TestRepeatedRIDIsAnsweredAgain(t *testing.T) {
	_, e := start(t, bosh.Config{})
	c := login(t, e, "alice", "web", "")
	rid := c.nextRID()
	req := c.body(rid, "", "<iq xmlns='jabber:client' type='get' id='p1' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	first := e.post(t, req)
	if p := first.body.FirstElement(); p == nil || p.Attr("id") != "p1" || p.Attr("type") != "result" {
		t.Fatalf("ping: %s", first)
	}
	again := e.post(t, req)
	if again.status != http.StatusOK || !bytes.Equal(first.raw, again.raw) {
		t.Fatalf("retransmission:\n%s\nfirst:\n%s", again, first)
	}
	// Two more requests push the first one out of the buffer (requests=2).
	c.send("", "<presence xmlns='jabber:client'/>")
	c.send("", "<presence xmlns='jabber:client'><show>away</show></presence>")
	if r := e.post(t, req); !r.terminated("item-not-found") {
		t.Fatalf("retransmission of a forgotten request: %s", r)
	}
}

// A request that arrives before the one it follows waits for it: payloads
// reach the server in rid order (XEP-0124 §14.2).
func TestOutOfOrderRIDWaitsForTheGap(t *testing.T) {
	ts, e := start(t, bosh.Config{})
	alice := online(t, e, "alice", "web", "")
	bob := ts.Online(t, "bob", "password1", "tcp")
	first, second := alice.nextRID(), alice.nextRID()
	done := e.async(t, alice.body(second, "", "<message xmlns='jabber:client' to='bob@localhost/tcp'><body>second</body></message>"))
	alice.waitHeld(0, 1)
	select {
	case r := <-done:
		t.Fatalf("a request ahead of a gap was answered: %s", r)
	default:
	}
	r := e.post(t, alice.body(first, "", "<message xmlns='jabber:client' to='bob@localhost/tcp'><body>first</body></message>"))
	if r.status != http.StatusOK || r.body.Attr("type") != "" {
		t.Fatalf("first: %s", r)
	}
	for _, want := range []string{"first", "second"} {
		if m := bob.ExpectStanza("message"); m.ChildText("", "body") != want {
			t.Fatalf("got %s, want %q", m, want)
		}
	}
	<-done
}

func TestUnknownSID(t *testing.T) {
	_, e := start(t, bosh.Config{})
	r := e.post(t, "<body rid='10' sid='no-such-session' xmlns='http://jabber.org/protocol/httpbind'/>")
	if r.status != http.StatusNotFound || !r.terminated("item-not-found") {
		t.Fatalf("unknown sid: %s", r)
	}
}

// XEP-0124 §15: keys are checked against the previous one; a wrong key
// ends the session with item-not-found, and the request is not processed.
func TestKeySequence(t *testing.T) {
	_, e := start(t, bosh.Config{})
	k := keys("some seed", 5)
	c, r := create(t, e, "newkey='"+k[4]+"'")
	if r.status != http.StatusOK {
		t.Fatalf("creation: %s", r)
	}
	if r := c.send("key='"+k[3]+"'", ""); r.body.Attr("type") == "terminate" {
		t.Fatalf("right key: %s", r)
	}
	// Switching to a new sequence: the last key of the old one, and the
	// first of the new.
	k2 := keys("another seed", 3)
	if r := c.send("key='"+k[2]+"' newkey='"+k2[2]+"'", ""); r.body.Attr("type") == "terminate" {
		t.Fatalf("switching sequences: %s", r)
	}
	if r := c.send("key='"+k[1]+"'", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3N3b3JkMQ==</auth>"); !r.terminated("item-not-found") {
		t.Fatalf("key of the old sequence: %s", r)
	}
	waitUntil(t, 5*time.Second, "the session to end", func() bool { return e.h.Sessions() == 0 })
	// And no key at all, once keys are in use.
	c, _ = create(t, e, "newkey='"+k[4]+"'")
	if r := c.send("", ""); !r.terminated("item-not-found") {
		t.Fatalf("missing key: %s", r)
	}
}

// A request waiting for a gap in the rids (§14.2) is taken over only by
// an exact copy: another request of its rid with a wrong key (someone who
// learnt the sid) ends the session (§15.4) and gets none of the answer
// meant for the client.
func TestWaitingRequestNeedsItsKey(t *testing.T) {
	_, e := start(t, bosh.Config{})
	k := keys("a seed", 5)
	c, r := create(t, e, "newkey='"+k[4]+"'")
	if r.status != http.StatusOK {
		t.Fatalf("creation: %s", r)
	}
	first, second := c.nextRID(), c.nextRID()
	legit := e.async(t, c.body(second, "key='"+k[2]+"'", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3N3b3JkMQ==</auth>"))
	c.waitHeld(0, 1)
	bad := e.post(t, c.body(second, "key='bogus'", ""))
	if !bad.terminated("item-not-found") {
		t.Fatalf("a copy with a wrong key: %s", bad)
	}
	if bytes.Contains(bad.raw, []byte("success")) {
		t.Fatalf("the wrong key got the client's answer: %s", bad)
	}
	e.post(t, c.body(first, "key='"+k[3]+"'", ""))
	if r := <-legit; bytes.Contains(r.raw, []byte("success")) {
		t.Fatalf("the session went on after a wrong key: %s", r)
	}
}

// Bodies that are not one well-formed <body/> of the httpbind namespace
// get 400 with bad-request (XEP-0124 §17).
func TestMalformedBodies(t *testing.T) {
	_, e := start(t, bosh.Config{})
	for _, tc := range []struct{ name, body string }{
		{"not XML", "hello"},
		{"unclosed", "<body rid='1' xmlns='http://jabber.org/protocol/httpbind'>"},
		{"wrong namespace", "<body rid='1' to='localhost' xmlns='jabber:client'/>"},
		{"not a body", "<open rid='1' to='localhost' xmlns='http://jabber.org/protocol/httpbind'/>"},
		{"no rid", "<body to='localhost' xmlns='http://jabber.org/protocol/httpbind'/>"},
		{"rid not a number", "<body rid='x' to='localhost' xmlns='http://jabber.org/protocol/httpbind'/>"},
		{"rid beyond 2^53", "<body rid='9007199254740992' to='localhost' xmlns='http://jabber.org/protocol/httpbind'/>"},
		{"text in the wrapper", "<body rid='1' to='localhost' xmlns='http://jabber.org/protocol/httpbind'>text</body>"},
		{"two documents", "<body rid='1' to='localhost' xmlns='http://jabber.org/protocol/httpbind'/><body/>"},
		{"comment", "<body rid='1' to='localhost' xmlns='http://jabber.org/protocol/httpbind'><!-- x --></body>"},
		{"processing instruction", "<body rid='1' to='localhost' xmlns='http://jabber.org/protocol/httpbind'><?php x ?></body>"},
		{"invalid UTF-8", "<body rid='1' to='localhost' xmlns='http://jabber.org/protocol/httpbind'><message><body>\xff\xfe</body></message></body>"},
		{"other encoding", "<?xml version='1.0' encoding='ISO-8859-1'?><body rid='1' to='localhost' xmlns='http://jabber.org/protocol/httpbind'/>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.post(t, tc.body)
			if r.status != http.StatusBadRequest || !r.terminated("bad-request") {
				t.Fatalf("%s", r)
			}
		})
	}
	// An XML declaration in UTF-8 is fine.
	if r := e.post(t, "<?xml version='1.0' encoding='utf-8'?><body rid='7' to='localhost' ver='1.11' wait='1' xmlns='http://jabber.org/protocol/httpbind'/>"); r.status != http.StatusOK || r.body.Attr("sid") == "" {
		t.Fatalf("declaration: %s", r)
	}
	if e.h.Sessions() != 1 {
		t.Fatalf("%d sessions, want the one with a declaration", e.h.Sessions())
	}
}

// Entity expansion never starts: a DTD is restricted XML, refused before
// anything is expanded, in a new session's body and in a session's.
func TestBillionLaughs(t *testing.T) {
	_, e := start(t, bosh.Config{})
	var dtd strings.Builder
	dtd.WriteString(`<!DOCTYPE body [<!ENTITY a "aaaaaaaaaa">`)
	prev := "a"
	for i := range 9 {
		name := fmt.Sprintf("e%d", i)
		fmt.Fprintf(&dtd, `<!ENTITY %s "%s">`, name, strings.Repeat("&"+prev+";", 10))
		prev = name
	}
	dtd.WriteString("]>")
	begin := time.Now()
	r := e.post(t, dtd.String()+"<body rid='1' to='localhost' xmlns='http://jabber.org/protocol/httpbind'>&"+prev+";</body>")
	if r.status != http.StatusBadRequest || !r.terminated("bad-request") {
		t.Fatalf("billion laughs: %s", r)
	}
	c := login(t, e, "alice", "web", "")
	r = e.post(t, dtd.String()+c.body(c.nextRID(), "", "<message xmlns='jabber:client' to='bob@localhost'><body>&"+prev+";</body></message>"))
	if r.status != http.StatusBadRequest || !r.terminated("bad-request") {
		t.Fatalf("billion laughs before the wrapper of a session's request: %s", r)
	}
	// Inside the wrapper of a known session: bad-request is terminal for
	// the session (XEP-0124 §17.2), in a 200 since the client sent 'ver'.
	r = e.post(t, c.body(c.nextRID(), "", "<!DOCTYPE x [<!ENTITY a 'b'>]><message xmlns='jabber:client' to='bob@localhost'><body>&a;</body></message>"))
	if r.status != http.StatusOK || !r.terminated("bad-request") {
		t.Fatalf("billion laughs in a session: %s", r)
	}
	waitUntil(t, 5*time.Second, "the session to end", func() bool { return e.h.Sessions() == 0 })
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

// A body over limits.max_stanza_bytes (plus the wrapper's allowance) is
// refused with 413 without being read whole.
func TestOversizedBody(t *testing.T) {
	ts, e := start(t, bosh.Config{})
	max := ts.Config.Limits.MaxStanzaBytes
	c := login(t, e, "alice", "web", "")
	big := c.body(c.nextRID(), "", "<message xmlns='jabber:client' to='bob@localhost'><body>"+strings.Repeat("x", max+2048)+"</body></message>")
	if r := e.post(t, big); r.status != http.StatusRequestEntityTooLarge || !r.terminated("policy-violation") {
		t.Fatalf("oversized body: %s", r)
	}
	// Just under the limit is fine.
	ok := c.body(c.rid, "", "<message xmlns='jabber:client' to='bob@localhost'><body>"+strings.Repeat("x", max-1024)+"</body></message>")
	if r := e.post(t, ok); r.status != http.StatusOK || r.body.Attr("type") != "" {
		t.Fatalf("large body within the limit: %s", r)
	}
}

// Empty polls faster than 'polling', the first answered empty because the
// second came, end the session with policy-violation (XEP-0124 §11, §12).
func TestEmptyPollFlood(t *testing.T) {
	_, e := start(t, bosh.Config{Polling: 2 * time.Second})
	c, _ := create(t, e, "")
	first := e.async(t, c.body(c.nextRID(), "", ""))
	c.waitHeld(1, 0)
	r := e.post(t, c.body(c.nextRID(), "", ""))
	if !r.terminated("policy-violation") {
		t.Fatalf("second empty poll: %s", r)
	}
	if r := <-first; r.status != http.StatusOK || len(r.body.Children) != 0 {
		t.Fatalf("first empty poll: %s", r)
	}
	waitUntil(t, 5*time.Second, "the session to end", func() bool { return e.h.Sessions() == 0 })
}

// In a polling session (hold 0) each poll is answered at once; the one
// that comes too soon after an empty answer gets the policy-violation
// itself (it used to be answered empty, the error lost, the session
// ended silently).
func TestPollingTooFastIsTold(t *testing.T) {
	_, e := start(t, bosh.Config{Polling: 2 * time.Second})
	c, _ := create(t, e, "hold='0'")
	if r := e.post(t, c.body(c.nextRID(), "", "")); r.status != http.StatusOK || r.body.Attr("type") == "terminate" {
		t.Fatalf("first poll: %s", r)
	}
	if r := e.post(t, c.body(c.nextRID(), "", "")); !r.terminated("policy-violation") {
		t.Fatalf("second poll, too soon: %s", r)
	}
	waitUntil(t, 5*time.Second, "the session to end", func() bool { return e.h.Sessions() == 0 })
}

// More simultaneous requests than 'requests' end the session with
// policy-violation (XEP-0124 §11).
func TestTooManySimultaneousRequests(t *testing.T) {
	_, e := start(t, bosh.Config{})
	c, _ := create(t, e, "hold='1'")
	r1, r2, r3 := c.nextRID(), c.nextRID(), c.nextRID()
	held1 := e.async(t, c.body(r1, "", ""))
	c.waitHeld(1, 0)
	held3 := e.async(t, c.body(r3, "", "")) // ahead of r2: waits
	c.waitHeld(1, 1)
	if r := e.post(t, c.body(r2, "", "")); !r.terminated("policy-violation") {
		t.Fatalf("third simultaneous request: %s", r)
	}
	for _, held := range []<-chan *response{held1, held3} {
		if r := <-held; r == nil || !r.terminated("policy-violation") {
			t.Fatalf("outstanding request: %v", r)
		}
	}
}

func TestSessionsPerAddress(t *testing.T) {
	_, e := start(t, bosh.Config{MaxSessionsPerIP: 2})
	a, r1 := create(t, e, "")
	_, r2 := create(t, e, "")
	if r1.body.Attr("sid") == "" || r2.body.Attr("sid") == "" {
		t.Fatalf("first two sessions: %s %s", r1, r2)
	}
	if _, r := create(t, e, ""); r.status != http.StatusOK || !r.terminated("policy-violation") {
		t.Fatalf("third session: %s", r)
	}
	if _, r := create(t, e, "legacy"); r.status != http.StatusForbidden {
		t.Fatalf("third session, legacy client: %s", r)
	}
	if r := a.send("type='terminate'", ""); !r.terminated("") {
		t.Fatalf("terminate: %s", r)
	}
	waitUntil(t, 5*time.Second, "a slot to free", func() bool { return e.h.Sessions() == 1 })
	if _, r := create(t, e, ""); r.body.Attr("sid") == "" {
		t.Fatalf("a session after one ended: %s", r)
	}
}

// A client that stops making requests is gone after 'inactivity': its
// stream ends as a lost transport, so a stream-managed session waits for
// resumption, and resumes on TCP with what arrived meanwhile.
func TestInactivityLosesTheTransport(t *testing.T) {
	ts, e := start(t, bosh.Config{Inactivity: time.Second})
	alice := online(t, e, "alice", "web", "")
	alice.send("", "<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	enabled := alice.expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "enabled" })
	bob := ts.Online(t, "bob", "password1", "tcp")
	bob.Send("<message to='alice@localhost/web' type='chat'><body>one</body></message>")
	alice.expectLocal("message")

	// alice stops polling.
	waitUntil(t, 5*time.Second, "the inactive session to end", func() bool { return e.h.Sessions() == 0 })
	if r := alice.send("", ""); !r.terminated("item-not-found") {
		t.Fatalf("request after inactivity: %s", r)
	}
	bob.Send("<message to='alice@localhost/web' type='chat'><body>two</body></message>")

	tcp := ts.Authenticated(t, "alice", "password1")
	tcp.Send("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>", enabled.Attr("id"))
	if r := tcp.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local != "r" }); r.Local != "resumed" {
		t.Fatalf("resume on TCP: %s", r)
	}
	for _, want := range []string{"one", "two"} {
		if m := tcp.ExpectStanza("message"); m.ChildText("", "body") != want {
			t.Fatalf("after resumption got %s, want %q", m, want)
		}
	}
}

// terminate: its payloads are processed first, then the session ends with
// a type='terminate' answer (XEP-0124 §13).
func TestTerminateProcessesPayloads(t *testing.T) {
	ts, e := start(t, bosh.Config{})
	alice := online(t, e, "alice", "web", "")
	bob := ts.Online(t, "bob", "password1", "tcp")
	r := alice.send("type='terminate'", "<message xmlns='jabber:client' to='bob@localhost/tcp'><body>bye</body></message>")
	if !r.terminated("") {
		t.Fatalf("terminate: %s", r)
	}
	if m := bob.ExpectStanza("message"); m.ChildText("", "body") != "bye" {
		t.Fatalf("payload of the terminate request: %s", m)
	}
	waitUntil(t, 5*time.Second, "the session to end", func() bool { return e.h.Sessions() == 0 })
}

// A stream error ends the session with remote-stream-error and the
// <stream:error/> in the body (XEP-0206 §7).
func TestStreamErrorIsRemoteStreamError(t *testing.T) {
	_, e := start(t, bosh.Config{})
	c, _ := create(t, e, "")
	r := c.send("", "<message xmlns='jabber:client' to='bob@localhost'><body>too early</body></message>")
	if !r.terminated("remote-stream-error") {
		t.Fatalf("stanza before authentication: %s", r)
	}
	se := r.body.Child(nsStream, "error")
	if se == nil || se.Child("urn:ietf:params:xml:ns:xmpp-streams", "not-authorized") == nil ||
		!bytes.Contains(r.raw, []byte("<stream:error")) || !bytes.Contains(r.raw, []byte("xmlns:stream=")) {
		t.Fatalf("stream error: %s", r)
	}
}

// pause (XEP-0124 §10): up to maxpause, the held requests are answered at
// once; beyond it, policy-violation.
func TestPause(t *testing.T) {
	_, e := start(t, bosh.Config{MaxPause: 30 * time.Second})
	c := login(t, e, "alice", "web", "")
	held := e.async(t, c.body(c.nextRID(), "", ""))
	c.waitHeld(1, 0)
	begin := time.Now()
	r := c.send("pause='20'", "")
	if r.status != http.StatusOK || r.body.Attr("type") != "" || len(r.body.Children) != 0 {
		t.Fatalf("pause: %s", r)
	}
	select {
	case <-held:
		if d := time.Since(begin); d > time.Second {
			t.Fatalf("held request answered %v after the pause", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held request not answered on pause")
	}
	if r := c.send("", "<presence xmlns='jabber:client'/>"); r.body.Attr("type") != "" {
		t.Fatalf("after the pause: %s", r)
	}
	if r := c.send("pause='31'", ""); !r.terminated("policy-violation") {
		t.Fatalf("pause beyond maxpause: %s", r)
	}
}

// CORS: pages from allowed origins get the headers (preflight included),
// others are refused; clients that send no Origin are served.
func TestCORS(t *testing.T) {
	_, e := start(t, bosh.Config{OriginPatterns: []string{"chat.example.com"}})
	pre := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, e.url, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := pre("https://chat.example.com")
	if resp.StatusCode/100 != 2 || resp.Header.Get("Access-Control-Allow-Origin") != "https://chat.example.com" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Fatalf("preflight from an allowed origin: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := pre("https://evil.example.net"); resp.StatusCode != http.StatusForbidden || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from a foreign origin: %d %v", resp.StatusCode, resp.Header)
	}
	body := "<body rid='5' to='localhost' ver='1.11' wait='1' xmlns='http://jabber.org/protocol/httpbind'/>"
	if r := e.post(t, body, "Origin", "https://chat.example.com"); r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "https://chat.example.com" {
		t.Fatalf("POST from an allowed origin: %s %v", r, r.header)
	}
	if r, err := e.tryPost(context.Background(), body, "Origin", "https://evil.example.net"); err == nil || r != nil && r.status != http.StatusForbidden {
		t.Fatalf("POST from a foreign origin: %v %v", r, err)
	}
	if r := e.post(t, body); r.status != http.StatusOK || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("POST without Origin: %s", r)
	}
	req, _ := http.NewRequest(http.MethodGet, e.url, nil)
	if resp, err := e.client.Do(req); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %v %v", resp, err)
	}
}

// A body that trickles in is given ReadTimeout, not forever.
func TestSlowBody(t *testing.T) {
	_, e := start(t, bosh.Config{ReadTimeout: 300 * time.Millisecond})
	host := strings.TrimPrefix(strings.TrimSuffix(e.url, "/http-bind"), "https://")
	nc, err := tls.Dial("tcp", host, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprintf(nc, "POST /http-bind HTTP/1.1\r\nHost: %s\r\nContent-Type: text/xml\r\nContent-Length: 500\r\n\r\n<body rid='1' ", host)
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	begin := time.Now()
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatalf("no answer to a slow body: %v", err)
	}
	resp.Body.Close()
	if d := time.Since(begin); d > 3*time.Second || resp.StatusCode != http.StatusBadRequest || !resp.Close {
		t.Fatalf("slow body: %d after %v (close %v)", resp.StatusCode, d, resp.Close)
	}
	// And the connection is closed.
	if _, err := io.ReadAll(nc); err != nil {
		t.Fatalf("connection after a slow body: %v", err)
	}
}

// Sessions that end every way (terminate, inactivity, a binding error, a
// stream error, a client giving up on a held request) leave no goroutine
// behind.
func TestNoGoroutinesLeakWhenSessionsEnd(t *testing.T) {
	ts, e := start(t, bosh.Config{Inactivity: 500 * time.Millisecond, MaxWait: time.Second})
	ts.Online(t, "bob", "password1", "tcp")
	// Warm up: the HTTP client's connections and the server's lazily
	// started goroutines exist before the baseline.
	w := online(t, e, "alice", "warm", "")
	w.send("type='terminate'", "")
	waitUntil(t, 5*time.Second, "warm-up session to end", func() bool { return e.h.Sessions() == 0 })
	e.client.CloseIdleConnections()
	time.Sleep(200 * time.Millisecond)
	testserver.WaitNoPooledDrains(t)
	base := runtime.NumGoroutine()

	for i := range 3 {
		// terminate after login
		c := online(t, e, "alice", fmt.Sprintf("t%d", i), "")
		c.send("type='terminate'", "<presence xmlns='jabber:client' type='unavailable'/>")
		// inactivity after login
		online(t, e, "alice", fmt.Sprintf("i%d", i), "")
		// a binding error before authentication
		c, _ = create(t, e, "")
		e.post(t, c.body(c.rid+9, "", ""))
		// a stream error
		c, _ = create(t, e, "")
		c.send("", "<iq xmlns='jabber:client' type='get' id='x'/>")
		// a held request the client gives up on, then inactivity
		c = login(t, e, "alice", fmt.Sprintf("g%d", i), "")
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, _ = e.tryPost(ctx, c.body(c.nextRID(), "", ""))
		cancel()
	}
	waitUntil(t, 10*time.Second, "every session to end", func() bool { return e.h.Sessions() == 0 })
	e.client.CloseIdleConnections()
	const tolerance = 5
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base+tolerance {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, %d before the sessions:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A retransmission of a request still held takes it over: the copy gets
// the answer, the original an empty body at once.
func TestRetransmissionOfAHeldRequest(t *testing.T) {
	ts, e := start(t, bosh.Config{MaxWait: 5 * time.Second})
	alice := online(t, e, "alice", "web", "")
	bob := ts.Online(t, "bob", "password1", "tcp")
	rid := alice.nextRID()
	first := e.async(t, alice.body(rid, "", ""))
	alice.waitHeld(1, 0)
	second := e.async(t, alice.body(rid, "", ""))
	select {
	case r := <-first:
		if r == nil || r.status != http.StatusOK || len(r.body.Children) != 0 || r.body.Attr("type") != "" {
			t.Fatalf("original of a retransmitted request: %v", r)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the original request was not released")
	}
	bob.Send("<message to='alice@localhost/web' type='chat'><body>hi</body></message>")
	select {
	case r := <-second:
		if m := r.body.FirstElement(); m == nil || m.ChildText("", "body") != "hi" {
			t.Fatalf("retransmitted request: %s", r)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the retransmitted request got no answer")
	}
}

// A client that acknowledges responses (ack='1') and whose 'ack' shows a
// response it never got, sent a while ago, is told so at once (XEP-0124
// §9.2) and can ask for that response again.
func TestReportOfAMissedResponse(t *testing.T) {
	_, e := start(t, bosh.Config{MaxWait: time.Second})
	c, r := create(t, e, "ack='1' wait='1'")
	created := c.rid
	if r.body.Attr("ack") != fmt.Sprint(created) {
		t.Fatalf("creation response ack: %s", r)
	}
	missed := c.nextRID()
	lost := e.post(t, c.body(missed, "ack='"+fmt.Sprint(created)+"'", "")) // answered after 'wait'; "lost"
	time.Sleep(3200 * time.Millisecond)
	// The report comes in the answer at once (when the request is
	// processed), not after its wait.
	r = e.post(t, c.body(c.nextRID(), "ack='"+fmt.Sprint(created)+"'", ""))
	if r.body.Attr("report") != fmt.Sprint(missed) || len(r.body.Attr("time")) < 4 {
		t.Fatalf("report: %s", r)
	}
	if again := e.post(t, c.body(missed, "ack='"+fmt.Sprint(created)+"'", "")); !bytes.Equal(again.raw, lost.raw) {
		t.Fatalf("the reported response asked again: %s, was %s", again, lost)
	}
}

// hold='0': a polling session. Its creation response still carries the
// features, and every later request is answered at once.
func TestPollingSession(t *testing.T) {
	_, e := start(t, bosh.Config{Polling: 300 * time.Millisecond})
	c, r := create(t, e, "hold='0'")
	if r.body.Attr("hold") != "0" || r.body.Attr("requests") != "1" || r.body.Attr("inactivity") != "61" ||
		r.body.Child(nsStream, "features") == nil {
		t.Fatalf("polling session creation: %s", r)
	}
	c.pending = nil
	begin := time.Now()
	c.send("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGFsaWNlAHBhc3N3b3JkMQ==</auth>")
	for {
		c.mu.Lock()
		got := len(c.pending) > 0
		c.mu.Unlock()
		if got {
			break
		}
		if time.Since(begin) > 5*time.Second {
			t.Fatal("no SASL answer")
		}
		time.Sleep(400 * time.Millisecond) // slower than 'polling'
		if r := c.send("", ""); r.body.Attr("type") == "terminate" {
			t.Fatalf("poll: %s", r)
		}
	}
	if s := c.pending[0]; s.Local != "success" {
		t.Fatalf("auth: %s", s)
	}
	if d := time.Since(begin); d > 3*time.Second {
		t.Fatalf("polls were held: %v", d)
	}
}

// A stream error while the client holds no request (its session replaced
// by a login elsewhere) is its next request's answer.
func TestStreamErrorBetweenRequests(t *testing.T) {
	ts, e := start(t, bosh.Config{})
	alice := online(t, e, "alice", "web", "")
	ts.Online(t, "alice", "password1", "web") // same resource: conflict
	waitUntil(t, 5*time.Second, "the conflict to end the BOSH session", func() bool {
		_, _, closed, _ := e.h.Requests(alice.sid)
		return closed
	})
	r := alice.send("", "")
	if !r.terminated("remote-stream-error") || r.body.Child(nsStream, "error") == nil ||
		r.body.Child(nsStream, "error").Child("urn:ietf:params:xml:ns:xmpp-streams", "conflict") == nil {
		t.Fatalf("next request after a conflict: %s", r)
	}
	waitUntil(t, 5*time.Second, "the session to end", func() bool { return e.h.Sessions() == 0 })
}

// 'content' sets the responses' Content-Type (XEP-0124 §7.1); a value that
// is not a media type is ignored.
func TestContentAttribute(t *testing.T) {
	_, e := start(t, bosh.Config{})
	c, r := create(t, e, "content='text/plain; charset=utf-8'")
	if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Fatalf("creation Content-Type %q", ct)
	}
	if r := c.send("type='terminate'", ""); r.header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("Content-Type %q", r.header.Get("Content-Type"))
	}
	_, r = create(t, e, "content='x\ty'")
	if ct := r.header.Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Fatalf("Content-Type for a bad 'content': %q", ct)
	}
}

// A restart where none is due is a stream error, as a second stream
// header inside a TCP stream would be.
func TestRestartWhenNoneIsDue(t *testing.T) {
	_, e := start(t, bosh.Config{})
	c, _ := create(t, e, "")
	r := c.send("xmpp:restart='true'", "")
	if !r.terminated("remote-stream-error") || r.body.Child(nsStream, "error").Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") == nil {
		t.Fatalf("restart before authentication: %s", r)
	}
}

// Server shutdown ends every session with system-shutdown, in the
// response to the request it holds; sessions asked for afterwards are
// refused the same way.
func TestShutdownEndsSessions(t *testing.T) {
	ts, e := start(t, bosh.Config{MaxWait: 10 * time.Second})
	alice := online(t, e, "alice", "web", "")
	held := e.async(t, alice.body(alice.nextRID(), "", ""))
	alice.waitHeld(1, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.Shutdown(ctx)
	select {
	case r := <-held:
		if r == nil || !r.terminated("remote-stream-error") ||
			r.body.Child(nsStream, "error").Child("urn:ietf:params:xml:ns:xmpp-streams", "system-shutdown") == nil {
			t.Fatalf("held request at shutdown: %v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("held request not answered at shutdown")
	}
	if _, r := create(t, e, ""); !r.terminated("system-shutdown") {
		t.Fatalf("session creation after shutdown: %s", r)
	}
	waitUntil(t, 5*time.Second, "sessions to end", func() bool { return e.h.Sessions() == 0 })
}
