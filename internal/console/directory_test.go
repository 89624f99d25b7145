package console_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"parley/internal/directory/ldaptest"
	"parley/internal/testserver"
)

// On a directory host the fields the directory owns are locked on both
// pages, a forged change to one is refused, update-mode fields are
// written back, and the account-changing admin actions are refused.
func TestDirectoryHostFields(t *testing.T) {
	if testing.Short() {
		t.Skip("starts slapd")
	}
	srv := ldaptest.Start(t, "")
	const dom = "example.test"
	ts := directoryConsole(t, srv, "")

	bob := newBrowser(t, ts)
	bob.login("account", "bob@"+dom, "bob-pass")
	_, page := bob.get("/account/")
	if !strings.Contains(page, `name="display_name"`) || !strings.Contains(page, "managed by the directory") {
		t.Fatalf("account page on a directory host:\n%s", page)
	}
	if !regexpMatch(`name="display_name" value="[^"]*" readonly`, page) || regexpMatch(`name="mobile" value="[^"]*" readonly`, page) || regexpMatch(`name="nickname" value="[^"]*" readonly`, page) {
		t.Errorf("locks: display_name must be read-only, mobile and nickname editable:\n%s", page)
	}
	if strings.Contains(page, `id="password-form"`) {
		t.Error("a password form on a directory host")
	}
	// A forged change of a locked field.
	bob.post("/account/profile", "display_name", "Mallory")
	if _, page := bob.get("/account/"); !strings.Contains(page, "managed by the directory and cannot be changed") {
		t.Errorf("forged display_name change not refused")
	}
	if out := srv.Search(t, ldaptest.PeopleBase, "(uid=bob)", "displayName"); strings.Contains(out, "Mallory") {
		t.Fatalf("the directory was changed: %s", out)
	}
	// update: written to the directory; local: kept by Parley.
	bob.post("/account/profile", "mobile", "+1 555 0100", "nickname", "Bobby")
	if out := srv.Search(t, ldaptest.PeopleBase, "(uid=bob)", "mobile"); !strings.Contains(out, "+1 555 0100") {
		t.Errorf("mobile not written back: %s", out)
	}
	// The admin: account-changing actions refused, fields locked.
	alice := newBrowser(t, ts)
	alice.login("admin", "alice@"+dom, "alice-pass")
	if _, page := alice.get("/admin/users?host=" + dom); !strings.Contains(page, "bob@"+dom) {
		t.Errorf("directory users not listed:\n%s", page)
	}
	st, page := alice.get("/admin/user?jid=bob@" + dom)
	if st != http.StatusOK || !strings.Contains(page, "🔒") || strings.Contains(page, `action="/admin/user/password"`) {
		t.Errorf("admin user page on a directory host (%d):\n%s", st, page)
	}
	if _, page := alice.get("/admin/groups?host=" + dom); !strings.Contains(page, "🔒 directory") {
		t.Errorf("directory groups not listed as such:\n%s", page)
	}
	alice.post("/admin/user/disable", "jid", "bob@"+dom)
	if _, page := alice.get("/admin/user?jid=bob@" + dom); !strings.Contains(page, "managed by its directory") {
		t.Errorf("disable on a directory host not refused")
	}
	ts.Login(t, "bob@"+dom, "bob-pass", "still-works").Close()
}

// directoryConsole starts a server whose host example.test takes its
// accounts from srv, with both console pages on and alice as admin;
// extra goes into [directory].
func directoryConsole(t *testing.T, srv *ldaptest.Server, extra string) *testserver.TS {
	const dom = "example.test"
	return testserver.Start(t, fmt.Sprintf(`[[host]]
domain = %q
accounts = "directory"
admins = ["alice@example.test"]
%s%s[directory.profile.mobile]
mode = "update"
[directory.profile.nickname]
mode = "local"
[console]
admin = true
account = true
`, dom, srv.DirectoryTOML(), extra))
}

// With [directory] password_write a directory user changes their password
// on the self-service page and an admin resets one on the console: both
// are written to the directory (the new password logs in, the old one
// not); the account-changing actions other than the password stay refused.
func TestDirectoryHostPasswordWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("starts slapd")
	}
	srv := ldaptest.Start(t, "")
	const dom = "example.test"
	ts := directoryConsole(t, srv, "password_write = true\n")

	bob := newBrowser(t, ts)
	bob.login("account", "bob@"+dom, "bob-pass")
	if _, page := bob.get("/account/"); !strings.Contains(page, `id="password-form"`) {
		t.Fatalf("no password form with password_write:\n%s", page)
	}
	if st, _, _ := bob.post("/account/password", "current", "bob-pass", "password", "bob-new-pass", "password2", "bob-new-pass"); st != http.StatusSeeOther {
		t.Fatalf("self-service change: status %d", st)
	}
	if _, page := bob.get("/account/"); !strings.Contains(page, "Your password is changed") {
		t.Errorf("no confirmation of the change:\n%s", page)
	}
	if ts.CanLogin(t, "bob@"+dom, "bob-pass") {
		t.Error("the old password still logs in")
	}
	ts.Login(t, "bob@"+dom, "bob-new-pass", "r1").Close()

	alice := newBrowser(t, ts)
	alice.login("admin", "alice@"+dom, "alice-pass")
	st, page := alice.get("/admin/user?jid=bob@" + dom)
	if st != http.StatusOK || !strings.Contains(page, `action="/admin/user/password"`) || strings.Contains(page, `action="/admin/user/delete"`) {
		t.Fatalf("admin user page with password_write (%d): want the reset form and no delete:\n%s", st, page)
	}
	alice.post("/admin/user/password", "jid", "bob@"+dom, "password", "bob-reset-pass", "password2", "bob-reset-pass")
	ts.Login(t, "bob@"+dom, "bob-reset-pass", "r2").Close()
	alice.post("/admin/user/disable", "jid", "bob@"+dom)
	if _, page := alice.get("/admin/user?jid=bob@" + dom); !strings.Contains(page, "managed by its directory") {
		t.Errorf("disable on a directory host not refused")
	}
}
