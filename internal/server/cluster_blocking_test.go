package server_test

import (
	"testing"
	"time"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// A blocklist changed by one of the account's sessions takes effect on
// every node at once: the node of another of its sessions (which keeps the
// list in memory) and the node of the blocked contact (which keeps a copy
// of the list of an account online elsewhere) both drop their copy on the
// change's notice, so neither lets a stanza through in either direction.
func TestClusterBlocking(t *testing.T) {
	nodes := startCluster(t, 3, "")
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]
	n1.AddUsers(t, "pw", "alice", "bob")
	subscribeBoth(t, n1, "alice", "bob")

	desk := n1.Online(t, "alice", "pw", "desk")
	phone := n2.Online(t, "alice", "pw", "phone")
	bob := n3.Online(t, "bob", "pw", "laptop")
	isChat := func(from, text string) func(*xml.Element) bool {
		return func(el *xml.Element) bool {
			return el.Local == "message" && el.Attr("from") == from && body(el) == text
		}
	}
	// Both directions work, and every node has read alice's list: node 2
	// for alice/phone's own stanzas, node 3 for bob's to her.
	phone.Send("<message to='bob@example.com/laptop' type='chat'><body>before</body></message>")
	bob.Expect(isChat("alice@example.com/phone", "before"))
	bob.Send("<message to='alice@example.com/phone' type='chat'><body>before too</body></message>")
	phone.Expect(isChat("bob@example.com/laptop", "before too"))

	if res := desk.IQ("set", "", "<block xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/></block>"); res.Attr("type") != "result" {
		t.Fatalf("block: %s", res)
	}
	time.Sleep(300 * time.Millisecond) // the notice crosses NATS

	// alice/phone on node 2 is refused with <blocked/> (XEP-0191 §3.3)...
	phone.Send("<message id='out1' to='bob@example.com/laptop' type='chat'><body>after</body></message>")
	e := phone.ExpectStanza("message", "id=out1", "type=error")
	if testserver.ErrorCondition(e) != "not-acceptable" {
		t.Fatalf("alice/phone's message to blocked bob: %s", e)
	}
	// ... and bob on node 3 finds her unavailable.
	bob.Send("<message id='in1' to='alice@example.com/phone' type='chat'><body>after too</body></message>")
	e = bob.ExpectStanza("message", "id=in1", "type=error")
	if testserver.ErrorCondition(e) != "service-unavailable" {
		t.Fatalf("bob's message to alice who blocked him: %s", e)
	}

	// Unblocked from node 2: node 1 and node 3 let it through again.
	if res := phone.IQ("set", "", "<unblock xmlns='urn:xmpp:blocking'><item jid='bob@example.com'/></unblock>"); res.Attr("type") != "result" {
		t.Fatalf("unblock: %s", res)
	}
	time.Sleep(300 * time.Millisecond)
	bob.Send("<message to='alice@example.com/desk' type='chat'><body>again</body></message>")
	desk.Expect(isChat("bob@example.com/laptop", "again"))
	desk.Send("<message to='bob@example.com/laptop' type='chat'><body>welcome back</body></message>")
	bob.Expect(isChat("alice@example.com/desk", "welcome back"))
	for _, c := range []*testserver.Client{desk, phone, bob} {
		c.Close()
	}
}
