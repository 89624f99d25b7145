package console_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"parley/internal/console"
)

// routeArgs are the parameters of every login-protected route, for a
// request about host (an account user on it, a room on its service).
// The matrix test fails when a route has no entry, so a new route cannot
// go untested.
func routeArgs(host, user, room string) map[string]url.Values {
	return map[string]url.Values{
		"GET /admin/":                  {},
		"GET /admin/stats":             {},
		"GET /admin/users":             {"host": {host}},
		"POST /admin/users/create":     {"host": {host}, "username": {"matrix"}, "password": {"short"}, "password2": {"short"}},
		"GET /admin/user":              {"jid": {user}},
		"POST /admin/user/password":    {"jid": {user}, "password": {"x"}, "password2": {"y"}},
		"POST /admin/user/disable":     {"jid": {user}},
		"POST /admin/user/enable":      {"jid": {user}},
		"POST /admin/user/delete":      {"jid": {user}, "confirm": {"no"}},
		"POST /admin/user/end-session": {"jid": {user + "/nothing"}},
		"GET /admin/groups":            {"host": {host}},
		"POST /admin/groups/add":       {"host": {host}, "group": {"g"}, "user": {user}},
		"POST /admin/groups/remove":    {"host": {host}, "group": {"g"}, "user": {user}},
		"GET /admin/rooms":             {"host": {host}},
		"GET /admin/room":              {"room": {room}},
		"POST /admin/rooms/create":     {"host": {host}, "name": {"matrixroom"}},
		"POST /admin/room/configure":   {"room": {room}, "title": {"t"}},
		"POST /admin/room/destroy":     {"room": {"nosuchroom@conference." + host}},
		"GET /admin/announce":          {"host": {host}},
		"POST /admin/announce":         {"host": {host}, "body": {"hello"}},
		"POST /admin/motd":             {"host": {host}, "motd": {"motd"}},
		"POST /admin/motd/delete":      {"host": {host}},
		"GET /admin/federation":        {},
		"GET /admin/log":               {},
		"GET /admin/config":            {},
		"POST /admin/logout":           nil, // tested separately: it ends the session
		"GET /account/":                {},
		"POST /account/password":       {"current": {"wrong"}, "password": {"x"}, "password2": {"x"}},
		"POST /account/profile":        {"nickname": {"n"}},
		"POST /account/end-session":    {"session": {"alice@localhost/none"}},
		"POST /account/revoke-token":   {"id": {"none"}},
		"GET /account/archive":         {},
		"POST /account/logout":         nil,
	}
}

func request(b *browser, r console.Route, args url.Values) (int, string, *http.Response) {
	b.t.Helper()
	if r.Method == "GET" {
		p := r.Path
		if len(args) > 0 {
			p += "?" + args.Encode()
		}
		return b.do("GET", p, nil, nil)
	}
	f := url.Values{"csrf": {b.csrf}}
	for k, v := range args {
		f[k] = v
	}
	return b.do("POST", r.Path, f, nil)
}

// TestAuthorizationMatrix walks every protected route as anonymous, a
// user, a delegated admin (of other.test only) and an admin of every host.
func TestAuthorizationMatrix(t *testing.T) {
	ts := start(t, "")
	adm := loggedIn(t, ts, "admin", "admin@localhost")
	for _, h := range []string{"localhost", "other.test"} {
		if st, body, _ := adm.post("/admin/rooms/create", "host", h, "name", "lobby", "title", "Lobby"); st != http.StatusSeeOther {
			t.Fatalf("create room on %s: %d %s", h, st, body)
		}
	}
	anon := newBrowser(t, ts)
	user := loggedIn(t, ts, "account", "alice@localhost")
	boss := loggedIn(t, ts, "admin", "boss@other.test")
	routes := ts.Console().Routes()
	if len(routes) < 25 {
		t.Fatalf("only %d routes", len(routes))
	}
	own := routeArgs("other.test", "carol@other.test", "lobby@conference.other.test")
	foreign := routeArgs("localhost", "bob@localhost", "lobby@conference.localhost")
	for _, r := range routes {
		key := r.Method + " " + r.Path
		args, ok := own[key]
		if !ok {
			t.Errorf("route %s has no entry in routeArgs", key)
			continue
		}
		if args == nil {
			continue
		}
		t.Run(strings.ReplaceAll(key, "/", "_"), func(t *testing.T) {
			// Anonymous: a GET goes to the login page, anything else 401;
			// never the page.
			st, _, res := request(anon, r, args)
			switch {
			case r.Method == "GET" && (st != http.StatusSeeOther || !strings.HasSuffix(res.Header.Get("Location"), "/login")):
				t.Errorf("anonymous GET: %d %s", st, res.Header.Get("Location"))
			case r.Method == "POST" && st != http.StatusUnauthorized:
				t.Errorf("anonymous POST: %d", st)
			}
			if r.Role == "user" {
				if st, body, _ := request(user, r, args); st >= 400 && st != http.StatusNotFound {
					t.Errorf("user on own account route: %d %s", st, body)
				}
				return
			}
			// A user: 403 on every admin URL, with a valid CSRF token.
			if st, _, _ := request(user, r, foreign[key]); st != http.StatusForbidden {
				t.Errorf("user: %d, want 403", st)
			}
			if st, _, _ := request(user, r, args); st != http.StatusForbidden {
				t.Errorf("user (other host's args): %d, want 403", st)
			}
			// The delegated admin of other.test.
			st, body, _ := request(boss, r, args)
			if r.Role == "server" {
				if st != http.StatusForbidden {
					t.Errorf("delegated admin on a server-wide page: %d, want 403", st)
				}
			} else if st != http.StatusOK && st != http.StatusSeeOther {
				t.Errorf("delegated admin on own host: %d %s", st, body)
			}
			if len(foreign[key]) > 0 {
				if st, _, _ := request(boss, r, foreign[key]); st != http.StatusForbidden {
					t.Errorf("delegated admin on localhost: %d, want 403", st)
				}
			}
			// The admin of every host.
			if st, body, _ := request(adm, r, foreign[key]); st != http.StatusOK && st != http.StatusSeeOther {
				t.Errorf("admin: %d %s", st, body)
			}
		})
	}
}

// TestDelegatedAdminSeesOnlyOwnHosts: the dashboard data and the host
// picker of a delegated admin hold nothing of other hosts.
func TestDelegatedAdminSeesOnlyOwnHosts(t *testing.T) {
	ts := start(t, "")
	boss := loggedIn(t, ts, "admin", "boss@other.test")
	_, body := boss.get("/admin/")
	if strings.Contains(body, "localhost") {
		t.Errorf("dashboard of the other.test admin mentions localhost")
	}
	_, stats := boss.get("/admin/stats")
	if strings.Contains(stats, "logins") || strings.Contains(stats, "stanzas") {
		t.Errorf("delegated admin gets server-wide series: %s", stats)
	}
	_, body = boss.get("/admin/users?host=other.test")
	if strings.Contains(body, "alice") || !strings.Contains(body, "carol@other.test") {
		t.Errorf("users page of other.test:\n%s", body)
	}
}
