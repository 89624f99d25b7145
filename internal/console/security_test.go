package console_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"parley/internal/sasl"
	"parley/internal/testserver"
)

// rawGET sends a request line exactly as written (no client-side
// cleaning or escaping) over TLS, with the browser's cookies, and returns
// the status.
func rawGET(t *testing.T, ts *testserver.TS, b *browser, target string) (int, string) {
	t.Helper()
	c, err := tls.Dial("tcp", ts.HTTPSAddr().String(), &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var cookies []string
	if b != nil {
		u, _ := url.Parse(base + "/")
		for _, ck := range b.c.Jar.Cookies(u) {
			cookies = append(cookies, ck.Name+"="+ck.Value)
		}
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n", target)
	if len(cookies) > 0 {
		fmt.Fprintf(c, "Cookie: %s\r\n", strings.Join(cookies, "; "))
	}
	fmt.Fprint(c, "\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(body)
}

// TestPathTraversalNeverReachesAdminPages sends the encodings that let
// attackers past Openfire's console (CVE-2023-32315) and their relatives,
// as anonymous and as a logged-in user: none may show an admin page, and
// the requests are answered before any handler runs.
func TestPathTraversalNeverReachesAdminPages(t *testing.T) {
	ts := start(t, "")
	user := loggedIn(t, ts, "account", "alice@localhost")
	admin := loggedIn(t, ts, "admin", "admin@localhost")
	_, page := admin.get("/admin/users?host=localhost")
	if !strings.Contains(page, "bob@localhost") {
		t.Fatal("the admin's users page does not list bob; the marker below would prove nothing")
	}
	paths := []string{
		"/account/%2e%2e/admin/users",
		"/account/%2E%2E/admin/users",
		"/account/.%2e/admin/users",
		"/account/%252e%252e/admin/users",
		"/account/%25252e%25252e/admin/users",
		"/account/%u002e%u002e/admin/users",
		"/account/..;/admin/users",
		"/account/login/..;/../admin/users",
		"/account/;/../admin/users",
		"/admin/assets/..;/users",
		"/admin/assets/%2e%2e/users",
		"/admin/assets/..%2fusers",
		"/admin/assets/%2e%2e%2fusers",
		"/admin/login/../users",
		"/admin/login/%2e%2e/users",
		"//admin/users",
		"/admin//users",
		"/admin/users/",
		"/admin/users.",
		"/admin./users",
		"/admin/users%2e",
		"/admin/users;jsessionid=x",
		"/admin/users%3b",
		"/admin/users%00",
		"/admin/users%2500",
		"/ADMIN/users",
		"/Admin/users",
		"/admin/Users",
		"/admin/USERS",
		"/admin/%55sers",
		"/admin/users\\",
		"/admin\\users",
		"/account/%5c..%5cadmin/users",
		"/admin/./users",
		"/admin/assets/../users",
		"/x/../admin/users",
	}
	for _, who := range []struct {
		name string
		b    *browser
	}{{"anonymous", nil}, {"user", user}} {
		for _, p := range paths {
			st, body := rawGET(t, ts, who.b, p)
			if st == http.StatusOK || strings.Contains(body, "bob@localhost") {
				t.Errorf("%s GET %s: %d, shows an admin page", who.name, p, st)
			}
			if st == http.StatusMovedPermanently || st == http.StatusSeeOther || st == http.StatusTemporaryRedirect || st == http.StatusPermanentRedirect {
				// A redirect (ServeMux cleaning a path, or anonymous to
				// login) is harmless only if it leads to a canonical path
				// whose own check still applies; nothing else may answer.
				continue
			}
			if st != http.StatusBadRequest && st != http.StatusNotFound && st != http.StatusForbidden && st != http.StatusMovedPermanently {
				t.Errorf("%s GET %s: %d", who.name, p, st)
			}
		}
	}
	// The admin gets nothing either through odd forms: only the canonical
	// path serves.
	for _, p := range []string{"/admin/Users", "/admin/users.", "/admin//users", "/admin/%75sers"} {
		if st, _ := rawGET(t, ts, admin, p); st == http.StatusOK {
			t.Errorf("admin GET %s: 200; only canonical paths may serve", p)
		}
	}
}

func TestSecurityHeadersAndCookies(t *testing.T) {
	ts := start(t, "")
	b := newBrowser(t, ts)
	_, _, res := b.do("GET", "/admin/login", nil, nil)
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP = %q", csp)
	}
	if res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("X-Frame-Options = %q", res.Header.Get("X-Frame-Options"))
	}
	if res.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q", res.Header.Get("Cache-Control"))
	}
	// Every page: no inline script and no inline style or handler.
	adm := loggedIn(t, ts, "admin", "admin@localhost")
	for _, p := range []string{"/admin/", "/admin/users", "/admin/user?jid=alice@localhost", "/admin/groups", "/admin/rooms",
		"/admin/announce", "/admin/federation", "/admin/log", "/admin/config", "/account/"} {
		st, body := adm.get(p)
		if st != 200 {
			t.Errorf("GET %s: %d", p, st)
		}
		for _, bad := range []string{"<script>", "<script >", " onclick=", " onload=", " onsubmit=", "style=", "<style", "javascript:"} {
			if strings.Contains(strings.ToLower(body), bad) {
				t.Errorf("%s contains %q", p, bad)
			}
		}
	}
	// The session cookie.
	b2 := newBrowser(t, ts)
	b2.get("/account/login")
	_, _, res = b2.post("/account/login", "jid", "alice@localhost", "password", pw)
	var set string
	for _, c := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "__Host-parley-console=") {
			set = c
		}
	}
	for _, want := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(set, want) {
			t.Errorf("session cookie %q lacks %s", set, want)
		}
	}
	if strings.Contains(set, "Domain=") || strings.Contains(set, "Max-Age") || strings.Contains(set, "Expires") {
		t.Errorf("session cookie %q should be host-only and end with the browser session", set)
	}
}

// TestSessionRotationAndLogout: a token planted before login is not the
// one after it, and a logged-out token is dead on the server.
func TestSessionRotationAndLogout(t *testing.T) {
	ts := start(t, "")
	b := newBrowser(t, ts)
	u, _ := url.Parse(base + "/")
	b.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-parley-console", Value: "planted-by-an-attacker"}})
	b.login("account", "alice@localhost", pw)
	if cookie(b, u) == "planted-by-an-attacker" {
		t.Fatal("a planted token survived the login")
	}
	first := cookie(b, u)
	b.login("account", "alice@localhost", pw)
	second := cookie(b, u)
	if first == "" || first == second {
		t.Fatalf("the session token did not change at login: %q %q", first, second)
	}
	// The first token is dead.
	old := newBrowser(t, ts)
	old.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-parley-console", Value: first}})
	if st, _ := old.get("/account/"); st != http.StatusSeeOther {
		t.Errorf("the pre-login token still works: %d", st)
	}
	// Logout ends the session on the server: the cookie value replayed
	// afterwards is refused.
	if st, _, _ := b.post("/account/logout"); st != http.StatusSeeOther {
		t.Fatalf("logout: %d", st)
	}
	replay := newBrowser(t, ts)
	replay.c.Jar.SetCookies(u, []*http.Cookie{{Name: "__Host-parley-console", Value: second}})
	if st, _ := replay.get("/account/"); st != http.StatusSeeOther {
		t.Errorf("a logged-out token still works: %d", st)
	}
}

func cookie(b *browser, u *url.URL) string {
	for _, c := range b.c.Jar.Cookies(u) {
		if c.Name == "__Host-parley-console" {
			return c.Value
		}
	}
	return ""
}

// TestCSRF: every state change needs the session's token, and a request
// from another origin is refused even with it.
func TestCSRF(t *testing.T) {
	ts := start(t, "")
	adm := loggedIn(t, ts, "admin", "admin@localhost")
	form := url.Values{"jid": {"bob@localhost"}}
	if st, _, _ := adm.do("POST", "/admin/user/disable", form, nil); st != http.StatusForbidden {
		t.Errorf("no token: %d", st)
	}
	form.Set("csrf", "forged")
	if st, _, _ := adm.do("POST", "/admin/user/disable", form, nil); st != http.StatusForbidden {
		t.Errorf("wrong token: %d", st)
	}
	form.Set("csrf", adm.csrf)
	if st, _, _ := adm.do("POST", "/admin/user/disable", form, map[string]string{"Origin": "https://evil.example"}); st != http.StatusForbidden {
		t.Errorf("foreign origin: %d", st)
	}
	if st, _, _ := adm.do("POST", "/admin/user/disable", form, map[string]string{"Sec-Fetch-Site": "cross-site"}); st != http.StatusForbidden {
		t.Errorf("cross-site fetch: %d", st)
	}
	if acct, _ := ts.Store().Accounts().Get(t.Context(), "localhost", "bob"); acct.Disabled {
		t.Fatal("bob was disabled by a refused request")
	}
	if st, _, _ := adm.do("POST", "/admin/user/disable", form, map[string]string{"Origin": "https://localhost"}); st != http.StatusSeeOther {
		t.Errorf("same origin with the token: %d", st)
	}
	if acct, _ := ts.Store().Accounts().Get(t.Context(), "localhost", "bob"); !acct.Disabled {
		t.Fatal("bob was not disabled")
	}
	// Login CSRF: a login form without the login cookie's token fails.
	b := newBrowser(t, ts)
	if st, _, _ := b.do("POST", "/account/login", url.Values{"jid": {"alice@localhost"}, "password": {pw}, "csrf": {"x"}}, nil); st != http.StatusForbidden {
		t.Errorf("login without the login token: %d", st)
	}
}

// TestLoginsShareTheXMPPLimiter: failed console logins pause the address
// for XMPP, and failed XMPP logins pause it for the console.
func TestLoginsShareTheXMPPLimiter(t *testing.T) {
	ts := start(t, "[auth.brute_force]\ndelay_after = 1\ndelay = \"1ms\"\npause_after = 3\npause = \"1h\"\n")
	b := newBrowser(t, ts)
	for i := 0; i < 3; i++ {
		b.get("/account/login")
		if st, _, _ := b.post("/account/login", "jid", "alice@localhost", "password", "wrong"); st != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i, st)
		}
	}
	b.get("/account/login")
	if st, body, _ := b.post("/account/login", "jid", "alice@localhost", "password", pw); st != http.StatusTooManyRequests {
		t.Fatalf("right password from a paused address: %d\n%s", st, body)
	}
	// XMPP from the same address (127.0.0.1) is paused too.
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	c.StartTLS("localhost")
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", plain("alice", pw))
	if f := c.ExpectStanza("failure"); f.Child("", "temporary-auth-failure") == nil {
		t.Fatalf("XMPP login from the paused address: %s", f)
	}
}

func TestXMPPFailuresPauseConsoleLogins(t *testing.T) {
	ts := start(t, "[auth.brute_force]\ndelay_after = 1\ndelay = \"1ms\"\npause_after = 2\npause = \"1h\"\n")
	for i := 0; i < 2; i++ {
		c := testserver.Dial(t, ts.StartTLSAddr())
		c.Open("localhost")
		c.StartTLS("localhost")
		c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", plain("alice", "wrong"))
		c.ExpectStanza("failure")
		c.Close()
	}
	b := newBrowser(t, ts)
	b.get("/admin/login")
	if st, _, _ := b.post("/admin/login", "jid", "admin@localhost", "password", pw); st != http.StatusTooManyRequests {
		t.Fatalf("console login after XMPP failures: %d", st)
	}
}

func plain(user, password string) string {
	return b64("\x00" + user + "\x00" + password)
}

var _ = net.IPv4len

// TestSessionsFollowTheAccount: a console session ends when its account is
// deleted, disabled or given a new password by any path, not only the
// console's own pages (here: straight in storage, as `parley user` does
// without the admin socket), and never carries over to a new account
// created under the same name.
func TestSessionsFollowTheAccount(t *testing.T) {
	ts := start(t, "")
	ctx := t.Context()
	accts := ts.Store().Accounts()
	stillIn := func(b *browser) bool {
		st, _ := b.get("/account/")
		return st == http.StatusOK
	}

	alice := loggedIn(t, ts, "account", "alice@localhost")
	creds, _ := sasl.DeriveCredentials("Another-pass-456", 4096)
	if err := accts.SetCredentials(ctx, "localhost", "alice", creds); err != nil {
		t.Fatal(err)
	}
	if stillIn(alice) {
		t.Error("the session outlived a password change made elsewhere")
	}

	bob := loggedIn(t, ts, "account", "bob@localhost")
	if err := accts.SetDisabled(ctx, "localhost", "bob", true); err != nil {
		t.Fatal(err)
	}
	if stillIn(bob) {
		t.Error("the session outlived disabling the account")
	}
	if err := accts.SetDisabled(ctx, "localhost", "bob", false); err != nil {
		t.Fatal(err)
	}
	if stillIn(bob) {
		t.Error("re-enabling the account brought the old session back")
	}

	carol := loggedIn(t, ts, "account", "carol@other.test")
	if err := accts.Delete(ctx, "other.test", "carol"); err != nil {
		t.Fatal(err)
	}
	ts.AddUser(t, "carol@other.test", pw)
	if stillIn(carol) {
		t.Error("the session of a deleted account works for the new account of that name")
	}

	// An untouched account's session goes on, and so does the one that
	// changed its own password (its other sessions end).
	admin := loggedIn(t, ts, "account", "admin@localhost")
	other := loggedIn(t, ts, "account", "admin@localhost")
	if !stillIn(admin) {
		t.Fatal("an untouched session ended")
	}
	st, body, _ := admin.post("/account/password", "current", pw, "password", "Brand-New-pass-789", "password2", "Brand-New-pass-789")
	if st != http.StatusSeeOther {
		t.Fatalf("own password change: %d %s", st, body)
	}
	if !stillIn(admin) {
		t.Error("the session that changed its own password ended")
	}
	if stillIn(other) {
		t.Error("another session of the account survived its password change")
	}
}
