package register_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"parley/internal/directory/ldaptest"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// directoryHost is a host whose accounts live in srv's fixture, with
// alice and bob in one roster group; extra goes into [directory].
func directoryHost(srv *ldaptest.Server, extra string) string {
	return `[[host]]
domain = "example.test"
accounts = "directory"
` + srv.DirectoryTOML() + extra + `[[directory.roster_group]]
group = "engineering"
name = "Engineering"
`
}

// refusal checks that res is an error with condition cond whose text says
// that the directory owns the accounts.
func refusal(t *testing.T, what string, res *xml.Element, cond string) {
	t.Helper()
	c, _, text, _ := stanza.ParseError(res)
	if string(c) != cond || !strings.Contains(text, "directory") {
		t.Errorf("%s: got %q (%q), want %s saying the directory owns the accounts: %s", what, c, text, cond, res)
	}
}

// On a host whose accounts a directory owns, Parley can create, change
// and delete none of them: in-band registration is refused before and
// after authentication with an explanation, changes nothing, and is not
// announced (neither in disco#info nor as a stream feature).
func TestDirectoryHostRefuses(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, directoryHost(srv, ""))
	ctx := context.Background()
	const dom = "example.test"

	// Before authentication: XEP-0077 §3.1's answer for a host without
	// in-band registration, and no <register/> feature.
	pre := testserver.Dial(t, ts.StartTLSAddr())
	pre.Open(dom)
	pre.StartTLS(dom)
	if hasFeature(pre.Features) {
		t.Errorf("registration offered on a directory host: %s", pre.Features)
	}
	refusal(t, "pre-auth inquiry", pre.IQ("get", "", "<query xmlns='jabber:iq:register'/>"), "service-unavailable")
	refusal(t, "pre-auth registration", pre.IQ("set", "", registerQuery("username", "mallory", "password", "mallory-pass")), "service-unavailable")
	if _, err := ts.Store().Accounts().Get(ctx, dom, "mallory"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("pre-auth registration stored an account: %v", err)
	}

	alice := ts.Online(t, "alice", "alice-pass", "r1")
	bob := ts.Online(t, "bob", "bob-pass", "r1")
	// Pre-population runs in the background: wait until alice and bob
	// share presence, so there is roster data that must survive.
	alice.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && strings.HasPrefix(el.Attr("from"), "bob@"+dom+"/")
	})

	res := alice.IQ("get", dom, "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	if strings.Contains(res.String(), "jabber:iq:register") {
		t.Errorf("disco#info announces jabber:iq:register on a directory host: %s", res)
	}
	for _, to := range []string{"", dom} {
		refusal(t, "inquiry to "+to, alice.IQ("get", to, "<query xmlns='jabber:iq:register'/>"), "not-allowed")
		refusal(t, "password change to "+to, alice.IQ("set", to, registerQuery("password", "changed-pass")), "not-allowed")
		refusal(t, "field change to "+to, alice.IQ("set", to, registerQuery("username", "alice", "password", "changed-pass")), "not-allowed")
		refusal(t, "remove to "+to, alice.IQ("set", to, "<query xmlns='jabber:iq:register'><remove/></query>"), "not-allowed")
	}

	// Nothing changed: the session goes on, the directory password still
	// logs in (and the refused one does not), and neither roster lost
	// anything.
	if res := alice.IQ("get", dom, "<ping xmlns='urn:xmpp:ping'/>"); res.Attr("type") != "result" {
		t.Fatalf("alice's session after the refusals: %s", res)
	}
	if !ts.CanLogin(t, "alice@"+dom, "alice-pass") || ts.CanLogin(t, "alice@"+dom, "changed-pass") {
		t.Error("the directory password no longer works, or the refused one does")
	}
	for _, c := range []struct{ owner, contact string }{{"alice", "bob"}, {"bob", "alice"}} {
		it, err := ts.Store().Roster().Get(ctx, c.owner+"@"+dom, c.contact+"@"+dom)
		if err != nil || it.Subscription != storage.SubBoth {
			t.Errorf("%s's roster item for %s after the refusals: %+v, %v", c.owner, c.contact, it, err)
		}
	}
	bob.Send("<message to='alice@%s/r1' type='chat' id='m1'><body>still there?</body></message>", dom)
	alice.Expect(func(el *xml.Element) bool { return el.Local == "message" && el.ChildText("", "body") == "still there?" })
}

// With [directory] password_write a user of a directory host changes their
// own password in-band (XEP-0077 §3.3): it is written to the directory
// with fresh SCRAM secrets, under the password policy, and only their
// own; cancelling and field changes stay refused.
func TestDirectoryHostPasswordChange(t *testing.T) {
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, directoryHost(srv, "password_write = true\n"))
	const dom = "example.test"
	alice := ts.Online(t, "alice", "alice-pass", "r1")

	refusal(t, "remove", alice.IQ("set", dom, "<query xmlns='jabber:iq:register'><remove/></query>"), "not-allowed")
	refusal(t, "field change", alice.IQ("set", dom, registerQuery("email", "a@example.org")), "not-allowed")
	refusal(t, "inquiry", alice.IQ("get", dom, "<query xmlns='jabber:iq:register'/>"), "not-allowed")
	if c, _, _, _ := stanza.ParseError(alice.IQ("set", dom, registerQuery("username", "bob", "password", "bob-taken-over"))); c != stanza.Forbidden {
		t.Errorf("changing bob's password: %q, want forbidden", c)
	}
	if c, _, _, _ := stanza.ParseError(alice.IQ("set", dom, registerQuery("password", "x"))); c != stanza.NotAcceptable {
		t.Errorf("a too short password: %q, want not-acceptable", c)
	}
	if res := alice.IQ("set", dom, registerQuery("username", "alice", "password", "alice-new-pass")); res.Attr("type") != "result" {
		t.Fatalf("password change: %s", res)
	}
	if !ts.CanLogin(t, "alice@"+dom, "alice-new-pass") || ts.CanLogin(t, "alice@"+dom, "alice-pass") {
		t.Error("after the change the new password does not log in, or the old one still does")
	}
	if !ts.CanLogin(t, "bob@"+dom, "bob-pass") {
		t.Error("bob's password changed")
	}
	if out := srv.Search(t, ldaptest.PeopleBase, "(uid=alice)", "authPassword"); strings.Count(out, "authPassword:") != 2 {
		t.Errorf("alice's entry holds %d SCRAM secrets, want 2:\n%s", strings.Count(out, "authPassword:"), out)
	}
}
