package adhoc_test

import (
	"fmt"
	"strings"
	"testing"

	"parley/internal/directory/ldaptest"
	"parley/internal/testserver"
	"parley/internal/xmpp/stanza"
)

// dom is the directory host of these tests.
const dom = "example.test"

// directoryHost starts a server whose host dom keeps its accounts in a
// throwaway slapd (extra goes into its [directory] table) and logs in
// alice, one of the host's admins.
func directoryHost(t *testing.T, extra string) (*testserver.TS, *testserver.Client) {
	srv := ldaptest.Start(t, "")
	ts := testserver.Start(t, fmt.Sprintf(`[[host]]
domain = %q
accounts = "directory"
admins = ["alice@example.test"]
%s%s`, dom, srv.DirectoryTOML(), extra))
	return ts, ts.Login(t, "alice@"+dom, "alice-pass", "r")
}

// execute is a command request for the XEP-0133 command node.
func execute(node, form string) string {
	return fmt.Sprintf("<command xmlns='http://jabber.org/protocol/commands' node='%s' action='execute'>%s</command>", admin+node, form)
}

// On a host whose accounts a directory owns, the account-changing
// commands are refused with a text naming the directory (as in-band
// registration is), and the read-only ones still work.
func TestDirectoryHostRefuses(t *testing.T) {
	ts, alice := directoryHost(t, "")
	for _, tc := range []struct{ node, form string }{
		{"add-user", submit("accountjid", "mallory@"+dom, "password", "p")},
		{"delete-user", submit("accountjids", "bob@"+dom)},
		{"disable-user", submit("accountjids", "bob@"+dom)},
		{"reenable-user", submit("accountjids", "bob@"+dom)},
		{"change-user-password", submit("accountjid", "bob@"+dom, "password", "p")},
		{"add-user", ""},
	} {
		res := alice.IQ("set", dom, execute(tc.node, tc.form))
		c, _, text, _ := stanza.ParseError(res)
		if c != stanza.NotAllowed || !strings.Contains(text, "directory") {
			t.Errorf("%s: %s, want not-allowed naming the directory", tc.node, res)
		}
	}
	res := alice.IQ("set", dom, execute("get-online-users-num", ""))
	if res.Attr("type") != "result" {
		t.Errorf("get-online-users-num on a directory host: %s", res)
	}
	bob := ts.Login(t, "bob@"+dom, "bob-pass", "r")
	if res := bob.IQ("get", dom, "<ping xmlns='urn:xmpp:ping'/>"); res.Attr("type") != "result" {
		t.Errorf("bob after the refusals: %s", res)
	}
}

// With [directory] password_write, change-user-password is the one
// account-changing command a directory host runs: the password is set in
// the directory; the others stay refused.
func TestDirectoryHostPasswordWrite(t *testing.T) {
	ts, alice := directoryHost(t, "password_write = true\n")
	if res := alice.IQ("set", dom, execute("change-user-password", submit("accountjid", "bob@"+dom, "password", "bob-reset-pass"))); res.Attr("type") != "result" {
		t.Fatalf("change-user-password with password_write: %s", res)
	}
	if !ts.CanLogin(t, "bob@"+dom, "bob-reset-pass") || ts.CanLogin(t, "bob@"+dom, "bob-pass") {
		t.Error("the reset password does not log in, or the old one still does")
	}
	if c, _, _, _ := stanza.ParseError(alice.IQ("set", dom, execute("disable-user", submit("accountjids", "bob@"+dom)))); c != stanza.NotAllowed {
		t.Errorf("disable-user with password_write: %q, want not-allowed", c)
	}
}
