package c2s_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"parley/internal/module"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// ownLoopback puts the client listeners of the tests below on 127.0.4.1:
// the loopback addresses these tests may use.
const ownLoopback = "[c2s]\nlisten = [\"127.0.4.1:0\"]\ndirect_tls_listen = [\"127.0.4.1:0\"]\n"

// The results of a query of a room's archive (XEP-0313 §3.4.2) that the
// session never acknowledged are dropped when it ends, as those of a query
// of its own archive are: they answered that session, and stored offline
// they would be replayed to every later login. Only results of a query
// the session sent, from the JID it sent it to: a contact's message
// dressed up as a result (even with the right queryid), or a result from
// the room with a queryid the session never used, is stored offline and
// replayed.
func TestSMEndDropsRoomArchiveResults(t *testing.T) {
	ts := testserver.Start(t, ownLoopback+"[c2s.stream_management]\nresume_timeout = \"1s\"\n")
	ts.AddUsers(t, "password1", "alice", "bob")
	const room = "tea@conference.localhost"
	const nsMAM = "urn:xmpp:mam:2"
	alice, _ := smClient(t, ts, "alice", "a")
	bob := ts.Online(t, "bob", "password1", "b")

	// alice creates an instant room, which archives (a public room), and
	// talks in it.
	alice.Send("<presence to='%s/Alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>", room)
	alice.Expect(func(el *xml.Element) bool {
		return el.Local == "message" && el.Attr("from") == room && el.Child("", "subject") != nil
	})
	if r := alice.IQ("set", room, "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>"); r.Attr("type") != "result" {
		t.Fatalf("configuring the room: %s", r)
	}
	for _, id := range []string{"g1", "g2", "g3"} {
		alice.Send("<message to='%s' type='groupchat' id='%s'><body>%s</body></message>", room, id, id)
		alice.ExpectStanza("message", "id="+id)
	}

	// Her client queries the room's archive and never acknowledges the
	// results.
	alice.Send("<iq type='set' id='q' to='%s'><query xmlns='%s' queryid='catchup'/></iq>", room, nsMAM)
	for range 3 {
		alice.Expect(func(el *xml.Element) bool { return el.Attr("from") == room && el.Child(nsMAM, "result") != nil })
	}
	if r := alice.ExpectStanza("iq", "id=q"); r.Attr("type") != "result" {
		t.Fatalf("room archive query: %s", r)
	}
	// What a room on another server would send, routed as it would come
	// in: a result of the same query, and one of a query alice never
	// sent (kept).
	result := func(id, from, queryid, body string) string {
		return "<message xmlns='jabber:client' id='" + id + "' from='" + from + "' to='" + alice.JID + "'><result xmlns='" + nsMAM +
			"' queryid='" + queryid + "' id='x" + id + "'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>" +
			body + "</body></message></forwarded></result></message>"
	}
	route := func(raw string) {
		t.Helper()
		el, err := xml.ParseElement([]byte(raw), xml.DefaultLimits(), "jabber:client")
		if err != nil {
			t.Fatal(err)
		}
		ts.Router().Route(context.Background(), el)
	}
	route(result("r1", room, "catchup", "late result"))
	route(result("r2", room, "never-asked", "not a result of alice's"))
	alice.ExpectStanza("message", "id=r1")
	alice.ExpectStanza("message", "id=r2")
	// bob wraps his message as a result of alice's query.
	bob.Send("%s", strings.Replace(result("f1", bob.JID, "catchup", "forged"), " from='"+bob.JID+"'", "", 1))
	alice.ExpectStanza("message", "id=f1")
	// Last in the queue, and stored offline: once it is, so is what
	// came before it (the session's end hands its queue on in order).
	bob.Send("<message to='%s' id='end'><x xmlns='urn:example:end'/></message>", alice.JID)
	alice.ExpectStanza("message", "id=end")

	cut(alice)
	// With the results stored too they would come first, so three stored
	// would be results.
	waitFor(t, "three messages stored offline", func() bool {
		n, err := ts.Store().Offline().Count(context.Background(), "alice@localhost")
		return err == nil && n >= 3
	})
	again := ts.Online(t, "alice", "password1", "a2")
	for _, id := range []string{"f1", "r2", "end"} {
		again.ExpectStanza("message", "id="+id)
	}
	again.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
	for _, el := range again.Pending() {
		if el.Local == "message" && el.Child(nsMAM, "result") != nil {
			t.Fatalf("replayed at the next login: %s", el)
		}
	}
}

// detached waits until the session of full has lost its connection and
// waits for a resumption.
func detached(t *testing.T, ts *testserver.TS, full string) {
	t.Helper()
	waitFor(t, full+" to detach", func() bool {
		s, ok := ts.Router().Session(jid.MustParse(full)).(interface{ RemoteAddr() net.Addr })
		return ok && s.RemoteAddr() == nil
	})
}

// heldIQ returns a channel that gets the id of every IQ queued to a
// detached session of ts's first host.
func heldIQ(t *testing.T, ts *testserver.TS) <-chan string {
	ids := make(chan string, 16)
	t.Cleanup(ts.Hosts()[0].Sessions.On(module.EventSessionHeld, 0, func(ev *module.SessionEvent) bool {
		for _, el := range ev.Unacked {
			if el.Local == "iq" {
				ids <- el.Attr("id")
			}
		}
		return false
	}))
	return ids
}

func expectHeld(t *testing.T, ids <-chan string, want string) {
	t.Helper()
	select {
	case id := <-ids:
		if id != want {
			t.Fatalf("held IQ %q, want %q", id, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("IQ %q never reached the detached session", want)
	}
}

// A shutdown ends a detached session as its resumption timeout does: its
// unacknowledged messages go to offline storage, and the senders of its
// unacknowledged IQ requests get their error replies, before their own
// streams are closed. (The detached sessions used to end last, after
// every client stream had closed: the replies found no session.)
func TestSMShutdownBouncesDetachedIQs(t *testing.T) {
	cfg := fmt.Sprintf("data_dir = %q\n", t.TempDir()) + ownLoopback + noArchive
	ts := testserver.Start(t, cfg)
	ts.AddUsers(t, "password1", "alice", "bob")
	held := heldIQ(t, ts)
	bob, _ := smClient(t, ts, "bob", "phone")
	alice := ts.Online(t, "alice", "password1", "desk")
	cut(bob)
	detached(t, ts, "bob@localhost/phone")
	alice.Send("<message to='bob@localhost/phone' type='chat' id='m1'><body>kept</body></message>")
	alice.Send("<iq type='get' id='v1' to='bob@localhost/phone'><query xmlns='jabber:iq:version'/></iq>")
	expectHeld(t, held, "v1")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts.Shutdown(ctx)
	if e := alice.ExpectStanza("iq", "id=v1"); e.Attr("type") != "error" || testserver.ErrorCondition(e) != "service-unavailable" {
		t.Fatalf("reply to an IQ queued to a detached session at shutdown: %s, want service-unavailable", e)
	}
	alice.ExpectStreamError("system-shutdown")

	ts2 := testserver.Start(t, cfg)
	again := ts2.Online(t, "bob", "password1", "phone")
	expectBodies(t, again, "kept")
}

// The same when the IQ came from another server: the detached sessions
// end before federation stops, so the error reply still goes out on the
// stream to the sender's server.
func TestSMShutdownBouncesDetachedIQsAcrossServers(t *testing.T) {
	server := func(domain, ip, peer, peerIP string) *testserver.TS {
		return testserver.Start(t, fmt.Sprintf(`admin_socket = "-"
[c2s]
listen = ["%[2]s:0"]
direct_tls_listen = ["%[2]s:0"]
[[host]]
domain = %[1]q
[host.archive]
enabled = false
[s2s]
enabled = true
listen = ["%[2]s:5269"]
connect_timeout = "3s"
accept_self_signed = true
[s2s.routes]
%[3]q = "%[4]s:5269"
`, domain, ip, peer, peerIP))
	}
	a := server("a.test", "127.0.4.11", "b.test", "127.0.4.12")
	b := server("b.test", "127.0.4.12", "a.test", "127.0.4.11")
	a.AddUser(t, "alice@a.test", "password1")
	b.AddUser(t, "bob@b.test", "password1")
	held := heldIQ(t, b)
	alice := a.Online(t, "alice@a.test", "password1", "desk")
	bob, _ := smClient(t, b, "bob@b.test", "phone")
	// Both ways between the servers: b's stream to a is up.
	alice.Send("<message to='bob@b.test/phone' type='chat' id='m1'><body>hi</body></message>")
	expectBodies(t, bob, "hi")
	bob.Send("<message to='alice@a.test/desk' type='chat' id='m2'><body>hello</body></message>")
	expectBodies(t, alice, "hello")
	cut(bob)
	detached(t, b, "bob@b.test/phone")
	alice.Send("<iq type='get' id='v1' to='bob@b.test/phone'><query xmlns='jabber:iq:version'/></iq>")
	expectHeld(t, held, "v1")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.Shutdown(ctx)
	if e := alice.ExpectStanza("iq", "id=v1"); e.Attr("type") != "error" || testserver.ErrorCondition(e) != "service-unavailable" {
		t.Fatalf("reply from b.test to an IQ queued to a detached session at its shutdown: %s, want service-unavailable", e)
	}
}

// Over max_unacked the stream ends with resource-constraint, but what was
// already queued to the client is written first (within write_timeout):
// a client that reads but acknowledges too slowly gets its messages
// before the stream error, instead of losing the queue's tail from the
// stream. (They stay unacknowledged, so the session's end also handles
// them as undelivered: TestSMUnackedQueueBound.) The client reads nothing
// until the limit is crossed, so most of the burst is still in the queue
// then.
func TestSMOverMaxUnackedWritesTheQueue(t *testing.T) {
	ts := testserver.Start(t, ownLoopback+noArchive+`[c2s.stream_management]
max_unacked = 40
[limits]
rate_bytes_per_second = 100000000
rate_burst_bytes = 100000000
`)
	ts.AddUsers(t, "password1", "alice", "bob")
	alice, _ := smClient(t, ts, "alice", "a") // the presence reflection: 1 unacked
	bob := ts.Online(t, "bob", "password1", "b")
	// 40 of these are 8 MB: far more than the sockets hold while alice
	// does not read (the receive buffer grows only as she reads).
	big := strings.Repeat("x", 200*1024)
	for i := 1; i <= 40; i++ {
		bob.Send("<message to='%s' type='chat' id='q%d'><body>%s</body></message>", alice.JID, i, big)
	}
	errors := ts.Metrics().StreamErrors.WithLabelValues("resource-constraint")
	waitFor(t, "the stream error", func() bool { return counterValue(errors) > 0 })
	for i := 1; i <= 40; i++ {
		el := alice.Expect(func(el *xml.Element) bool { return el.Local == "message" || el.Local == "error" })
		if want := fmt.Sprintf("q%d", i); el.Local != "message" || el.Attr("id") != want {
			t.Fatalf("read %s %q, want message %s: the queue was not written before the stream error", el.Local, el.Attr("id"), want)
		}
	}
	alice.ExpectStreamError("resource-constraint")
}
