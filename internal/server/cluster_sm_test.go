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

// XEP-0198 resumption does not cross nodes: alice's session, with stream
// management, is on node 1, which is killed. She asks node 2 to resume
// it: node 2 never had it, so it answers <failed/> with item-not-found and
// no h (it cannot know what node 1 handled; a guess would make her client
// drop or resend the wrong stanzas). She binds afresh and gets what bob
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
