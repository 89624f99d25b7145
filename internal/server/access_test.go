package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"parley/internal/access"
	"parley/internal/storage/sqlite"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const accessConfig = `
[[host]]
domain = "example.test"
[host.access.login]
deny_users = ["mallory@example.test"]
[host.access.muc_join]
groups = ["staff"]
users = ["dave@example.test"]
[host.access.muc_create]
users = ["alice@example.test"]
[host.access.proxy65]
deny_users = ["bob@example.test"]
[host.access.federation]
groups = ["staff"]
[proxy65]
enabled = true
listen = "127.0.0.1:0"
[auth]
groups_poll_interval = "100ms"
`

// cliGroups opens the server's storage a second time, as `parley group`
// does from another process, so changes reach the server only through
// storage.
func cliGroups(t *testing.T, ts *testserver.TS) access.KVGroups {
	t.Helper()
	st, err := sqlite.Open(context.Background(), ts.Config.SQLitePath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return access.KVGroups{Store: st}
}

// Each user outside one service's list is refused that service and only
// that one, with the XEP's error and a text.
func TestServiceAccess(t *testing.T) {
	ts := testserver.Start(t, accessConfig)
	ts.AddUsers(t, "secret-pass", "alice", "bob", "carol", "dave", "mallory")
	g := cliGroups(t, ts)
	ctx := context.Background()
	for _, u := range []string{"alice", "bob", "carol"} {
		if err := g.Add(ctx, "example.test", u, "staff"); err != nil {
			t.Fatal(err)
		}
	}

	// Login: mallory is denied, everyone else logs in.
	if got := failureCond(saslAttempt(t, ts, "mallory", "secret-pass")); got != "not-authorized" {
		t.Fatalf("mallory login: %s", got)
	}
	alice := ts.Online(t, "alice", "secret-pass", "r")
	bob := ts.Online(t, "bob", "secret-pass", "r")
	carol := ts.Online(t, "carol", "secret-pass", "r")
	dave := ts.Online(t, "dave", "secret-pass", "r")

	join := func(c *testserver.Client, room, nick string) *xml.Element {
		c.Send("<presence to='%s@conference.example.test/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>", room, nick)
		return c.Expect(func(el *xml.Element) bool {
			return el.Local == "presence" && strings.HasPrefix(el.Attr("from"), room+"@conference.example.test/"+nick)
		})
	}
	wantErr := func(what string, el *xml.Element, cond string) {
		t.Helper()
		if got := testserver.ErrorCondition(el); got != cond {
			t.Fatalf("%s: %s, want %q", what, el, cond)
		}
		if cond != "" && el.Child("", "error").ChildText("urn:ietf:params:xml:ns:xmpp-stanzas", "text") == "" {
			t.Errorf("%s: refusal without a text: %s", what, el)
		}
	}
	// Room creation: only alice; carol (staff) may join but not create.
	wantErr("carol creates", join(carol, "carolroom", "carol"), "not-allowed")
	wantErr("alice creates", join(alice, "lobby", "alice"), "")
	alice.IQ("set", "lobby@conference.example.test", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>")
	// Joining: staff and dave; carol joins.
	wantErr("carol joins", join(carol, "lobby", "carol"), "")
	wantErr("dave joins", join(dave, "lobby", "dave"), "")

	// Proxy65: bob is refused, alice served.
	proxy := "proxy." + "example.test"
	if ts.Config.Proxy65.Domain != "" {
		proxy = ts.Config.Proxy65.Domain
	}
	wantErr("bob proxy", bob.IQ("get", proxy, "<query xmlns='http://jabber.org/protocol/bytestreams'/>"), "forbidden")
	wantErr("alice proxy", alice.IQ("get", proxy, "<query xmlns='http://jabber.org/protocol/bytestreams'/>"), "")
	// Nor can files be sent to bob through it.
	wantErr("activate to bob", alice.IQ("set", proxy, "<query xmlns='http://jabber.org/protocol/bytestreams' sid='s1'><activate>bob@example.test/r</activate></query>"), "forbidden")
	// bob still joins rooms (staff): only the proxy is refused.
	wantErr("bob joins", join(bob, "lobby", "bob"), "")

	// Federation: dave (not staff) gets forbidden; alice's message
	// passes the filter and meets the disabled federation instead.
	dave.Send("<message to='eve@remote.test' id='f1' type='chat'><body>hi</body></message>")
	wantErr("dave to remote", dave.ExpectStanza("message", "id=f1"), "forbidden")
	alice.Send("<message to='eve@remote.test' id='f2' type='chat'><body>hi</body></message>")
	wantErr("alice to remote", alice.ExpectStanza("message", "id=f2"), "remote-server-not-found")
	// dave still talks to local users.
	dave.Send("<message to='alice@example.test/r' id='l1' type='chat'><body>local</body></message>")
	alice.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") == "local" })

	// A membership change made by `parley group` reaches the running
	// server: dave joins staff and may federate; the removed alice may no
	// longer join rooms.
	if err := g.Add(ctx, "example.test", "dave", "staff"); err != nil {
		t.Fatal(err)
	}
	if err := g.Remove(ctx, "example.test", "alice", "staff"); err != nil {
		t.Fatal(err)
	}
	ok := false
	for i := 0; i < 100 && !ok; i++ {
		dave.Send("<message to='eve@remote.test' id='g%d' type='chat'><body>hi</body></message>", i)
		el := dave.ExpectStanza("message", "id=g"+itoa(i))
		ok = testserver.ErrorCondition(el) == "remote-server-not-found"
		if !ok {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if !ok {
		t.Fatal("dave still refused federation after joining staff")
	}
	// The change reached the access control (the cache was dropped):
	// alice, out of staff, is refused joining another room.
	wantErr("alice joins after leaving staff", join(alice, "second", "alice"), "forbidden")
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

// Auto-buddy on a database host: `parley group add` (another process
// writing storage) puts the members in each other's rosters with pushes
// to online users, and `parley group del` takes them out again.
func TestSharedRosterLive(t *testing.T) {
	ts := testserver.Start(t, `
[[host]]
domain = "example.test"
[[host.shared_roster]]
group = "team"
name = "Team"
[auth]
groups_poll_interval = "100ms"
`)
	ts.AddUsers(t, "secret-pass", "alice", "bob")
	g := cliGroups(t, ts)
	ctx := context.Background()
	alice := ts.Online(t, "alice", "secret-pass", "r")
	alice.IQ("get", "", "<query xmlns='jabber:iq:roster'/>")
	bob := ts.Online(t, "bob", "secret-pass", "r")

	for _, u := range []string{"alice", "bob"} {
		if err := g.Add(ctx, "example.test", u, "team"); err != nil {
			t.Fatal(err)
		}
	}
	push := alice.Expect(func(el *xml.Element) bool {
		if el.Local != "iq" || el.Attr("type") != "set" {
			return false
		}
		it := el.FirstElement().Child("", "item")
		return it != nil && it.Attr("jid") == "bob@example.test"
	})
	alice.Send("<iq type='result' id='%s'/>", push.Attr("id"))
	it := push.FirstElement().FirstElement()
	if it.Attr("subscription") != "both" || it.ChildText("", "group") != "Team" {
		t.Fatalf("push: %s", push)
	}
	// bob is online: his presence arrives at once.
	alice.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && strings.HasPrefix(el.Attr("from"), "bob@example.test/")
	})
	_ = bob

	if err := g.Remove(ctx, "example.test", "bob", "team"); err != nil {
		t.Fatal(err)
	}
	alice.Expect(func(el *xml.Element) bool {
		if el.Local != "iq" || el.Attr("type") != "set" {
			return false
		}
		it := el.FirstElement().Child("", "item")
		return it != nil && it.Attr("jid") == "bob@example.test" && it.Attr("subscription") == "remove"
	})
}
