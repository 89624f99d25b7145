package adhoc_test

import (
	"context"
	"encoding/base64"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"parley/internal/mod/adhoc"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

const (
	nsItems = "http://jabber.org/protocol/disco#items"
	nsInfo  = "http://jabber.org/protocol/disco#info"
)

// allCommands is the XEP-0133 set this module offers, by node name.
var allCommands = []string{"add-user", "announce", "change-user-password", "delete-motd", "delete-user",
	"disable-user", "edit-motd", "end-user-session", "get-online-users-list", "get-online-users-num",
	"get-registered-users-num", "get-user-lastlogin", "get-user-roster", "reenable-user", "set-motd"}

func canLogin(t *testing.T, ts *testserver.TS, user, pw string) bool {
	t.Helper()
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open(domain)
	c.StartTLS(domain)
	msg := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + pw))
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", msg)
	el := c.Expect(func(el *xml.Element) bool { return el.Local == "success" || el.Local == "failure" })
	c.Close()
	return el.Local == "success"
}

// TestDiscovery: the command list holds every admin command for an admin
// of the host and nothing for anyone else, and a command node's disco#info
// is found only by those who may run it.
func TestDiscovery(t *testing.T) {
	ts := start(t, "admin", "alice", "boss@other.test")
	adm := ts.Login(t, "admin", password, "r")
	alice := ts.Login(t, "alice", password, "r")
	boss := ts.Login(t, "boss@other.test", password, "r")

	if res := alice.IQ("get", domain, "<query xmlns='"+nsInfo+"'/>"); !strings.Contains(res.String(), adhoc.NS) {
		t.Errorf("disco#info of the host does not announce %s: %s", adhoc.NS, res)
	}
	list := func(c *testserver.Client) []string {
		res := c.IQ("get", domain, "<query xmlns='"+nsItems+"' node='"+adhoc.NS+"'/>")
		if res.Attr("type") != "result" {
			t.Fatalf("disco#items of the command node: %s", res)
		}
		var out []string
		for _, it := range res.FirstElement().Elements() {
			if it.Attr("jid") != domain {
				t.Errorf("item jid %q, want %s", it.Attr("jid"), domain)
			}
			out = append(out, strings.TrimPrefix(it.Attr("node"), admin))
		}
		return out
	}
	if got := list(adm); !slices.Equal(got, allCommands) {
		t.Errorf("admin sees %v, want %v", got, allCommands)
	}
	for name, c := range map[string]*testserver.Client{"user": alice, "admin of another host": boss} {
		if got := list(c); len(got) != 0 {
			t.Errorf("%s sees commands %v", name, got)
		}
		res := c.IQ("get", domain, "<query xmlns='"+nsInfo+"' node='"+admin+"add-user'/>")
		if got := testserver.ErrorCondition(res); got != "item-not-found" {
			t.Errorf("%s: disco#info of a command node: %q, want item-not-found", name, got)
		}
	}
	res := adm.IQ("get", domain, "<query xmlns='"+nsInfo+"' node='"+admin+"add-user'/>")
	if res.Attr("type") != "result" || !strings.Contains(res.String(), "command-node") {
		t.Errorf("admin: disco#info of a command node: %s", res)
	}
}

// TestForbidden: no command runs for a user of the host, a user of
// another host or the admin of another host, whatever the stage.
func TestForbidden(t *testing.T) {
	ts := start(t, "admin", "alice", "boss@other.test", "carol@other.test")
	adm := ts.Login(t, "admin", password, "r")
	sid := command(t, cmd(adm, admin+"add-user", "", "", "")).Attr("sessionid")
	for _, who := range []string{"alice", "boss@other.test", "carol@other.test"} {
		c := ts.Login(t, who, password, "r")
		for _, node := range allCommands {
			if got := testserver.ErrorCondition(cmd(c, admin+node, "execute", "", "")); got != "forbidden" {
				t.Errorf("%s runs %s: %q, want forbidden", who, node, got)
			}
		}
		res := cmd(c, admin+"add-user", "complete", sid, submit("accountjid", "x@localhost", "password", "p"))
		if got := testserver.ErrorCondition(res); got != "forbidden" {
			t.Errorf("%s completes the admin's session: %q, want forbidden", who, got)
		}
	}
	if canLogin(t, ts, "x", "p") {
		t.Error("a refused add-user created the account")
	}
}

// TestAddUser: the new account logs in; taken names, mismatched
// passwords and JIDs of other hosts are refused.
func TestAddUser(t *testing.T) {
	ts := start(t, "admin", "alice")
	adm := ts.Login(t, "admin", password, "r")
	last := run(t, adm, "add-user", submit("accountjid", "newbie@localhost", "password", "s3cret-pw", "password-verify", "s3cret-pw", "email", "n@example.org"))
	if !strings.Contains(note(last), "newbie@localhost") {
		t.Errorf("note %q", note(last))
	}
	if !canLogin(t, ts, "newbie", "s3cret-pw") {
		t.Fatal("the added account cannot log in")
	}
	acct, err := ts.Store().Accounts().Get(context.Background(), domain, "newbie")
	if err != nil || acct.Fields["email"] != "n@example.org" {
		t.Errorf("stored account %+v, %v", acct.Fields, err)
	}
	for _, tc := range []struct{ name, form, cond string }{
		{"taken", submit("accountjid", "alice@localhost", "password", "x"), "conflict"},
		{"mismatch", submit("accountjid", "b@localhost", "password", "x", "password-verify", "y"), "not-acceptable"},
		{"under the password policy", submit("accountjid", "b@localhost", "password", "short"), "not-acceptable"},
		{"other host", submit("accountjid", "b@other.test", "password", "x"), "bad-request"},
		{"not a JID", submit("accountjid", "@@", "password", "x"), "bad-request"},
		{"no password", submit("accountjid", "b@localhost"), "bad-request"},
		{"full JID", submit("accountjid", "b@localhost/r", "password", "x"), "bad-request"},
	} {
		sid := command(t, cmd(adm, admin+"add-user", "", "", "")).Attr("sessionid")
		if got := testserver.ErrorCondition(cmd(adm, admin+"add-user", "complete", sid, tc.form)); got != tc.cond {
			t.Errorf("%s: %q, want %s", tc.name, got, tc.cond)
		}
	}
	if canLogin(t, ts, "b", "x") {
		t.Error("a refused add-user created b")
	}
}

// TestDeleteUser ends the account's sessions and frees the name.
func TestDeleteUser(t *testing.T) {
	ts := start(t, "admin", "alice", "bob")
	adm := ts.Login(t, "admin", password, "r")
	alice := ts.Online(t, "alice", password, "r")
	last := run(t, adm, "delete-user", submit("accountjids", "alice@localhost", "accountjids", "ghost@localhost"))
	if n := note(last); !strings.Contains(n, "alice@localhost") || !strings.Contains(n, "ghost@localhost") {
		t.Errorf("note %q", n)
	}
	alice.ExpectStreamError("not-authorized")
	if canLogin(t, ts, "alice", password) {
		t.Error("deleted account logs in")
	}
	if !canLogin(t, ts, "bob", password) {
		t.Error("bob was deleted too")
	}
}

// TestDisableReenable: a disabled account is thrown out and cannot log
// in; re-enabled, it can again with the same password.
func TestDisableReenable(t *testing.T) {
	ts := start(t, "admin", "alice")
	adm := ts.Login(t, "admin", password, "r")
	alice := ts.Online(t, "alice", password, "r")
	run(t, adm, "disable-user", submit("accountjids", "alice@localhost"))
	alice.ExpectStreamError("not-authorized")
	if canLogin(t, ts, "alice", password) {
		t.Fatal("disabled account logs in")
	}
	run(t, adm, "reenable-user", submit("accountjids", "alice@localhost"))
	if !canLogin(t, ts, "alice", password) {
		t.Fatal("re-enabled account cannot log in")
	}
}

func TestChangePassword(t *testing.T) {
	ts := start(t, "admin", "alice")
	adm := ts.Login(t, "admin", password, "r")
	run(t, adm, "change-user-password", submit("accountjid", "alice@localhost", "password", "new-pass"))
	if canLogin(t, ts, "alice", password) || !canLogin(t, ts, "alice", "new-pass") {
		t.Error("the password did not change")
	}
	sid := command(t, cmd(adm, admin+"change-user-password", "", "", "")).Attr("sessionid")
	if got := testserver.ErrorCondition(cmd(adm, admin+"change-user-password", "complete", sid, submit("accountjid", "ghost@localhost", "password", "x"))); got != "item-not-found" {
		t.Errorf("unknown account: %q", got)
	}
}

// TestCountsAndList: registered and online users (an account with two
// resources is one user), and the list.
func TestCountsAndList(t *testing.T) {
	ts := start(t, "admin", "alice", "bob", "carol", "boss@other.test")
	adm := ts.Login(t, "admin", password, "r")
	ts.Online(t, "alice", password, "r1")
	ts.Online(t, "alice", password, "r2")
	ts.Login(t, "bob", password, "r")
	ts.Login(t, "boss@other.test", password, "r") // not this host's
	for node, want := range map[string][2]string{
		"get-registered-users-num": {"registeredusersnum", "4"},
		"get-online-users-num":     {"onlineusersnum", "3"},
	} {
		c := command(t, cmd(adm, admin+node, "", "", ""))
		if got := values(c, want[0]); c.Attr("status") != adhoc.StatusCompleted || len(got) != 1 || got[0] != want[1] {
			t.Errorf("%s: %v, want %s: %s", node, got, want[1], c)
		}
	}
	c := run(t, adm, "get-online-users-list", submit())
	if got, want := values(c, "onlineuserjids"), []string{"admin@localhost", "alice@localhost", "bob@localhost"}; !slices.Equal(got, want) {
		t.Errorf("online users %v, want %v", got, want)
	}
	c = run(t, adm, "get-online-users-list", submit("max_items", "2"))
	if got := values(c, "onlineuserjids"); len(got) != 2 {
		t.Errorf("max_items 2: %v", got)
	}
	sid := command(t, cmd(adm, admin+"get-online-users-list", "", "", "")).Attr("sessionid")
	if got := testserver.ErrorCondition(cmd(adm, admin+"get-online-users-list", "complete", sid, submit("max_items", "lots"))); got != "bad-request" {
		t.Errorf("max_items lots: %q", got)
	}
}

func TestEndUserSession(t *testing.T) {
	ts := start(t, "admin", "alice")
	adm := ts.Login(t, "admin", password, "r")
	a1 := ts.Online(t, "alice", password, "r1")
	a2 := ts.Online(t, "alice", password, "r2")
	run(t, adm, "end-user-session", submit("accountjids", "alice@localhost/r1"))
	a1.ExpectStreamError("policy-violation")
	if res := a2.IQ("get", domain, "<ping xmlns='urn:xmpp:ping'/>"); res.Attr("type") != "result" {
		t.Fatalf("r2 ended with r1: %s", res)
	}
	// The stream error is written before the session leaves the router;
	// wait until it has, or the next count may still include it.
	bare := jid.MustParse("alice@localhost")
	for deadline := time.Now().Add(10 * time.Second); len(ts.Router().Sessions(bare)) != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("alice has %d sessions after r1 ended", len(ts.Router().Sessions(bare)))
		}
	}
	last := run(t, adm, "end-user-session", submit("accountjids", "alice@localhost"))
	a2.ExpectStreamError("policy-violation")
	if !strings.Contains(note(last), "1 session") {
		t.Errorf("note %q", note(last))
	}
}

func TestAnnounce(t *testing.T) {
	ts := start(t, "admin", "alice", "bob")
	adm := ts.Login(t, "admin", password, "r")
	alice := ts.Online(t, "alice", password, "r")
	bob := ts.Online(t, "bob", password, "r")
	run(t, adm, "announce", submit("subject", "Maintenance", "announcement", "Down at noon", "announcement", "for an hour"))
	for _, c := range []*testserver.Client{alice, bob} {
		m := c.ExpectStanza("message", "from="+domain)
		if m.ChildText("", "subject") != "Maintenance" || m.ChildText("", "body") != "Down at noon\nfor an hour" {
			t.Errorf("announcement %s", m)
		}
	}
	sid := command(t, cmd(adm, admin+"announce", "", "", "")).Attr("sessionid")
	if got := testserver.ErrorCondition(cmd(adm, admin+"announce", "complete", sid, submit("subject", "empty"))); got != "bad-request" {
		t.Errorf("announcement without text: %q", got)
	}
}

// TestMOTD: set, sent on coming online, edit (the form shows the current
// text), delete (nothing sent any more).
func TestMOTD(t *testing.T) {
	ts := start(t, "admin", "alice")
	adm := ts.Login(t, "admin", password, "r")
	run(t, adm, "set-motd", submit("motd", "Welcome"))
	alice := ts.Login(t, "alice", password, "r")
	alice.Send("<presence/>")
	if m := alice.ExpectStanza("message", "from="+domain); m.ChildText("", "body") != "Welcome" {
		t.Errorf("motd %s", m)
	}
	first := command(t, cmd(adm, admin+"edit-motd", "", "", ""))
	if got := values(first, "motd"); !slices.Equal(got, []string{"Welcome"}) {
		t.Errorf("edit form shows %v", got)
	}
	command(t, cmd(adm, admin+"edit-motd", "complete", first.Attr("sessionid"), submit("motd", "Line 1", "motd", "Line 2")))
	a2 := ts.Login(t, "alice", password, "r2")
	a2.Send("<presence/>")
	if m := a2.ExpectStanza("message", "from="+domain); m.ChildText("", "body") != "Line 1\nLine 2" {
		t.Errorf("edited motd %s", m)
	}
	if c := command(t, cmd(adm, admin+"delete-motd", "", "", "")); c.Attr("status") != adhoc.StatusCompleted {
		t.Fatalf("delete-motd %s", c)
	}
	a3 := ts.Login(t, "alice", password, "r3")
	a3.Send("<presence/>")
	a3.ExpectStanza("presence", "from="+a3.JID)
	res := a3.IQ("get", domain, "<ping xmlns='urn:xmpp:ping'/>")
	if res.Attr("type") != "result" {
		t.Fatalf("ping %s", res)
	}
	if got := values(command(t, cmd(adm, admin+"edit-motd", "", "", "")), "motd"); len(got) != 0 {
		t.Errorf("deleted motd still shown: %v", got)
	}
}

func TestUserRosterAndLastLogin(t *testing.T) {
	ts := start(t, "admin", "alice", "bob", "never")
	ts.GrantSubscription(t, "alice", "bob")
	adm := ts.Login(t, "admin", password, "r")
	before := time.Now().UTC().Add(-time.Second)
	alice := ts.Login(t, "alice", password, "r")
	// The login is recorded when the session is bound, on the session's
	// own goroutine: a round trip on it waits for that.
	alice.IQ("get", domain, "<ping xmlns='urn:xmpp:ping'/>")
	c := run(t, adm, "get-user-roster", submit("accountjid", "alice@localhost"))
	q := c.Child("jabber:x:data", "x").Child("jabber:iq:roster", "query")
	if q == nil || !strings.Contains(q.String(), "bob@localhost") {
		t.Errorf("roster %s", c)
	}
	c = run(t, adm, "get-user-lastlogin", submit("accountjid", "alice@localhost"))
	got := values(c, "lastlogin")
	if len(got) != 1 {
		t.Fatalf("lastlogin %s", c)
	}
	if at, err := time.Parse(time.RFC3339, got[0]); err != nil || at.Before(before.Truncate(time.Second)) {
		t.Errorf("lastlogin %q (%v)", got[0], err)
	}
	c = run(t, adm, "get-user-lastlogin", submit("accountjid", "never@localhost"))
	if v := values(c, "lastlogin"); len(v) != 0 || note(c) == "" {
		t.Errorf("never logged in: %v %q", v, note(c))
	}
	for _, node := range []string{"get-user-roster", "get-user-lastlogin"} {
		sid := command(t, cmd(adm, admin+node, "", "", "")).Attr("sessionid")
		if got := testserver.ErrorCondition(cmd(adm, admin+node, "complete", sid, submit("accountjid", "ghost@localhost"))); got != "item-not-found" {
			t.Errorf("%s of a missing account: %q", node, got)
		}
	}
}

// TestSessions: cancel, stale and foreign session ids, unknown actions,
// malformed forms, expiry and the per-client bound.
func TestSessions(t *testing.T) {
	ts := start(t, "admin", "alice")
	adm := ts.Login(t, "admin", password, "r")
	adm2 := ts.Login(t, "admin", password, "r2")
	a := adhocOf(t, ts)

	first := command(t, cmd(adm, admin+"add-user", "", "", ""))
	sid := first.Attr("sessionid")
	if first.Child(adhoc.NS, "actions") == nil {
		t.Errorf("no <actions/> in %s", first)
	}
	if got := testserver.ErrorCondition(cmd(adm2, admin+"add-user", "complete", sid, submit())); got != "bad-request" {
		t.Errorf("another resource continues the session: %q", got)
	}
	if got := testserver.ErrorCondition(cmd(adm, admin+"delete-user", "complete", sid, submit())); got != "bad-request" {
		t.Errorf("the session continued as another command: %q", got)
	}
	sid = command(t, cmd(adm, admin+"add-user", "", "", "")).Attr("sessionid")
	c := command(t, cmd(adm, admin+"add-user", "cancel", sid, ""))
	if c.Attr("status") != adhoc.StatusCanceled {
		t.Errorf("cancel: %s", c)
	}
	res := cmd(adm, admin+"add-user", "complete", sid, submit("accountjid", "x@localhost", "password", "p"))
	if got := testserver.ErrorCondition(res); got != "bad-request" || !strings.Contains(res.String(), "bad-sessionid") {
		t.Errorf("canceled session reused: %s", res)
	}
	for _, tc := range []struct{ name, action, sid, form, node, cond, app string }{
		{"next without session", "next", "", "", "add-user", "bad-request", "bad-sessionid"},
		{"unknown session", "complete", "nope", "", "add-user", "bad-request", "bad-sessionid"},
		{"prev", "prev", "", "", "add-user", "bad-request", "bad-action"},
		{"bogus action", "dance", "", "", "add-user", "bad-request", "bad-action"},
		{"unknown command", "execute", "", "", "no-such", "item-not-found", ""},
		{"form not submitted", "execute", "", "<x xmlns='jabber:x:data' type='form'/>", "add-user", "bad-request", ""},
		{"wrong FORM_TYPE", "execute", "", "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x>", "add-user", "bad-request", ""},
	} {
		res := cmd(adm, admin+tc.node, tc.action, tc.sid, tc.form)
		if got := testserver.ErrorCondition(res); got != tc.cond || (tc.app != "" && !hasApp(res, tc.app)) {
			t.Errorf("%s: %s, want %s/%s", tc.name, res, tc.cond, tc.app)
		}
	}
	if res := adm.IQ("set", domain, "<nope xmlns='"+adhoc.NS+"'/>"); testserver.ErrorCondition(res) != "bad-request" {
		t.Errorf("not a command: %s", res)
	}

	// Expiry: a session idle beyond its lifetime answers session-expired
	// and is gone.
	// The clock is read by the server's goroutines and moved by the test:
	// the reply over the socket orders the two, but the race detector
	// cannot see that, so the instant is held atomically.
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	adhoc.SetClock(a, func() time.Time { return time.Unix(0, now.Load()) })
	sid = command(t, cmd(adm, admin+"add-user", "", "", "")).Attr("sessionid")
	now.Add(int64(time.Hour))
	res = cmd(adm, admin+"add-user", "complete", sid, submit("accountjid", "late@localhost", "password", "p"))
	if got := testserver.ErrorCondition(res); got != "not-allowed" || !hasApp(res, "session-expired") {
		t.Errorf("expired session: %s", res)
	}
	if canLogin(t, ts, "late", "p") {
		t.Error("an expired session created an account")
	}

	// The bound: one client cannot hold more than its share; expired
	// sessions make room again; a client's sessions go with it.
	for i := 0; ; i++ {
		res := cmd(adm2, admin+"add-user", "", "", "")
		if testserver.ErrorCondition(res) == "resource-constraint" {
			if i == 0 || i > 100 {
				t.Fatalf("bound after %d sessions", i)
			}
			break
		}
		command(t, res)
	}
	if res := cmd(adm, admin+"add-user", "", "", ""); res.Attr("type") != "result" {
		t.Errorf("another client is refused for the first one's sessions: %s", res)
	}
	now.Add(int64(time.Hour))
	if res := cmd(adm2, admin+"add-user", "", "", ""); res.Attr("type") != "result" {
		t.Errorf("expired sessions do not make room: %s", res)
	}
	adm2.Close()
	deadline := time.Now().Add(5 * time.Second)
	for adhoc.Pending(a) > 1 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := adhoc.Pending(a); n > 1 {
		t.Errorf("%d sessions pending after the client left, want 1 (adm's)", n)
	}
}

// hasApp reports whether the error in res carries XEP-0050's condition app.
func hasApp(res *xml.Element, app string) bool {
	e := res.Child("", "error")
	return e != nil && e.Child(adhoc.NS, app) != nil
}
