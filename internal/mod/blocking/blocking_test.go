package blocking_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// pushOf returns the <block/> or <unblock/> of a blocklist push, or nil.
func pushOf(el *xml.Element) *xml.Element {
	if el.Attr("type") != "set" || el.Attr("from") != "" {
		return nil
	}
	if p := el.Child(nsBlocking, "block"); p != nil {
		return p
	}
	return el.Child(nsBlocking, "unblock")
}

// expectPush waits for c's next blocklist push and checks it is a <local/>
// with exactly the JIDs want, in order.
func expectPush(t *testing.T, c *testserver.Client, local string, want ...string) {
	t.Helper()
	el := c.Expect(func(el *xml.Element) bool { return el.Local == "iq" && pushOf(el) != nil })
	p := pushOf(el)
	got := []string{}
	for _, it := range p.Elements() {
		got = append(got, it.Attr("jid"))
	}
	if p.Local != local || !slices.Equal(got, want) || el.Attr("to") != c.JID {
		t.Fatalf("%s: push %s, want <%s/> with %v", c.JID, el, local, want)
	}
	// Clients answer pushes; the server drops the result quietly.
	c.Send("<iq type='result' id='%s'/>", el.Attr("id"))
}

// TestCommands walks XEP-0191 §3.1-§3.5: the feature; retrieving an empty
// and a filled list; block and unblock with pushes to every resource that
// retrieved the list (the requester too) and none to the others; items
// already blocked, or not blocked, are not errors and push nothing;
// unblock-all pushes an empty <unblock/>.
func TestCommands(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a1 := online(t, ts, "alice", "a1")
	a2 := online(t, ts, "alice", "a2")
	a3 := online(t, ts, "alice", "a3") // never retrieves the list

	info := a1.IQ("get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if !strings.Contains(info.String(), "var='"+nsBlocking+"'") {
		t.Fatalf("disco#info lacks %s: %s", nsBlocking, info)
	}
	if got := blocklist(t, a1); len(got) != 0 {
		t.Fatalf("new account's list: %v", got)
	}
	blocklist(t, a2)

	// Duplicates collapse; JIDs are stored and pushed in canonical form.
	mustOK(t, block(a1, "bob@localhost", "Example.NET", "bob@localhost"))
	expectPush(t, a1, "block", "bob@localhost", "example.net")
	expectPush(t, a2, "block", "bob@localhost", "example.net")
	if got := blocklist(t, a1); !slices.Equal(got, []string{"bob@localhost", "example.net"}) {
		t.Fatalf("list %v", got)
	}
	if got := stored(t, ts, "alice"); !slices.Equal(got, []string{"bob@localhost", "example.net"}) {
		t.Fatalf("stored %v", got)
	}

	mustOK(t, block(a1, "bob@localhost"))                 // already blocked: no push
	mustOK(t, unblock(a1, "nobody@localhost"))            // not blocked: no push
	mustOK(t, unblock(a1, "bob@localhost/not-the-item"))  // an item is matched exactly
	mustOK(t, block(a1, "carol@example.org/phone"))       // the next push seen must be this one
	expectPush(t, a2, "block", "carol@example.org/phone") // ... so the three above pushed nothing
	expectPush(t, a1, "block", "carol@example.org/phone")

	mustOK(t, unblock(a2, "example.net"))
	expectPush(t, a1, "unblock", "example.net")
	expectPush(t, a2, "unblock", "example.net")

	mustOK(t, unblock(a1))
	expectPush(t, a1, "unblock")
	expectPush(t, a2, "unblock")
	if got := blocklist(t, a1); len(got) != 0 {
		t.Fatalf("after unblock-all: %v", got)
	}
	if got := stored(t, ts, "alice"); len(got) != 0 {
		t.Fatalf("stored after unblock-all: %v", got)
	}
	mustOK(t, unblock(a1)) // nothing left: no push

	// a3 never asked for the list: the first push it sees is the one after
	// it does.
	blocklist(t, a3)
	mustOK(t, block(a1, "last@localhost"))
	expectPush(t, a3, "block", "last@localhost")
}

// TestBadRequests: malformed commands are refused and store nothing.
func TestBadRequests(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice", "a")
	bob := online(t, ts, "bob", "b")
	mustOK(t, block(a, "keep@localhost"))

	for _, tc := range []struct {
		name, from, typ, to, payload, cond string
	}{
		{"block without items", "alice", "set", "", "<block xmlns='urn:xmpp:blocking'/>", "bad-request"},
		{"block with only foreign children", "alice", "set", "", "<block xmlns='urn:xmpp:blocking'><x xmlns='urn:example'/></block>", "bad-request"},
		{"item without jid", "alice", "set", "", "<block xmlns='urn:xmpp:blocking'><item/></block>", "bad-request"},
		{"empty jid", "alice", "set", "", "<block xmlns='urn:xmpp:blocking'>" + items("") + "</block>", "jid-malformed"},
		{"empty localpart", "alice", "set", "", "<block xmlns='urn:xmpp:blocking'>" + items("@localhost") + "</block>", "jid-malformed"},
		{"empty domain", "alice", "set", "", "<block xmlns='urn:xmpp:blocking'>" + items("bob@") + "</block>", "jid-malformed"},
		{"two at signs", "alice", "set", "", "<block xmlns='urn:xmpp:blocking'>" + items("a@b@c") + "</block>", "jid-malformed"},
		{"resource too long", "alice", "set", "", "<block xmlns='urn:xmpp:blocking'>" + items("bob@localhost/"+strings.Repeat("r", 1024)) + "</block>", "jid-malformed"},
		{"one bad item among good ones", "alice", "set", "", "<block xmlns='urn:xmpp:blocking'>" + items("good@localhost", "bad@@localhost") + "</block>", "jid-malformed"},
		{"oneself", "alice", "set", "", "<block xmlns='urn:xmpp:blocking'>" + items("alice@localhost") + "</block>", "not-acceptable"},
		{"one's own resource", "alice", "set", "", "<block xmlns='urn:xmpp:blocking'>" + items("good@localhost", "Alice@localhost/a") + "</block>", "not-acceptable"},
		{"unblock item without jid", "alice", "set", "", "<unblock xmlns='urn:xmpp:blocking'><item/></unblock>", "bad-request"},
		{"unblock malformed", "alice", "set", "", "<unblock xmlns='urn:xmpp:blocking'>" + items("keep@@localhost") + "</unblock>", "jid-malformed"},
		{"blocklist in a set", "alice", "set", "", "<blocklist xmlns='urn:xmpp:blocking'/>", "bad-request"},
		{"block in a get", "alice", "get", "", "<block xmlns='urn:xmpp:blocking'>" + items("x@localhost") + "</block>", "bad-request"},
		{"another account's list", "bob", "get", "alice@localhost", "<blocklist xmlns='urn:xmpp:blocking'/>", "service-unavailable"},
		{"changing another account's list", "bob", "set", "alice@localhost", "<unblock xmlns='urn:xmpp:blocking'/>", "service-unavailable"},
		{"addressed to the server", "alice", "get", "localhost", "<blocklist xmlns='urn:xmpp:blocking'/>", "service-unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := map[string]*testserver.Client{"alice": a, "bob": bob}[tc.from]
			r := c.IQ(tc.typ, tc.to, tc.payload)
			if got := testserver.ErrorCondition(r); got != tc.cond {
				t.Fatalf("reply %s: condition %q, want %q", r, got, tc.cond)
			}
			if got := stored(t, ts, "alice"); !slices.Equal(got, []string{"keep@localhost"}) {
				t.Fatalf("stored %v after a refused request", got)
			}
		})
	}
}

// TestLimit: limits.max_blocklist_items bounds the list; a block command
// that would pass it is refused whole with resource-constraint, stores
// nothing and pushes nothing; one of 10 000 items is refused the same way
// (with the stanza limits raised so it reaches the module), also at the
// default limit.
func TestLimit(t *testing.T) {
	const big = "max_stanza_bytes = 1048576\nrate_burst_bytes = 1048576\nrate_bytes_per_second = 104857600\n"
	ts := start(t, "[limits]\nmax_blocklist_items = 3\n"+big, "alice")
	a := online(t, ts, "alice", "a")
	blocklist(t, a)
	mustOK(t, block(a, "u1@localhost", "u2@localhost"))
	expectPush(t, a, "block", "u1@localhost", "u2@localhost")
	if r := block(a, "u3@localhost", "u4@localhost"); testserver.ErrorCondition(r) != "resource-constraint" {
		t.Fatalf("over the limit: %s", r)
	}
	if got := stored(t, ts, "alice"); len(got) != 2 {
		t.Fatalf("stored %v after a refused block", got)
	}
	mustOK(t, block(a, "u2@localhost", "u3@localhost")) // u2 is blocked already: 3 in all
	expectPush(t, a, "block", "u3@localhost")           // (and the refused one pushed nothing)
	if r := block(a, "u4@localhost"); testserver.ErrorCondition(r) != "resource-constraint" {
		t.Fatalf("at the limit: %s", r)
	}

	many := func() []string {
		out := make([]string, 10000)
		for i := range out {
			out[i] = fmt.Sprintf("user%d@example.org", i)
		}
		return out
	}()
	if r := block(a, many...); testserver.ErrorCondition(r) != "resource-constraint" {
		t.Fatalf("10 000 items: %s", r)
	}
	if got := stored(t, ts, "alice"); len(got) != 3 {
		t.Fatalf("stored %d items after the 10 000-item request", len(got))
	}
	sync(t, a)

	ts2 := start(t, "[limits]\n"+big, "alice")
	a2 := online(t, ts2, "alice", "a")
	if r := block(a2, many...); testserver.ErrorCondition(r) != "resource-constraint" {
		t.Fatalf("10 000 items at the default limit: %s", r)
	}
	if got := stored(t, ts2, "alice"); len(got) != 0 {
		t.Fatalf("stored %d items", len(got))
	}
	mustOK(t, block(a2, many[:1000]...)) // exactly the default limit
	if got := stored(t, ts2, "alice"); len(got) != 1000 {
		t.Fatalf("stored %d items, want 1000", len(got))
	}
}

// firstOf waits for c's first stanza that satisfies one of the matchers and
// returns its index: tests put a marker after stanzas that must not arrive
// and check the marker comes first.
func firstOf(c *testserver.Client, matchers ...func(*xml.Element) bool) int {
	i := -1
	c.Expect(func(el *xml.Element) bool {
		for j, m := range matchers {
			if m(el) {
				i = j
				return true
			}
		}
		return false
	})
	return i
}

func fromUser(local string) func(*xml.Element) bool {
	return func(el *xml.Element) bool { return strings.HasPrefix(el.Attr("from"), local+"@") }
}

func withID(id string) func(*xml.Element) bool {
	return func(el *xml.Element) bool { return el.Attr("id") == id }
}

// TestInbound: nothing from a blocked JID reaches the user (§3.3), and the
// sender sees the user as offline: messages get service-unavailable, IQ
// requests too, IQ results and errors and all presence (notifications,
// subscription requests, probes) vanish without an answer. A full-JID item
// blocks that resource only; a bare one every resource; a domain every
// account of the domain, but never the user's own server or resources.
func TestInbound(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	a := online(t, ts, "alice", "a")
	a2 := online(t, ts, "alice", "a2")
	b1 := online(t, ts, "bob", "b1")
	b2 := online(t, ts, "bob", "b2")
	carol := online(t, ts, "carol", "c")

	mustOK(t, block(a, "bob@localhost/b1"))
	b1.Send("<message to='alice@localhost' type='chat' id='m1'><body>1</body></message>")
	if e := b1.ExpectStanza("message", "id=m1"); testserver.ErrorCondition(e) != "service-unavailable" {
		t.Fatalf("blocked resource's message: %s", e)
	}
	b2.Send("<message to='alice@localhost/a' type='chat' id='m2'><body>2</body></message>")
	if m := a.ExpectStanza("message", "id=m2"); m.Attr("from") != b2.JID {
		t.Fatalf("other resource's message: %s", m)
	}

	mustOK(t, block(a, "bob@localhost"))
	for _, tc := range []struct {
		name, stanza, cond string // cond "": no answer at all
	}{
		{"chat to the full JID", "<message to='alice@localhost/a' type='chat' id='x1'><body>x</body></message>", "service-unavailable"},
		{"normal to the bare JID", "<message to='alice@localhost' id='x2'><body>x</body></message>", "service-unavailable"},
		{"headline", "<message to='alice@localhost' type='headline' id='x3'><body>x</body></message>", "service-unavailable"},
		{"message error", "<message to='alice@localhost/a' type='error' id='x4'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>", ""},
		{"iq get to the full JID", "<iq to='alice@localhost/a' type='get' id='x5'><query xmlns='jabber:iq:version'/></iq>", "service-unavailable"},
		{"iq get to the bare JID (vCard)", "<iq to='alice@localhost' type='get' id='x6'><vCard xmlns='vcard-temp'/></iq>", "service-unavailable"},
		{"iq result", "<iq to='alice@localhost/a' type='result' id='x7'/>", ""},
		{"directed presence", "<presence to='alice@localhost/a' id='x8'/>", ""},
		{"subscription request", "<presence to='alice@localhost' type='subscribe' id='x9'/>", ""},
		{"probe", "<presence to='alice@localhost' type='probe' id='x10'/>", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b2.Send("%s", tc.stanza)
			if tc.cond != "" {
				el := b2.Expect(func(el *xml.Element) bool {
					return el.Attr("type") == "error" && strings.HasPrefix(el.Attr("from"), "alice@")
				})
				if testserver.ErrorCondition(el) != tc.cond {
					t.Fatalf("answer %s, want %s", el, tc.cond)
				}
			}
			sync(t, b2)
			// Nothing reached alice: carol's marker is the first stanza
			// from anyone but alice herself or the server.
			marker := "marker-" + strings.ReplaceAll(tc.name, " ", "-")
			carol.Send("<message to='alice@localhost/a' type='chat' id='%s'><body>m</body></message>", marker)
			if i := firstOf(a, fromUser("bob"), withID(marker)); i != 1 {
				t.Fatal("a stanza from the blocked JID reached alice")
			}
		})
	}

	// A remote domain's users, as another server's stream hands them to
	// the router.
	mustOK(t, block(a, "example.net"))
	for i, from := range []string{"eve@example.net/x", "example.net", "bot.example.net"} {
		el, err := xml.ParseElement([]byte(fmt.Sprintf("<message from='%s' to='alice@localhost/a' type='chat' id='remote%d'><body>r</body></message>", from, i)), xml.DefaultLimits(), "jabber:client")
		if err != nil {
			t.Fatal(err)
		}
		ts.Router().Route(context.Background(), el)
	}
	carol.Send("<message to='alice@localhost/a' type='chat' id='mark-remote'><body>m</body></message>")
	// A subdomain is another domain: its message arrives, the others not.
	if el := a.Expect(func(el *xml.Element) bool { return strings.HasPrefix(el.Attr("id"), "remote") }); el.Attr("id") != "remote2" {
		t.Fatalf("a message from the blocked domain reached alice: %s", el)
	}
	a.ExpectStanza("message", "id=mark-remote")

	// A domain item: everyone at localhost is blocked, but not alice's own
	// server or her other resource.
	mustOK(t, unblock(a))
	mustOK(t, block(a, "localhost"))
	if r := a.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>"); r.Attr("type") != "result" {
		t.Fatalf("ping to the blocked domain's server itself: %s", r)
	}
	carol.Send("<message to='alice@localhost' type='chat' id='c1'><body>c</body></message>")
	if e := carol.ExpectStanza("message", "id=c1"); testserver.ErrorCondition(e) != "service-unavailable" {
		t.Fatalf("domain block: %s", e)
	}
	a2.Send("<message to='alice@localhost/a' type='chat' id='own'><body>own</body></message>")
	a.ExpectStanza("message", "id=own")
	mustOK(t, unblock(a))
	b2.Send("<message to='alice@localhost/a' type='chat' id='after'><body>after</body></message>")
	a.ExpectStanza("message", "id=after")

	// No answer of any kind went back for the silent cases: the first
	// stanza from alice that bob sees is this one.
	a.Send("<message to='bob@localhost/b2' type='chat' id='from-alice'><body>hi</body></message>")
	if el := b2.Expect(fromUser("alice")); el.Attr("id") != "from-alice" {
		t.Fatalf("bob got %s from alice for a silently dropped stanza", el)
	}
	// The blocked subscription request was not kept for alice either: a
	// new session is not offered it.
	a3 := online(t, ts, "alice", "a3")
	carol.Send("<message to='alice@localhost/a3' id='mark-a3'/>")
	isSubscribe := func(el *xml.Element) bool { return el.Local == "presence" && el.Attr("type") == "subscribe" }
	if i := firstOf(a3, isSubscribe, withID("mark-a3")); i != 1 {
		t.Fatal("the subscription request from the blocked JID was stored")
	}
}

// TestOutbound: what the user sends to a blocked JID goes nowhere and comes
// back as not-acceptable with <blocked xmlns='urn:xmpp:blocking:errors'/>
// (§3.3), whatever the stanza, including subscription requests (which leave
// the roster alone) and to remote domains and services.
func TestOutbound(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	a := online(t, ts, "alice", "a")
	bob := online(t, ts, "bob", "b")
	carol := online(t, ts, "carol", "c")
	mustOK(t, block(a, "bob@localhost", "example.net", "conference.localhost"))

	for _, tc := range []struct{ name, stanza string }{
		{"message to the bare JID", "<message to='bob@localhost' type='chat' id='o1'><body>x</body></message>"},
		{"message to a resource", "<message to='bob@localhost/b' id='o2'><body>x</body></message>"},
		{"iq", "<iq to='bob@localhost/b' type='get' id='o3'><query xmlns='jabber:iq:version'/></iq>"},
		{"directed presence", "<presence to='bob@localhost/b' id='o4'/>"},
		{"subscription request", "<presence to='bob@localhost' type='subscribe' id='o5'/>"},
		{"remote domain", "<message to='someone@example.net' type='chat' id='o6'><body>x</body></message>"},
		{"room join", "<presence to='room@conference.localhost/alice' id='o7'><x xmlns='http://jabber.org/protocol/muc'/></presence>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.Send("%s", tc.stanza)
			el := a.Expect(func(el *xml.Element) bool { return el.Attr("type") == "error" })
			expectBlockedError(t, el)
		})
	}
	a.Send("<message to='bob@localhost/b' type='error' id='o8'><error type='cancel'><gone xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>")
	sync(t, a)
	carol.Send("<message to='bob@localhost/b' type='chat' id='mark'><body>m</body></message>")
	if i := firstOf(bob, fromUser("alice"), withID("mark")); i != 1 {
		t.Fatal("a stanza from alice reached the JID she blocked")
	}
	if _, err := ts.Store().Roster().Get(context.Background(), "alice@localhost", "bob@localhost"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the refused subscription request changed the roster: %v", err)
	}
}

// TestPresence: blocking a contact with mutual subscriptions sends it the
// user's unavailable presence and shows it to the user as unavailable; from
// then on neither side's presence reaches the other; unblocking sends the
// user's current presence and probes the contact, so both see each other
// again (§3.3, §3.4). Subscriptions stay ("polite blocking", §4).
func TestPresence(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	subscribeBoth(t, ts, "alice", "bob")
	a := online(t, ts, "alice", "a")
	// alice's probe finds bob offline (RFC 6121 §4.3.2)...
	a.ExpectStanza("presence", "from=bob@localhost", "type=unavailable")
	b := online(t, ts, "bob", "b")
	carol := online(t, ts, "carol", "c")
	// ... then each has the other's available presence.
	a.ExpectStanza("presence", "from="+b.JID)
	b.ExpectStanza("presence", "from="+a.JID)

	mustOK(t, block(a, "bob@localhost"))
	b.ExpectStanza("presence", "from="+a.JID, "type=unavailable")
	a.ExpectStanza("presence", "from=bob@localhost", "type=unavailable")

	a.Send("<presence id='a-away'><show>away</show></presence>")
	a.ExpectStanza("presence", "id=a-away")
	b.Send("<presence id='b-away'><show>xa</show></presence>")
	b.ExpectStanza("presence", "id=b-away")
	sync(t, a)
	sync(t, b)
	carol.Send("<message to='bob@localhost/b' id='mark-b'/>")
	carol.Send("<message to='alice@localhost/a' id='mark-a'/>")
	if i := firstOf(b, fromUser("alice"), withID("mark-b")); i != 1 {
		t.Fatal("alice's presence reached bob while he is blocked")
	}
	if i := firstOf(a, fromUser("bob"), withID("mark-a")); i != 1 {
		t.Fatal("bob's presence reached alice while he is blocked")
	}
	for _, pair := range [][2]string{{"alice@localhost", "bob@localhost"}, {"bob@localhost", "alice@localhost"}} {
		it, err := ts.Store().Roster().Get(context.Background(), pair[0], pair[1])
		if err != nil || it.Subscription != storage.SubBoth {
			t.Fatalf("%s's roster item for %s: %+v %v", pair[0], pair[1], it, err)
		}
	}

	mustOK(t, unblock(a, "bob@localhost"))
	if p := b.ExpectStanza("presence", "from="+a.JID); p.ChildText("", "show") != "away" {
		t.Fatalf("bob got %s, want alice's current presence", p)
	}
	if p := a.ExpectStanza("presence", "from="+b.JID); p.ChildText("", "show") != "xa" {
		t.Fatalf("alice got %s, want bob's current presence", p)
	}
}

// TestHeldBackFromBefore: the block covers what arrived before it too:
// a message stored offline and a subscription request kept for the user
// from the JID she then blocks are not delivered at her next login, while
// others' are.
func TestHeldBackFromBefore(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	bob := online(t, ts, "bob", "b")
	carol := online(t, ts, "carol", "c")
	bob.Send("<message to='alice@localhost' type='chat' id='old-bob'><body>old</body></message>")
	bob.Send("<presence to='alice@localhost' type='subscribe' id='sub-bob'/>")
	carol.Send("<message to='alice@localhost' type='chat' id='old-carol'><body>old</body></message>")
	sync(t, bob)
	sync(t, carol)

	a := ts.Login(t, "alice", password, "a")
	mustOK(t, block(a, "bob@localhost"))
	a.Send("<presence/>")
	a.ExpectStanza("presence", "from="+a.JID)
	sync(t, a)
	carol.Send("<message to='alice@localhost/a' id='mark'/>")
	if i := firstOf(a, fromUser("bob"), withID("mark")); i != 1 {
		t.Fatal("a stanza bob sent before the block reached alice")
	}
	a.ExpectStanza("message", "id=old-carol")
}

// TestAccountDeletion: deleting an account removes its list, and an account
// created again under the name starts with an empty one.
func TestAccountDeletion(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice", "a")
	mustOK(t, block(a, "bob@localhost", "example.net"))
	a.Send("<iq type='set' id='rm'><query xmlns='jabber:iq:register'><remove/></query></iq>")
	if r := a.ExpectStanza("iq", "id=rm"); r.Attr("type") != "result" {
		t.Fatalf("remove: %s", r)
	}
	a.ExpectStreamError("not-authorized")
	if got := stored(t, ts, "alice"); len(got) != 0 {
		t.Fatalf("list survived the account: %v", got)
	}
	ts.AddUser(t, "alice", password)
	a = online(t, ts, "alice", "a")
	if got := blocklist(t, a); len(got) != 0 {
		t.Fatalf("new account inherited %v", got)
	}
	bob := online(t, ts, "bob", "b")
	bob.Send("<message to='alice@localhost/a' type='chat' id='hello'><body>hi</body></message>")
	a.ExpectStanza("message", "id=hello")
}
