package last_test

import (
	"strconv"
	"testing"
	"time"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const nsLast = "jabber:iq:last"

func seconds(t *testing.T, r interface{ String() string }, q interface{ Attr(string) string }) int {
	t.Helper()
	n, err := strconv.Atoi(q.Attr("seconds"))
	if err != nil {
		t.Fatalf("seconds in %s: %v", r, err)
	}
	return n
}

// TestServerUptime: XEP-0012 §5, the host answers with its uptime and no
// text.
func TestServerUptime(t *testing.T) {
	ts := start(t, "", "alice")
	c := ts.Login(t, "alice", password, "r")
	r := c.IQ("get", "localhost", "<query xmlns='jabber:iq:last'/>")
	q := r.Child(nsLast, "query")
	if testserver.ErrorCondition(r) != "" || q == nil || q.Text() != "" {
		t.Fatalf("reply %s", r)
	}
	if s := seconds(t, r, q); s < 0 || time.Duration(s)*time.Second > time.Since(ts.Hosts()[0].Started)+time.Second {
		t.Fatalf("uptime %d", s)
	}
}

// TestAccount: XEP-0012 §3. Only the user and subscribers may ask
// (forbidden otherwise); an available user is at 0 seconds; after the last
// session ends, the answer is the time since then and the status of the
// last unavailable presence.
func TestAccount(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	ts.GrantSubscription(t, "alice", "carol")
	bob := ts.Login(t, "bob", password, "r")
	carol := ts.Login(t, "carol", password, "r")
	get := "<query xmlns='jabber:iq:last'/>"

	check := func(t *testing.T, c *testserver.Client, to, cond, text string, wantZero bool) {
		t.Helper()
		r := c.IQ("get", to, get)
		if got := testserver.ErrorCondition(r); got != cond {
			t.Fatalf("reply %s: condition %q, want %q", r, got, cond)
		}
		if cond != "" {
			return
		}
		q := r.Child(nsLast, "query")
		s := seconds(t, r, q)
		if (wantZero && s != 0) || s > 60 || q.Text() != text {
			t.Fatalf("result %s: want zero=%v text %q", q, wantZero, text)
		}
	}

	// Never logged out: nothing to tell, even to subscribers.
	check(t, carol, "alice@localhost", "item-not-found", "", false)

	alice := ts.Online(t, "alice", password, "r")
	t.Run("stranger", func(t *testing.T) { check(t, bob, "alice@localhost", "forbidden", "", false) })
	t.Run("subscriber, online", func(t *testing.T) { check(t, carol, "alice@localhost", "", "", true) })
	t.Run("self", func(t *testing.T) { check(t, alice, "", "", "", true) })
	t.Run("unknown account", func(t *testing.T) { check(t, bob, "nobody@localhost", "service-unavailable", "", false) })

	alice.Send("<presence type='unavailable'><status>Heading Home</status></presence>")
	alice.Close()
	alice.ExpectClosed()
	// The logout is recorded once the server has finished with the session.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if r := carol.IQ("get", "alice@localhost", get); testserver.ErrorCondition(r) == "" && r.Child(nsLast, "query").Text() != "" {
			break
		}
	}
	t.Run("subscriber, offline", func(t *testing.T) {
		check(t, carol, "alice@localhost", "", "Heading Home", false)
	})
	t.Run("stranger, offline", func(t *testing.T) { check(t, bob, "alice@localhost", "forbidden", "", false) })
}

// TestAccountConnected: XEP-0012 §3 makes seconds='0' a MUST for an
// account with "at least one connected or available resource", so a
// session that has sent no presence counts, and an account asking about
// itself (from such a session) is never answered item-not-found.
func TestAccountConnected(t *testing.T) {
	ts := start(t, "", "alice", "carol")
	ts.GrantSubscription(t, "alice", "carol")
	alice := ts.Login(t, "alice", password, "r") // connected, no presence
	carol := ts.Login(t, "carol", password, "r")
	for name, c := range map[string]*testserver.Client{"self": alice, "subscriber": carol} {
		r := c.IQ("get", "alice@localhost", "<query xmlns='jabber:iq:last'/>")
		q := r.Child(nsLast, "query")
		if testserver.ErrorCondition(r) != "" || q == nil || seconds(t, r, q) != 0 || q.Text() != "" {
			t.Fatalf("%s: reply %s, want seconds='0' and no text", name, r)
		}
	}
}

// TestFullJID: XEP-0012 §4. A request to a full JID from anyone not
// allowed to see the account's presence is answered forbidden by the
// server and never reaches the resource, whether or not the resource is
// connected (§8: no availability leak); the account itself and
// subscribers reach the client.
func TestFullJID(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	ts.GrantSubscription(t, "alice", "carol")
	alice := ts.Online(t, "alice", password, "r")
	bob := ts.Online(t, "bob", password, "r")
	carol := ts.Online(t, "carol", password, "r")
	get := "<query xmlns='jabber:iq:last'/>"
	isLast := func(el *xml.Element) bool {
		return el.Local == "iq" && el.Attr("type") == "get" && el.Child(nsLast, "query") != nil
	}

	for _, to := range []string{"alice@localhost/r", "alice@localhost/gone"} {
		if r := bob.IQ("get", to, get); testserver.ErrorCondition(r) != "forbidden" || r.Attr("from") != to {
			t.Fatalf("stranger to %s: %s, want forbidden from %s", to, r, to)
		}
	}
	// A round trip of alice's own: had the server delivered bob's request,
	// it would be queued before this answer.
	alice.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
	for _, el := range alice.Pending() {
		if isLast(el) {
			t.Fatalf("a stranger's request reached the client: %s", el)
		}
	}
	if r := bob.IQ("get", "nobody@localhost/r", get); testserver.ErrorCondition(r) != "service-unavailable" {
		t.Fatalf("unknown account: %s", r)
	}

	// A subscriber's request is the client's to answer.
	carol.Send("<iq type='get' id='idle' to='alice@localhost/r'>%s</iq>", get)
	req := alice.Expect(isLast)
	if req.Attr("from") != carol.JID {
		t.Fatalf("delivered request %s", req)
	}
	alice.Send("<iq type='result' id='%s' to='%s'><query xmlns='jabber:iq:last' seconds='123'/></iq>", req.Attr("id"), req.Attr("from"))
	if r := carol.ExpectStanza("iq", "id=idle"); r.Attr("type") != "result" || r.Child(nsLast, "query").Attr("seconds") != "123" {
		t.Fatalf("subscriber's answer %s", r)
	}
}
