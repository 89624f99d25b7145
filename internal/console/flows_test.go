package console_test

import (
	"net/http"
	"parley/internal/storage"
	"strings"
	"testing"
	"time"

	"parley/internal/access"
	"parley/internal/testserver"
)

// TestCreateUserChangePasswordLogInOverXMPP is the issue's flow without a
// browser: an admin creates a user, the user changes the password under
// the policy on /account/, and logs in over XMPP with the new one.
func TestCreateUserChangePasswordLogInOverXMPP(t *testing.T) {
	ts := start(t, "")
	adm := loggedIn(t, ts, "admin", "admin@localhost")
	// The policy applies to what admins set too.
	adm.get("/admin/users?host=localhost")
	adm.post("/admin/users/create", "host", "localhost", "username", "dave", "password", "alllowercase", "password2", "alllowercase")
	if _, body := adm.get("/admin/users?host=localhost"); !strings.Contains(body, "does not meet the policy") {
		t.Errorf("a password without three character classes was not refused:\n%s", body)
	}
	st, _, res := adm.post("/admin/users/create", "host", "localhost", "username", "dave", "password", "First-pass1", "password2", "First-pass1", "email", "dave@example.org")
	if st != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "dave") {
		t.Fatalf("create: %d %s", st, res.Header.Get("Location"))
	}
	if _, body := adm.get(res.Header.Get("Location")); !strings.Contains(body, "Created dave@localhost") || !strings.Contains(body, "dave@example.org") {
		t.Fatalf("user page after create:\n%s", body)
	}

	dave := newBrowser(t, ts)
	dave.login("account", "dave@localhost", "First-pass1")
	change := func(cur, next string) string {
		t.Helper()
		if st, _, _ := dave.post("/account/password", "current", cur, "password", next, "password2", next); st != http.StatusSeeOther {
			t.Fatalf("password change: %d", st)
		}
		_, body := dave.get("/account/")
		return body
	}
	for _, tc := range []struct{ cur, next, want string }{
		{"wrong-Pass1", "Second-pass2", "current password is not right"},
		{"First-pass1", "Sh0rt!", "at least 8 characters"},
		{"First-pass1", "onlylowercase", "at least 3 of these kinds"},
		{"First-pass1", "First-pass1", "used before"}, // the current one
	} {
		if body := change(tc.cur, tc.next); !strings.Contains(body, tc.want) {
			t.Errorf("change %q→%q: page lacks %q", tc.cur, tc.next, tc.want)
		}
	}
	if body := change("First-pass1", "Second-pass2"); !strings.Contains(body, "Your password is changed") {
		t.Fatalf("change refused:\n%s", body)
	}
	if body := change("Second-pass2", "First-pass1"); !strings.Contains(body, "used before") {
		t.Errorf("a password from the history was accepted")
	}
	if body := change("Second-pass2", "Third-pass3"); !strings.Contains(body, "Your password is changed") {
		t.Fatalf("third change refused")
	}
	// XMPP: the new password works, the old does not.
	c := ts.Login(t, "dave", "Third-pass3", "phone")
	c.Close()
	bad := testserver.Dial(t, ts.StartTLSAddr())
	bad.Open("localhost")
	bad.StartTLS("localhost")
	bad.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", plain("dave", "Second-pass2"))
	if f := bad.ExpectStanza("failure"); f.Child("", "not-authorized") == nil {
		t.Errorf("old password: %s", f)
	}
	// No password ever reaches the log, and every admin action is there.
	_, logPage := adm.get("/admin/log?n=1000")
	for _, secret := range []string{"First-pass1", "Second-pass2", "Third-pass3", "alllowercase"} {
		if strings.Contains(logPage, secret) {
			t.Errorf("the log holds the password %q", secret)
		}
	}
	if !strings.Contains(logPage, "admin action") || !strings.Contains(logPage, "via=web") || !strings.Contains(logPage, "action=add-user") || !strings.Contains(logPage, "target=dave@localhost") {
		t.Errorf("no audit line for add-user in:\n%s", logPage)
	}
}

func TestAdminUserActions(t *testing.T) {
	ts := start(t, "")
	adm := loggedIn(t, ts, "admin", "admin@localhost")
	bob := ts.Login(t, "bob", pw, "laptop")
	bob.Send("<presence/>")
	adm.get("/admin/user?jid=bob@localhost")
	_, page := adm.get("/admin/user?jid=bob@localhost")
	if !strings.Contains(page, "laptop") {
		t.Fatalf("bob's session is not listed:\n%s", page)
	}
	adm.post("/admin/user/end-session", "jid", "bob@localhost/laptop")
	bob.ExpectStreamError("policy-violation")
	adm.post("/admin/user/disable", "jid", "bob@localhost")
	if a, _ := ts.Store().Accounts().Get(t.Context(), "localhost", "bob"); !a.Disabled {
		t.Fatal("not disabled")
	}
	adm.post("/admin/user/enable", "jid", "bob@localhost")
	adm.post("/admin/user/password", "jid", "bob@localhost", "password", "New-bob-pw1", "password2", "New-bob-pw1")
	ts.Login(t, "bob", "New-bob-pw1", "r").Close()
	adm.get("/admin/user?jid=bob@localhost")
	adm.post("/admin/user/delete", "jid", "bob@localhost", "confirm", "bob@localhost")
	if _, err := ts.Store().Accounts().Get(t.Context(), "localhost", "bob"); err == nil {
		t.Fatal("bob survives deletion")
	}
	// Search and paging.
	for _, u := range []string{"u01", "u02", "u03", "u04", "u05"} {
		ts.AddUser(t, u, pw)
	}
	_, page = adm.get("/admin/users?host=localhost&q=u0")
	if !strings.Contains(page, "5 account(s)") || strings.Contains(page, "alice@localhost") {
		t.Errorf("search u0:\n%s", page)
	}
	// Announcements reach online sessions; the MOTD is stored.
	carol := ts.Login(t, "alice", pw, "desk")
	carol.Send("<presence/>")
	carol.ExpectStanza("presence")
	adm.get("/admin/announce?host=localhost")
	adm.post("/admin/announce", "host", "localhost", "subject", "Maintenance", "body", "Down at noon")
	m := carol.ExpectStanza("message", "type=headline")
	if m.ChildText("", "body") != "Down at noon" {
		t.Errorf("announcement: %s", m)
	}
	adm.post("/admin/motd", "host", "localhost", "motd", "Welcome")
	if _, body := adm.get("/admin/announce?host=localhost"); !strings.Contains(body, "Welcome") {
		t.Error("MOTD not shown")
	}
}

func TestConfigPageMasksSecrets(t *testing.T) {
	ts := start(t, "")
	adm := loggedIn(t, ts, "admin", "admin@localhost")
	st, body := adm.get("/admin/config")
	if st != 200 || !strings.Contains(body, "(redacted)") || strings.Contains(body, "very-secret-dialback-key") {
		t.Fatalf("config page %d:\n%s", st, body)
	}
}

func TestDashboardStats(t *testing.T) {
	ts := start(t, "")
	ts.Login(t, "alice", pw, "r")
	adm := loggedIn(t, ts, "admin", "admin@localhost")
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, body := adm.get("/admin/stats")
		if strings.Contains(body, `"sessions":1`) && strings.Contains(body, `"logins"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sample with alice's session: %s", body)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func TestAccountProfileAndDevices(t *testing.T) {
	ts := start(t, "")
	alice := loggedIn(t, ts, "account", "alice@localhost")
	alice.post("/account/profile", "nickname", "Ally", "email", "alice@example.org")
	_, page := alice.get("/account/")
	if !strings.Contains(page, `value="Ally"`) || !strings.Contains(page, `value="alice@example.org"`) {
		t.Fatalf("profile not saved:\n%s", page)
	}
	// The vCard a contact reads has it.
	c := ts.Login(t, "bob", pw, "r")
	res := c.IQ("get", "alice@localhost", "<vCard xmlns='vcard-temp'/>")
	if !strings.Contains(res.String(), "Ally") {
		t.Errorf("vCard: %s", res)
	}
	phone := ts.Login(t, "alice", pw, "phone")
	_, page = alice.get("/account/")
	if !strings.Contains(page, "phone") {
		t.Fatalf("device not listed")
	}
	// Not someone else's session.
	if st, _, _ := alice.post("/account/end-session", "session", "bob@localhost/r"); st != http.StatusForbidden {
		t.Errorf("ending bob's session: %d", st)
	}
	alice.post("/account/end-session", "session", "alice@localhost/phone")
	phone.ExpectStreamError("conflict")
	// FAST tokens: listed by client, revocable one by one, only her own.
	fast := ts.Store().FAST()
	now := time.Now()
	for _, who := range []string{"alice", "bob"} {
		tok := storage.FASTToken{ID: "tok-" + who, ClientID: "c-" + who, Software: "Pocket Chat", Device: who + "'s phone",
			Mechanism: "HT-SHA-256-NONE", Hash: make([]byte, 32), IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := fast.Issue(t.Context(), "localhost", who, tok, 10); err != nil {
			t.Fatal(err)
		}
	}
	if _, page = alice.get("/account/"); !strings.Contains(page, "alice&#39;s phone") || strings.Contains(page, "tok-bob") {
		t.Fatalf("token list:\n%s", page)
	}
	alice.post("/account/revoke-token", "id", "tok-bob")
	alice.post("/account/revoke-token", "id", "tok-alice")
	if l, _ := fast.List(t.Context(), "localhost", "alice"); len(l) != 0 {
		t.Errorf("alice's token not revoked: %v", l)
	}
	if l, _ := fast.List(t.Context(), "localhost", "bob"); len(l) != 1 {
		t.Errorf("bob's token touched by alice: %v", l)
	}
	// Archive download: one message to alice's archive.
	c.Send("<message to='alice@localhost' type='chat' id='m1'><body>for the archive</body></message>")
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, body, res := alice.do("GET", "/account/archive", nil, nil)
		if st != 200 || !strings.Contains(res.Header.Get("Content-Disposition"), "attachment") {
			t.Fatalf("archive: %d %v", st, res.Header)
		}
		if strings.Contains(body, "for the archive") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("archive lacks the message:\n%s", body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestRoomsAndGroups(t *testing.T) {
	ts := start(t, "")
	adm := loggedIn(t, ts, "admin", "admin@localhost")
	adm.get("/admin/rooms?host=localhost")
	adm.post("/admin/rooms/create", "host", "localhost", "name", "Team", "title", "The team", "members_only", "on")
	_, page := adm.get("/admin/rooms?host=localhost")
	if !strings.Contains(page, "room=team%40conference.localhost") || !strings.Contains(page, "members only") {
		t.Fatalf("rooms page:\n%s", page)
	}
	// The creating admin owns it, so the room admits its occupants once
	// it is open; make it open, then alice joins.
	adm.post("/admin/room/configure", "room", "team@conference.localhost", "title", "Everyone", "public", "on")
	alice := ts.Login(t, "alice", pw, "r")
	alice.Send("<presence to='team@conference.localhost/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	alice.ExpectStanza("presence", "from=team@conference.localhost/alice")
	_, page = adm.get("/admin/room?room=team@conference.localhost")
	if !strings.Contains(page, "Everyone") || !strings.Contains(page, "alice@localhost/r") {
		t.Fatalf("room page:\n%s", page)
	}
	adm.post("/admin/room/destroy", "room", "team@conference.localhost", "reason", "cleanup")
	p := alice.ExpectStanza("presence", "type=unavailable")
	if !strings.Contains(p.String(), "destroy") || !strings.Contains(p.String(), "cleanup") {
		t.Errorf("occupant's presence on destroy: %s", p)
	}
	if _, page = adm.get("/admin/rooms?host=localhost"); strings.Contains(page, "room=team%40conference.localhost") {
		t.Error("destroyed room still listed")
	}
	// Groups: membership changes show, and count for admin_groups-style
	// lookups through the stored groups.
	adm.get("/admin/groups?host=localhost")
	adm.post("/admin/groups/add", "host", "localhost", "group", "staff", "user", "alice")
	adm.post("/admin/groups/add", "host", "localhost", "group", "staff", "user", "bob@localhost")
	_, page = adm.get("/admin/groups?host=localhost")
	if !strings.Contains(page, "alice@localhost, bob@localhost") {
		t.Fatalf("groups page:\n%s", page)
	}
	adm.post("/admin/groups/remove", "host", "localhost", "group", "staff", "user", "alice")
	if _, page = adm.get("/admin/groups?host=localhost"); !strings.Contains(page, "<td>bob@localhost</td>") {
		t.Error("alice still in staff")
	}
	// Not an account of the host named.
	adm.post("/admin/groups/add", "host", "localhost", "group", "staff", "user", "carol@other.test")
	if _, page = adm.get("/admin/groups?host=localhost"); strings.Contains(page, "carol@other.test</td>") || !strings.Contains(page, "Name a group and an account of localhost") {
		t.Errorf("a foreign account was added:\n%s", page)
	}
}

// An administrator by admin_groups (a stored group) gets the console of
// that host, and loses it when removed from the group.
func TestAdminByGroup(t *testing.T) {
	ts := testserver.Start(t, `
[[host]]
domain = "localhost"
admin_groups = ["ops"]
[console]
admin = true
account = true
`)
	ts.AddUsers(t, pw, "olga", "alice")
	if err := (access.KVGroups{Store: ts.Store()}).Add(t.Context(), "localhost", "olga", "ops"); err != nil {
		t.Fatal(err)
	}
	olga := loggedIn(t, ts, "admin", "olga@localhost")
	if st, body := olga.get("/admin/users?host=localhost"); st != http.StatusOK || !strings.Contains(body, "alice@localhost") {
		t.Fatalf("group admin: %d", st)
	}
	if st, _ := olga.get("/admin/config"); st != http.StatusOK {
		t.Errorf("the admin of the only host is a server admin: %d", st)
	}
	alice := loggedIn(t, ts, "account", "alice@localhost")
	if st, _ := alice.get("/admin/users?host=localhost"); st != http.StatusForbidden {
		t.Errorf("alice: %d", st)
	}
}
