package upload_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"parley/internal/mod/upload"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

const baseCfg = `
[[host]]
domain = "localhost"
[host.upload]
enabled = true
max_file_size = 100000
quota_bytes = 300000
quota_files = 5
`

type env struct {
	ts    *testserver.TS
	alice *testserver.Client
	web   *http.Client
}

func setup(t *testing.T, cfg string) *env {
	t.Helper()
	ts := testserver.Start(t, cfg)
	ts.AddUser(t, "alice", "password1")
	return &env{ts: ts, alice: ts.Login(t, "alice", "password1", "r"), web: ts.HTTPSClient(t)}
}

type slotURLs struct {
	put, get, auth string
}

// slot asks alice's service for a slot and fails the test on an error.
func (e *env) slot(t *testing.T, c *testserver.Client, name string, size int, ctype string) slotURLs {
	t.Helper()
	res := e.request(c, "upload.localhost", name, size, ctype)
	if res.Attr("type") != "result" {
		t.Fatalf("slot request: %s", res)
	}
	s := res.Child(upload.NS, "slot")
	put, get := s.Child(upload.NS, "put"), s.Child(upload.NS, "get")
	if put == nil || get == nil || put.Attr("url") == "" || put.Attr("url") != get.Attr("url") {
		t.Fatalf("slot: %s", res)
	}
	h := put.Child(upload.NS, "header")
	if h == nil || h.Attr("name") != "Authorization" || !strings.HasPrefix(h.Text(), "Bearer ") {
		t.Fatalf("put header: %s", res)
	}
	return slotURLs{put: put.Attr("url"), get: get.Attr("url"), auth: h.Text()}
}

func (e *env) request(c *testserver.Client, service, name string, size int, ctype string) *xml.Element {
	ct := ""
	if ctype != "" {
		ct = fmt.Sprintf(" content-type='%s'", ctype)
	}
	return c.IQ("get", service, fmt.Sprintf("<request xmlns='%s' filename='%s' size='%d'%s/>", upload.NS, name, size, ct))
}

// do sends a request; hdr holds name, value pairs.
func (e *env) do(t *testing.T, method, u string, body io.Reader, size int64, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = size
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.web.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func (e *env) put(t *testing.T, s slotURLs, ctype string, data []byte) int {
	t.Helper()
	resp, b := e.do(t, http.MethodPut, s.put, bytes.NewReader(data), int64(len(data)), "Authorization", s.auth, "Content-Type", ctype)
	if resp.StatusCode != http.StatusCreated {
		t.Logf("PUT: %d %s", resp.StatusCode, b)
	}
	return resp.StatusCode
}

func random(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// The host lists the service; the service says what it is and how large a
// file may be (XEP-0363 §3).
func TestDiscovery(t *testing.T) {
	e := setup(t, baseCfg)
	items := e.alice.IQ("get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#items'/>")
	if !strings.Contains(items.String(), "upload.localhost") {
		t.Fatalf("host items: %s", items)
	}
	info := e.alice.IQ("get", "upload.localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	s := info.String()
	for _, want := range []string{
		`category="store"`, `type="file"`, `var="urn:xmpp:http:upload:0"`,
		`<field var="FORM_TYPE" type="hidden"><value>urn:xmpp:http:upload:0</value></field>`,
		`<field var="max-file-size"><value>100000</value></field>`,
	} {
		if !strings.Contains(strings.ReplaceAll(s, "'", `"`), want) {
			t.Errorf("disco#info lacks %s: %s", want, s)
		}
	}
	if e := e.alice.IQ("get", "upload.localhost", "<query xmlns='jabber:iq:version'/>"); testserver.ErrorCondition(e) != "service-unavailable" {
		t.Errorf("unknown IQ: %s", e)
	}
}

// A file goes up with the slot's PUT URL and comes back, byte for byte,
// from its GET URL, over HTTP/2; HEAD and ranges work.
func TestUploadAndDownload(t *testing.T) {
	e := setup(t, baseCfg)
	data := random(54321)
	s := e.slot(t, e.alice, "holiday photo.png", len(data), "image/png")
	if u, _ := url.Parse(s.get); u.Scheme != "https" || !strings.HasPrefix(u.Path, "/upload/localhost/") || !strings.HasSuffix(u.EscapedPath(), "/holiday%20photo.png") {
		t.Fatalf("GET URL %s", s.get)
	}
	if st := e.put(t, s, "image/png", data); st != http.StatusCreated {
		t.Fatalf("PUT: %d", st)
	}
	resp, body := e.do(t, http.MethodGet, s.get, nil, 0)
	if resp.StatusCode != 200 || sha256.Sum256(body) != sha256.Sum256(data) {
		t.Fatalf("GET: %d, %d bytes", resp.StatusCode, len(body))
	}
	if resp.ProtoMajor != 2 {
		t.Errorf("GET over %s, want HTTP/2", resp.Proto)
	}
	h := resp.Header
	for k, want := range map[string]string{
		"Content-Type":                "image/png",
		"Content-Length":              fmt.Sprint(len(data)),
		"X-Content-Type-Options":      "nosniff",
		"Access-Control-Allow-Origin": "*",
		"Content-Disposition":         `inline; filename="holiday photo.png"`,
	} {
		if h.Get(k) != want {
			t.Errorf("%s: %q, want %q", k, h.Get(k), want)
		}
	}
	if !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
		t.Errorf("CSP %q", h.Get("Content-Security-Policy"))
	}
	resp, body = e.do(t, http.MethodHead, s.get, nil, 0)
	if resp.StatusCode != 200 || len(body) != 0 || resp.ContentLength != int64(len(data)) {
		t.Errorf("HEAD: %d %d %d", resp.StatusCode, len(body), resp.ContentLength)
	}
	resp, body = e.do(t, http.MethodGet, s.get, nil, 0, "Range", "bytes=10-19")
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[10:20]) {
		t.Errorf("range: %d %d bytes", resp.StatusCode, len(body))
	}
	// The same slot again: it was used.
	if st := e.put(t, s, "image/png", data); st != http.StatusConflict {
		t.Errorf("second PUT: %d, want 409", st)
	}
	// A browser's preflight for the PUT.
	resp, _ = e.do(t, http.MethodOptions, s.put, nil, 0, "Origin", "https://web.example", "Access-Control-Request-Method", "PUT", "Access-Control-Request-Headers", "authorization,content-type")
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
	}
}

// What an uploader declares as HTML, SVG or script is served as a download
// under a sandbox, never as a page of this origin.
func TestActiveTypesAreDownloads(t *testing.T) {
	e := setup(t, baseCfg)
	for _, ct := range []string{"text/html", "image/svg+xml", "application/javascript", "application/xhtml+xml"} {
		data := []byte("<script>alert(1)</script>")
		s := e.slot(t, e.alice, "x.html", len(data), ct)
		if st := e.put(t, s, ct, data); st != http.StatusCreated {
			t.Fatalf("%s: PUT %d", ct, st)
		}
		resp, _ := e.do(t, http.MethodGet, s.get, nil, 0)
		if d := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(d, "attachment;") {
			t.Errorf("%s: Content-Disposition %q", ct, d)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "sandbox") {
			t.Errorf("%s: CSP %q", ct, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", ct)
		}
	}
}

func TestSlotRequestErrors(t *testing.T) {
	e := setup(t, baseCfg+`
[[host]]
domain = "b.test"
`)
	res := e.request(e.alice, "upload.localhost", "big.bin", 100001, "")
	if testserver.ErrorCondition(res) != "not-acceptable" {
		t.Fatalf("too large: %s", res)
	}
	if ftl := res.Child("", "error").Child(upload.NS, "file-too-large"); ftl == nil || ftl.ChildText(upload.NS, "max-file-size") != "100000" {
		t.Errorf("file-too-large: %s", res)
	}
	if typ := res.Child("", "error").Attr("type"); typ != "modify" {
		t.Errorf("error type %q", typ)
	}
	for name, req := range map[string]string{
		"no filename":  "<request xmlns='urn:xmpp:http:upload:0' size='10'/>",
		"dot dot":      "<request xmlns='urn:xmpp:http:upload:0' filename='..' size='10'/>",
		"only a path":  "<request xmlns='urn:xmpp:http:upload:0' filename='a/' size='10'/>",
		"no size":      "<request xmlns='urn:xmpp:http:upload:0' filename='a.txt'/>",
		"bad size":     "<request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='-5'/>",
		"huge size":    "<request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='99999999999999999999999'/>",
		"bad type":     "<request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='5' content-type='text'/>",
		"missing type": "<request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='5' content-type='text/plain; x'/>",
	} {
		if c := testserver.ErrorCondition(e.alice.IQ("get", "upload.localhost", req)); c != "bad-request" {
			t.Errorf("%s: %q, want bad-request", name, c)
		}
	}
	// Accounts of another host of the same server are not this service's.
	e.ts.AddUser(t, "bob@b.test", "password1")
	bob := e.ts.Login(t, "bob@b.test", "password1", "r")
	if c := testserver.ErrorCondition(e.request(bob, "upload.localhost", "a.txt", 5, "")); c != "not-allowed" {
		t.Errorf("foreign account: %q", c)
	}
	if c := testserver.ErrorCondition(e.request(bob, "upload.b.test", "a.txt", 5, "")); c == "" {
		t.Error("b.test has no upload service, yet a slot came back")
	}
}

func TestPutIsChecked(t *testing.T) {
	e := setup(t, baseCfg+`slot_timeout = "1s"
expire_after = "1h"
[[host]]
domain = "b.test"
[host.upload]
enabled = true
`)
	data := []byte("0123456789")
	s := e.slot(t, e.alice, "a.txt", len(data), "text/plain")
	_, tokB, _ := strings.Cut(s.auth, " ")
	payload, sig, _ := strings.Cut(tokB, ".")
	flipped := []byte(sig)
	if flipped[0] = 'A'; sig[0] == 'A' {
		flipped[0] = 'B'
	}
	other := e.slot(t, e.alice, "other.txt", len(data), "text/plain")

	e.ts.AddUser(t, "bob@b.test", "password1")
	bob := e.ts.Login(t, "bob@b.test", "password1", "r")
	res := e.request(bob, "upload.b.test", "a.txt", len(data), "text/plain")
	bAuth := res.Child(upload.NS, "slot").Child(upload.NS, "put").Child(upload.NS, "header").Text()

	put := func(u, auth, ctype string, body io.Reader, size int64) int {
		hdr := []string{"Content-Type", ctype}
		if auth != "" {
			hdr = append(hdr, "Authorization", auth)
		}
		resp, _ := e.do(t, http.MethodPut, u, body, size, hdr...)
		return resp.StatusCode
	}
	for _, c := range []struct {
		name  string
		url   string
		auth  string
		ctype string
		body  io.Reader
		size  int64
		want  int
	}{
		{"no token", s.put, "", "text/plain", bytes.NewReader(data), 10, 401},
		{"forged MAC", s.put, "Bearer " + payload + "." + string(flipped), "text/plain", bytes.NewReader(data), 10, 403},
		{"token of another slot", s.put, other.auth, "text/plain", bytes.NewReader(data), 10, 403},
		{"token of another service", s.put, bAuth, "text/plain", bytes.NewReader(data), 10, 403},
		{"token on another URL", other.put, s.auth, "text/plain", bytes.NewReader(data), 10, 403},
		{"Content-Length too small", s.put, s.auth, "text/plain", bytes.NewReader(data[:9]), 9, 400},
		{"Content-Length too large", s.put, s.auth, "text/plain", bytes.NewReader(append(data, 'x')), 11, 400},
		{"no Content-Length", s.put, s.auth, "text/plain", io.MultiReader(bytes.NewReader(data)), -1, 411},
		{"other Content-Type", s.put, s.auth, "text/html", bytes.NewReader(data), 10, 400},
		{"no Content-Type", s.put, s.auth, "", bytes.NewReader(data), 10, 400},
	} {
		if got := put(c.url, c.auth, c.ctype, c.body, c.size); got != c.want {
			t.Errorf("%s: %d, want %d", c.name, got, c.want)
		}
	}
	if resp, _ := e.do(t, http.MethodGet, s.get, nil, 0); resp.StatusCode != 404 {
		t.Errorf("after refused PUTs the file exists: %d", resp.StatusCode)
	}
	if got := put(s.put, s.auth, "text/plain", bytes.NewReader(data), 10); got != 201 {
		t.Fatalf("the right PUT: %d", got)
	}
	if got := put(s.put, s.auth, "text/plain", bytes.NewReader(data), 10); got != 409 {
		t.Errorf("reuse: %d", got)
	}
	// A slot lasts slot_timeout rounded up to the whole second: at most
	// 2 s here.
	time.Sleep(2100 * time.Millisecond)
	if got := put(other.put, other.auth, "text/plain", bytes.NewReader(data), 10); got != 403 {
		t.Errorf("expired slot: %d", got)
	}
}

// raw sends request over a fresh TLS connection to the HTTPS listener and
// returns the status code.
func raw(t *testing.T, ts *testserver.TS, request string) int {
	t.Helper()
	c, err := tls.Dial("tcp", ts.HTTPSAddr().String(), &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Hostile paths and unknown files get the right status, and nothing is
// ever written outside the upload directory.
func TestHostilePaths(t *testing.T) {
	e := setup(t, baseCfg)
	data := []byte("secret")
	s := e.slot(t, e.alice, "a.txt", len(data), "text/plain")
	u, _ := url.Parse(s.put)
	id := strings.Split(u.Path, "/")[3]
	if e.put(t, s, "text/plain", data) != 201 {
		t.Fatal("PUT")
	}
	// The slot's token aimed elsewhere, and GETs of what is not there.
	for _, c := range []struct {
		path string
		want int
	}{
		{"/upload/localhost/../../../../tmp/pwned", 400},
		{"/upload/localhost/%2e%2e/%2e%2e/tmp/pwned", 400},
		{"/upload/localhost/%2E%2E%2F%2E%2E%2Ftmp%2Fpwned", 400},
		{"/upload/localhost/" + id + "/..", 400},
		{"/upload/localhost/" + id + "/%2e%2e", 400},
		{"/upload/localhost/%u002e%u002e/x", 400},
		{"/upload/localhost/..;/..;/tmp/pwned", 404},
		{"/upload/localhost/" + id + "/..;/x", 404},
		{"/upload/localhost/" + id + "/a.txt/extra", 404},
		{"/upload/localhost/" + id + "/", 404},
		{"/upload/localhost/" + id, 404},
		{"/upload/localhost/AAAAAAAAAAAAAAAAAAAAAA/a.txt", 404},
		{"/upload/localhost/" + strings.ToLower(id) + "x/a.txt", 404},
		{"/upload/other.test/" + id + "/a.txt", 404},
	} {
		for _, method := range []string{"GET", "PUT"} {
			req := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: %s\r\nContent-Type: text/plain\r\nContent-Length: 6\r\nConnection: close\r\n\r\npwned!", method, c.path, s.auth)
			if method == "GET" {
				req = fmt.Sprintf("GET %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n", c.path)
			}
			want := c.want
			if got := raw(t, e.ts, req); got != want && !(method == "PUT" && want == 404 && got == 403) {
				t.Errorf("%s %s: %d, want %d", method, c.path, got, want)
			}
		}
	}
	// An encoded slash names the same file: served, and already used.
	if got := raw(t, e.ts, "GET /upload/localhost/"+id+"%2fa.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); got != 200 {
		t.Errorf("GET with %%2f: %d", got)
	}
	// The stored file is intact and the only one.
	resp, body := e.do(t, http.MethodGet, s.get, nil, 0)
	if resp.StatusCode != 200 || string(body) != "secret" {
		t.Fatalf("stored file: %d %q", resp.StatusCode, body)
	}
	checkOnlyUploads(t, e.ts.Dir, 1)
}

// checkOnlyUploads fails unless every file under dir is the server's own
// (database, certificate) or an upload in its place, and there are n
// uploads.
func checkOnlyUploads(t *testing.T, dir string, n int) {
	t.Helper()
	uploads := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case strings.HasPrefix(rel, "parley.db"), rel == "selfsigned.crt", rel == "selfsigned.key":
		case strings.HasPrefix(rel, filepath.Join("upload", "localhost")+string(filepath.Separator)) && len(filepath.Base(rel)) == 22:
			uploads++
		default:
			t.Errorf("unexpected file %s", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if uploads != n {
		t.Errorf("%d uploads stored, want %d", uploads, n)
	}
}

// A body that stalls is cut after read_timeout; nothing is stored, the
// quota reservation comes back, and the slot can still be used.
func TestStalledBodyTimesOut(t *testing.T) {
	e := setup(t, baseCfg+"[https]\nlisten = \"127.0.0.1:0\"\nread_timeout = \"1s\"\n")
	data := random(1000)
	s := e.slot(t, e.alice, "slow.bin", len(data), "")
	u, _ := url.Parse(s.put)
	c, err := tls.Dial("tcp", e.ts.HTTPSAddr().String(), &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PUT %s HTTP/1.1\r\nHost: localhost\r\nAuthorization: %s\r\nContent-Length: 1000\r\n\r\n", u.EscapedPath(), s.auth)
	_, _ = c.Write(data[:10])
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("stalled body: %v, want a 408 response", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestTimeout {
		t.Errorf("stalled body: %d, want 408", resp.StatusCode)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("cut after %s", d)
	}
	checkOnlyUploads(t, e.ts.Dir, 0)
	if st := e.put(t, s, "application/octet-stream", data); st != http.StatusCreated {
		t.Fatalf("the slot after a stalled attempt: %d", st)
	}
}

// Slow but steady transfers outlive read_timeout and write_timeout: those
// bound a stall, not a transfer.
func TestSlowTransfersGoOn(t *testing.T) {
	e := setup(t, `
[https]
listen = "127.0.0.1:0"
read_timeout = "1s"
write_timeout = "1s"
[[host]]
domain = "localhost"
[host.upload]
enabled = true
max_file_size = 16777216
quota_bytes = 33554432
`)
	const chunk, chunks = 64 << 10, 8
	s := e.slot(t, e.alice, "slow.bin", chunk*chunks, "")
	pr, pw := io.Pipe()
	go func() {
		for range chunks {
			time.Sleep(250 * time.Millisecond)
			if _, err := pw.Write(make([]byte, chunk)); err != nil {
				return
			}
		}
		pw.Close()
	}()
	start := time.Now()
	resp, body := e.do(t, http.MethodPut, s.put, pr, chunk*chunks, "Authorization", s.auth)
	if resp.StatusCode != 201 || time.Since(start) < 2*time.Second {
		t.Fatalf("a 2 s upload: %d %s after %s", resp.StatusCode, body, time.Since(start))
	}

	const size = 16 << 20
	s = e.slot(t, e.alice, "big.bin", size, "")
	if resp, b := e.do(t, http.MethodPut, s.put, io.LimitReader(zeros{}, size), size, "Authorization", s.auth); resp.StatusCode != 201 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	r, err := e.web.Get(s.get)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	var n int64
	start = time.Now()
	for {
		m, err := io.CopyN(io.Discard, r.Body, 1<<20)
		n += m
		if err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n != size || time.Since(start) < 1500*time.Millisecond {
		t.Errorf("a slow download: %d of %d bytes in %s", n, size, time.Since(start))
	}
}

func TestQuotas(t *testing.T) {
	e := setup(t, `
[[host]]
domain = "localhost"
[host.upload]
enabled = true
max_file_size = 1000
quota_bytes = 1500
quota_files = 2
`)
	up := func(n int) {
		t.Helper()
		s := e.slot(t, e.alice, "f.bin", n, "")
		if st := e.put(t, s, "", random(n)); st != 201 {
			t.Fatalf("PUT %d bytes: %d", n, st)
		}
	}
	up(1000)
	// 1000 + 600 > 1500: refused, to retry when the first file expires.
	res := e.request(e.alice, "upload.localhost", "g.bin", 600, "")
	if testserver.ErrorCondition(res) != "resource-constraint" {
		t.Fatalf("over the byte quota: %s", res)
	}
	errEl := res.Child("", "error")
	retry := errEl.Child(upload.NS, "retry")
	if errEl.Attr("type") != "wait" || retry == nil {
		t.Fatalf("quota error: %s", res)
	}
	stamp, err := time.Parse(time.RFC3339, retry.Attr("stamp"))
	if err != nil || stamp.Before(time.Now().Add(29*24*time.Hour)) || !strings.HasSuffix(retry.Attr("stamp"), "Z") {
		t.Errorf("retry stamp %q: want about the first file's expiry in 30 days (%v)", retry.Attr("stamp"), err)
	}
	// Two slots that fit alone, uploaded one after the other: the second
	// PUT finds the quota used by the first.
	s1 := e.slot(t, e.alice, "h.bin", 400, "")
	s2 := e.slot(t, e.alice, "i.bin", 400, "")
	if st := e.put(t, s1, "", random(400)); st != 201 {
		t.Fatalf("first: %d", st)
	}
	if st := e.put(t, s2, "", random(400)); st != http.StatusRequestEntityTooLarge {
		t.Errorf("second, over quota: %d, want 413", st)
	}
	// And the file count.
	if c := testserver.ErrorCondition(e.request(e.alice, "upload.localhost", "j.bin", 1, "")); c != "resource-constraint" {
		t.Errorf("over the file quota: %q", c)
	}
}

// Files expire: once expired a GET says 404, and the purge deletes them.
func TestExpiryAndPurge(t *testing.T) {
	e := setup(t, baseCfg+`expire_after = "2s"
slot_timeout = "1s"
purge_interval = "1s"
`)
	data := []byte("short-lived")
	s := e.slot(t, e.alice, "a.txt", len(data), "text/plain")
	if e.put(t, s, "text/plain", data) != 201 {
		t.Fatal("PUT")
	}
	if resp, _ := e.do(t, http.MethodGet, s.get, nil, 0); resp.StatusCode != 200 {
		t.Fatalf("GET: %d", resp.StatusCode)
	}
	checkOnlyUploads(t, e.ts.Dir, 1)
	time.Sleep(2100 * time.Millisecond)
	if resp, _ := e.do(t, http.MethodGet, s.get, nil, 0); resp.StatusCode != 404 {
		t.Fatalf("GET after expiry: %d", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		var n int
		_ = filepath.WalkDir(filepath.Join(e.ts.Dir, "upload"), func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				n++
			}
			return nil
		})
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the expired file was not purged")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Its quota is free again: a new slot of the whole quota is granted.
	e.slot(t, e.alice, "b.txt", 100000, "")
}

// Deleting an account deletes its files.
func TestAccountDeletionDeletesFiles(t *testing.T) {
	e := setup(t, baseCfg)
	data := []byte("mine")
	s := e.slot(t, e.alice, "a.txt", len(data), "text/plain")
	if e.put(t, s, "text/plain", data) != 201 {
		t.Fatal("PUT")
	}
	if err := e.ts.Store().Accounts().Delete(context.Background(), "localhost", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ts.AccountDeleted(jid.MustParse("alice@localhost")); err != nil {
		t.Fatal(err)
	}
	if resp, _ := e.do(t, http.MethodGet, s.get, nil, 0); resp.StatusCode != 404 {
		t.Fatalf("GET after the account was deleted: %d", resp.StatusCode)
	}
	checkOnlyUploads(t, e.ts.Dir, 0)
}

// Slots and files survive a restart: the signing key is in storage and
// the quota is counted from the store.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf("data_dir = %q\n", dir) + `
[[host]]
domain = "localhost"
[host.upload]
enabled = true
max_file_size = 1000
quota_bytes = 1000
`
	e := setup(t, cfg)
	first := e.slot(t, e.alice, "a.txt", 600, "")
	if e.put(t, first, "", random(600)) != 201 {
		t.Fatal("PUT")
	}
	pending := e.slot(t, e.alice, "b.txt", 300, "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	e.ts.Shutdown(ctx)
	cancel()

	ts := testserver.Start(t, cfg)
	alice := ts.Login(t, "alice", "password1", "r")
	e2 := &env{ts: ts, alice: alice, web: ts.HTTPSClient(t)}
	// The URLs name the old port; the new listener has another.
	move := func(u string) string {
		p, _ := url.Parse(u)
		p.Host = "localhost:" + strings.Split(ts.HTTPSAddr().String(), ":")[1]
		return p.String()
	}
	if resp, _ := e2.do(t, http.MethodGet, move(first.get), nil, 0); resp.StatusCode != 200 {
		t.Fatalf("GET after restart: %d", resp.StatusCode)
	}
	if c := testserver.ErrorCondition(e2.request(alice, "upload.localhost", "c.txt", 500, "")); c != "resource-constraint" {
		t.Errorf("quota after restart: %q", c)
	}
	pending.put = move(pending.put)
	if st := e2.put(t, pending, "", random(300)); st != 201 {
		t.Errorf("a slot from before the restart: %d", st)
	}
}

// Memory stays bounded whatever the file size: the body streams to disk
// through one buffer.
func TestLargeUploadMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 48 MiB")
	}
	const size = 48 << 20
	e := setup(t, `
[[host]]
domain = "localhost"
[host.upload]
enabled = true
max_file_size = 67108864
quota_bytes = 67108864
`)
	s := e.slot(t, e.alice, "big.bin", size, "")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp, body := e.do(t, http.MethodPut, s.put, io.LimitReader(zeros{}, size), size, "Authorization", s.auth)
	runtime.ReadMemStats(&after)
	if resp.StatusCode != 201 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, body)
	}
	// Client and server run in this process: both sides together must
	// allocate far less than the file (about 2 MiB when this was written).
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 && !raceDetector {
		t.Errorf("allocated %d MiB for a %d MiB upload", alloc>>20, size>>20)
	}
	r, err := e.web.Get(s.get)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := io.Copy(io.Discard, r.Body)
	r.Body.Close()
	if n != size {
		t.Errorf("GET %d bytes", n)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
