package server_test

import (
	"fmt"
	"syscall"
	"testing"

	"parley/internal/cluster/natstest"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const nsStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

// XEP-0198 resumption of a dead node's session: alice's session, with
// stream management, is on node 1, which is killed. She asks node 2 to
// resume it: nobody holds it any more, so node 2 answers <failed/> with
// item-not-found and no h (it cannot know what node 1 handled; a guess
// would make her client drop or resend the wrong stanzas). She binds afresh and gets what bob
// sent after the kill from offline storage, and what node 1 had delivered
// without her acknowledgement from her archive.
func TestClusterSMResumeOnOtherNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two child server processes")
	}
	dsn := clusterDSN(t)
	nats := natstest.Start(t, "127.0.0.205")
	base := fmt.Sprintf("storage = \"postgres\"\npostgres_dsn = %q\n[[host]]\ndomain = \"example.com\"\n", dsn)
	seedAccounts(t, base, []string{"alice", "bob"}, [][2]string{{"alice", "bob"}, {"bob", "alice"}})
	nodes := make([]*childNode, 2)
	for i := range nodes {
		nodes[i] = startChildNode(t, childNodeConfig(base, fmt.Sprintf("127.0.0.%d", 206+i), i+1, fmt.Sprintf("%q", nats.URL())))
	}

	alice := nodes[0].login(t, "alice", "a")
	alice.Send("<enable xmlns='%s' resume='true'/>", nsSM)
	enabled := alice.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "enabled" })
	previd := enabled.Attr("id")
	if previd == "" || enabled.Attr("resume") != "true" {
		t.Fatalf("no resumable session: %s", enabled)
	}
	alice.Send("<presence/>")
	alice.ExpectStanza("presence", "from=alice@example.com/a")
	bob := nodes[1].login(t, "bob", "b")
	bob.Send("<presence/>")
	alice.ExpectStanza("presence", "from=bob@example.com/b")

	// Delivered on node 1, never acknowledged by alice's client.
	const n = 10
	for i := 0; i < n/2; i++ {
		bob.Send("<message to='alice@example.com' type='chat' id='m%d'><body>m%d</body></message>", i, i)
		alice.ExpectStanza("message", "from=bob@example.com/b")
	}
	if err := nodes[0].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = nodes[0].cmd.Wait()
	// Node 2 counts node 1 dead: alice went unavailable.
	bob.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == "alice@example.com/a" && el.Attr("type") == "unavailable"
	})
	for i := n / 2; i < n; i++ {
		bob.Send("<message to='alice@example.com' type='chat' id='m%d'><body>m%d</body></message>", i, i)
	}
	bob.Send("<iq type='get' id='ping'><ping xmlns='urn:xmpp:ping'/></iq>")
	bob.ExpectStanza("iq", "id=ping")

	// alice's client tries to resume on node 2.
	again := testserver.Dial(t, nodes[1].addr)
	again.Open("example.com")
	again.StartTLS("example.com")
	again.AuthPlain("example.com", "alice", "pw")
	again.Send("<resume xmlns='%s' previd='%s' h='%d'/>", nsSM, previd, n/2)
	failed := again.Expect(func(el *xml.Element) bool {
		return el.Space == nsSM && (el.Local == "failed" || el.Local == "resumed")
	})
	if failed.Local != "failed" || failed.Child(nsStanzas, "item-not-found") == nil {
		t.Fatalf("resumption of node 1's session on node 2: %s", failed)
	}
	if failed.HasAttr("h") {
		t.Fatalf("node 2 claims to know what node 1 handled: %s", failed)
	}

	// A fresh session gets the rest: offline messages with the initial
	// presence, everything in the archive.
	again.Bind("a")
	again.Send("<presence/>")
	offline, archived := offlineAndArchived(t, again, "bob@example.com/b")
	for i := 0; i < n; i++ {
		b := fmt.Sprintf("m%d", i)
		if !archived[b] {
			t.Errorf("%s is not in alice's archive", b)
		}
		switch {
		case i < n/2 && offline[b] != 0:
			t.Errorf("%s, delivered on node 1, came again from offline storage", b)
		case i >= n/2 && offline[b] != 1:
			t.Errorf("%s, sent after node 1 died, came %d times from offline storage", b, offline[b])
		}
	}
}

// XEP-0198 resumption through another node while the first is alive (a
// load balancer sent the client elsewhere): node 2 asks node 1 for the
// session, node 1 hands it over, and alice carries on as if nothing had
// moved. She gets <resumed/> with what node 1 had handled and the
// messages she never acknowledged; bob never sees her go unavailable;
// she is still in the room, and when she leaves for good the room and
// bob learn it from node 2 (her directed presence moved with her).
func TestClusterSMHandover(t *testing.T) {
	t.Run("OldConnectionOpen", func(t *testing.T) { testSMHandover(t, false) })
	t.Run("Detached", func(t *testing.T) { testSMHandover(t, true) })
	t.Run("HandledCountTooHigh", testSMHandoverRefused)
}

// A resumption on node 2 that acknowledges more than node 1 sent is
// refused as it would be on node 1 (XEP-0198 §4: <failed/> with the
// server's h and <handled-count-too-high/>), and the session stays on
// node 1.
func testSMHandoverRefused(t *testing.T) {
	nodes := startCluster(t, 2, "")
	a, b := nodes[0], nodes[1]
	a.AddUsers(t, "pw", "alice")
	alice := a.Login(t, "alice", "pw", "phone")
	alice.Send("<enable xmlns='%s' resume='true'/>", nsSM)
	previd := alice.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "enabled" }).Attr("id")
	alice.Send("<presence/>")
	alice.ExpectStanza("presence", "from=alice@example.com/phone")
	alice.Send("<r xmlns='%s'/>", nsSM) // the presence is counted by now
	alice.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "a" && el.Attr("h") == "1" })

	again := testserver.Dial(t, b.StartTLSAddr())
	again.Open("example.com")
	again.StartTLS("example.com")
	again.AuthPlain("example.com", "alice", "pw")
	again.Send("<resume xmlns='%s' previd='%s' h='99'/>", nsSM, previd)
	failed := again.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "failed" })
	if failed.Attr("h") != "1" || failed.Child(nsStanzas, "undefined-condition") == nil || failed.Child(nsSM, "handled-count-too-high") == nil {
		t.Fatalf("refusal: %s", failed)
	}
	// Still served by node 1.
	if res := alice.IQ("get", "example.com", "<ping xmlns='urn:xmpp:ping'/>"); res.Attr("type") != "result" {
		t.Fatalf("alice's session on node 1: %s", res)
	}
}

// testSMHandover runs TestClusterSMHandover; with detached, alice's old
// connection is cut first, and a message reaches her session on node 1
// while it waits detached.
func testSMHandover(t *testing.T, detached bool) {
	nodes := startCluster(t, 2, "")
	a, b := nodes[0], nodes[1]
	a.AddUsers(t, "pw", "alice", "bob")
	subscribeBoth(t, a, "alice", "bob")

	bob := b.Online(t, "bob", "pw", "b")
	if self := joinRoom(t, bob, "bob"); hasStatus(self, "201") {
		if res := bob.IQ("set", room, "<query xmlns='"+nsMUC+"#owner'><x xmlns='jabber:x:data' type='submit'/></query>"); res.Attr("type") != "result" {
			t.Fatalf("instant room: %s", res)
		}
	}

	alice := a.Login(t, "alice", "pw", "phone")
	alice.Send("<enable xmlns='%s' resume='true'/>", nsSM)
	enabled := alice.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "enabled" })
	previd := enabled.Attr("id")
	if previd == "" {
		t.Fatalf("no resumable session: %s", enabled)
	}
	alice.Send("<presence/>") // handled: 1
	alice.ExpectStanza("presence", "from=alice@example.com/phone")
	bob.ExpectStanza("presence", "from=alice@example.com/phone")
	joinRoom(t, alice, "alice") // handled: 2
	bob.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == room+"/alice" && el.Attr("type") == ""
	})
	for i := 0; i < 3; i++ {
		bob.Send("<message to='alice@example.com/phone' type='chat' id='u%d'><body>unacked %d</body></message>", i, i)
		alice.ExpectStanza("message", "id=u"+fmt.Sprint(i))
	}

	alice.Send("<r xmlns='%s'/>", nsSM) // both presences are counted by now
	alice.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "a" && el.Attr("h") == "2" })
	unacked := 3
	if detached {
		alice.Conn.Close()
		// Queued on node 1 once it has noticed, or written into the
		// dying connection before: unacknowledged either way.
		bob.Send("<message to='alice@example.com/phone' type='chat' id='u3'><body>unacked 3</body></message>")
		bob.IQ("get", "", "<ping xmlns='urn:xmpp:ping'/>")
		unacked++
	}
	// alice's client resumes through node 2, acknowledging nothing; its
	// old connection on node 1 may still be open (the client gave up on
	// it).
	again := testserver.Dial(t, b.StartTLSAddr())
	again.Open("example.com")
	again.StartTLS("example.com")
	again.AuthPlain("example.com", "alice", "pw")
	again.Send("<resume xmlns='%s' previd='%s' h='0'/>", nsSM, previd)
	resumed := again.Expect(func(el *xml.Element) bool {
		return el.Space == nsSM && (el.Local == "failed" || el.Local == "resumed")
	})
	if resumed.Local != "resumed" || resumed.Attr("h") != "2" || resumed.Attr("previd") != previd {
		t.Fatalf("resumption on node 2: %s (want resumed with h='2')", resumed)
	}
	for i := 0; i < unacked; i++ {
		m := again.ExpectStanza("message", "id=u"+fmt.Sprint(i))
		if body(m) != fmt.Sprintf("unacked %d", i) {
			t.Fatalf("re-sent message %d: %s", i, m)
		}
	}
	if !detached {
		alice.ExpectStreamError("conflict") // the abandoned connection on node 1
	}

	// Still alice/phone, available, in the room, reachable at her full
	// JID and in the room, now through node 2.
	bob.Send("<message to='alice@example.com/phone' type='chat' id='after'><body>after</body></message>")
	again.ExpectStanza("message", "id=after")
	groupchat(t, bob, "still here?", again)
	again.Send("<a xmlns='%s' h='%d'/>", nsSM, 1)
	// Her stream management goes on with the same id and counters.
	again.Send("<r xmlns='%s'/>", nsSM)
	if a := again.Expect(func(el *xml.Element) bool { return el.Space == nsSM && el.Local == "a" }); a.Attr("h") != "2" {
		t.Fatalf("h after the handover: %s", a)
	}

	// The handover itself told nobody: bob saw no unavailable presence
	// of alice/phone or of her in the room (everything he received so
	// far he has read or kept; a ping makes sure the rest has arrived).
	bob.IQ("get", "", "<ping xmlns='urn:xmpp:ping'/>")
	for _, el := range bob.Pending() {
		if el.Local == "presence" && el.Attr("type") == "unavailable" &&
			(el.Attr("from") == "alice@example.com/phone" || el.Attr("from") == room+"/alice") {
			t.Fatalf("the handover made alice look gone: %s", el)
		}
	}

	// Now she leaves for good: the room and bob learn it from node 2.
	again.Close()
	bob.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == room+"/alice" && el.Attr("type") == "unavailable"
	})
	bob.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == "alice@example.com/phone" && el.Attr("type") == "unavailable"
	})
}
