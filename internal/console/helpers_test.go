package console_test

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"parley/internal/testserver"
)

const (
	pw       = "Password-123"
	base     = "https://localhost"
	consoleC = `
[[host]]
domain = "localhost"
admins = ["admin@localhost"]
[[host]]
domain = "other.test"
admins = ["admin@localhost", "boss@other.test"]
[console]
admin = true
account = true
[auth.password]
require_classes = 3
history = 2
[s2s]
dialback_secret = "very-secret-dialback-key"
`
)

func start(t *testing.T, extra string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, consoleC+extra)
	ts.AddUsers(t, pw, "admin", "alice", "bob")
	ts.AddUser(t, "boss@other.test", pw)
	ts.AddUser(t, "carol@other.test", pw)
	return ts
}

// browser is a cookie-keeping client that does not follow redirects, so
// tests see every 303.
type browser struct {
	t    *testing.T
	c    *http.Client
	csrf string
}

func newBrowser(t *testing.T, ts *testserver.TS) *browser {
	t.Helper()
	c := ts.HTTPSClient(t)
	jar, _ := cookiejar.New(nil)
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{t: t, c: c}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// do sends a request and returns the status, the body and the response.
func (b *browser) do(method, path string, form url.Values, hdr map[string]string) (int, string, *http.Response) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	bb, _ := io.ReadAll(res.Body)
	if m := csrfRE.FindStringSubmatch(string(bb)); m != nil {
		b.csrf = m[1]
	}
	return res.StatusCode, string(bb), res
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	st, body, _ := b.do("GET", path, nil, nil)
	return st, body
}

// post submits a form with the last CSRF token seen.
func (b *browser) post(path string, kv ...string) (int, string, *http.Response) {
	b.t.Helper()
	f := url.Values{"csrf": {b.csrf}}
	for i := 0; i+1 < len(kv); i += 2 {
		f.Set(kv[i], kv[i+1])
	}
	return b.do("POST", path, f, nil)
}

// login logs in through area's login page and fails the test otherwise.
func (b *browser) login(area, user, password string) {
	b.t.Helper()
	if st, _ := b.get("/" + area + "/login"); st != 200 {
		b.t.Fatalf("GET login page: %d", st)
	}
	st, body, res := b.post("/"+area+"/login", "jid", user, "password", password)
	if st != http.StatusSeeOther || res.Header.Get("Location") != "/"+area+"/" {
		b.t.Fatalf("login %s: %d %s\n%s", user, st, res.Header.Get("Location"), body)
	}
	// A page, for its CSRF token.
	b.get("/" + area + "/")
}

func loggedIn(t *testing.T, ts *testserver.TS, area, user string) *browser {
	t.Helper()
	b := newBrowser(t, ts)
	b.login(area, user, pw)
	return b
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }
