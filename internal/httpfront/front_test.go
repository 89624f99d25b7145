package httpfront_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"parley/internal/certs"
	"parley/internal/config"
	"parley/internal/httpfront"
	"parley/internal/metrics"
	"parley/internal/stream"
)

type front struct {
	*httpfront.Front
	cfg   *config.Config
	certs *certs.Manager
	dir   string
}

// newFront builds a front door from config text (data in a temporary
// directory, TLS on 127.0.0.1:0 unless the text sets [https] listen).
func newFront(t *testing.T, text string, perIP *stream.ConnLimiter) *front {
	t.Helper()
	dir := t.TempDir()
	if !strings.Contains(text, "listen") {
		text = "[https]\nlisten = \"127.0.0.1:0\"\n" + text
	}
	cfg, err := config.Parse([]byte(fmt.Sprintf("data_dir = %q\n", dir) + text))
	if err != nil {
		t.Fatal(err)
	}
	cm, err := certs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if perIP == nil {
		perIP = stream.NewConnLimiter(cfg.Limits.MaxConnectionsPerIP)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if os.Getenv("PARLEY_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	f, err := httpfront.New(cfg, cm, perIP, metrics.New(), log)
	if err != nil {
		t.Fatal(err)
	}
	return &front{Front: f, cfg: cfg, certs: cm, dir: dir}
}

// start binds and serves; the listener is shut down when the test ends.
func (f *front) start(t *testing.T) {
	t.Helper()
	if err := f.Listen(); err != nil {
		t.Fatal(err)
	}
	f.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		f.Shutdown(ctx)
	})
}

// client sends every request to addr, with SNI from the URL's host.
func client(t *testing.T, addr string, h2 bool) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
		},
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

var echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "%s %s %s secure=%v xff=%q", r.Proto, r.RemoteAddr, r.URL.Path, httpfront.Secure(r), r.Header.Get("X-Forwarded-For"))
})

// Nothing mounted and no transport announced: no port is opened, and a
// handler mounted after that decision is refused rather than never served.
func TestNotBoundWithNothingToServe(t *testing.T) {
	f := newFront(t, "", nil)
	f.start(t)
	if f.Addr() != nil {
		t.Fatalf("bound %v with nothing to serve", f.Addr())
	}
	if err := f.Mount("/late", echo); err == nil {
		t.Fatal("a mount after an unbound start was accepted")
	}
}

func TestMountRefusesConflictsAndHostPatterns(t *testing.T) {
	f := newFront(t, "", nil)
	if err := f.Mount("/upload/", echo); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/upload/", "/.well-known/host-meta", "example.com/x", "x", ""} {
		if err := f.Mount(p, echo); err == nil {
			t.Errorf("Mount(%q) accepted", p)
		}
	}
	if err := f.Mount("GET /other", echo); err != nil {
		t.Errorf("method pattern: %v", err)
	}
	if err := f.Mount("/nil", nil); err == nil {
		t.Error("nil handler accepted")
	}
}

// Each host's certificate is chosen by SNI, HTTP/2 and HTTP/1.1 both
// work, and a certificate replaced on disk is used after a reload (what
// SIGHUP does) by new connections.
func TestCertificatesBySNIAndProtocols(t *testing.T) {
	dir := t.TempDir()
	writeCert := func(name string) (string, string) {
		crt, key, err := certs.GenerateSelfSigned([]string{name}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		cf, kf := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		if err := os.WriteFile(cf, crt, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(kf, key, 0o600); err != nil {
			t.Fatal(err)
		}
		return cf, kf
	}
	cf, kf := writeCert("a.test")
	f := newFront(t, fmt.Sprintf(`
[[host]]
domain = "a.test"
cert_file = %q
key_file = %q
[[host]]
domain = "b.test"
`, cf, kf), nil)
	if err := f.Mount("/hello", echo); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	addr := f.Addr().String()
	leaf := func(name string) []byte {
		c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name, InsecureSkipVerify: true})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		l := c.ConnectionState().PeerCertificates[0]
		if err := l.VerifyHostname(name); err != nil {
			t.Errorf("SNI %s: %v", name, err)
		}
		return l.Raw
	}
	first := leaf("a.test")
	leaf("b.test")

	if _, body := get(t, client(t, addr, true), "https://a.test/hello"); !strings.HasPrefix(body, "HTTP/2.0 ") {
		t.Errorf("HTTP/2 client got %q", body)
	}
	if _, body := get(t, client(t, addr, false), "https://a.test/hello"); !strings.HasPrefix(body, "HTTP/1.1 ") {
		t.Errorf("HTTP/1.1 client got %q", body)
	}

	writeCert("a.test")
	if err := f.certs.Reload(); err != nil {
		t.Fatal(err)
	}
	if string(leaf("a.test")) == string(first) {
		t.Error("the reloaded certificate is not used")
	}
}

// rawTLS sends one raw HTTP/1.1 request and returns the status line.
func rawTLS(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("%q: %v", request, err)
	}
	return strings.TrimSpace(line)
}

// Paths that try to climb out of a mount are refused at the door, in any
// encoding, before a handler sees them.
func TestDotSegmentsRefused(t *testing.T) {
	f := newFront(t, "", nil)
	if err := f.Mount("/files/", echo); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	addr := f.Addr().String()
	for _, p := range []string{
		"/files/../etc/passwd",
		"/files/%2e%2e/etc/passwd",
		"/files/%2E%2E%2Fetc%2Fpasswd",
		"/files/.%2e/x",
		"/files/./x",
		"/files/%u002e%u002e/x",
		"/files/..%5cx",
		"/files/x%00y",
	} {
		line := rawTLS(t, addr, "GET "+p+" HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
		if !strings.Contains(line, " 400 ") {
			t.Errorf("%s: %s, want 400", p, line)
		}
	}
	if line := rawTLS(t, addr, "GET /files/..;/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"); !strings.Contains(line, " 200 ") {
		// "..;" is a name, not a dot segment: the handler decides.
		t.Errorf("..;: %s", line)
	}
}

// A client that never finishes its TLS handshake or its request headers is
// disconnected after read_header_timeout.
func TestSlowClientsAreCut(t *testing.T) {
	f := newFront(t, "[https]\nlisten = \"127.0.0.1:0\"\nread_header_timeout = \"1s\"\n", nil)
	if err := f.Mount("/x", echo); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	addr := f.Addr().String()
	closedWithin := func(c net.Conn, what string) {
		t.Helper()
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := io.ReadAll(c)
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatalf("%s: still open after 5s", what)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("%s: closed after %s", what, d)
		}
	}
	// Silent after connecting: the handshake counts against the timeout.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	closedWithin(c, "no ClientHello")
	// Handshake done, headers never finished.
	tc, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if _, err := io.WriteString(tc, "GET /x HTTP/1.1\r\nHost: localhost\r\nX-Slow: "); err != nil {
		t.Fatal(err)
	}
	closedWithin(tc, "unfinished headers")
}

// The per-address limit is the one the server shares with the XMPP
// listeners: a connection counted there (a client stream) leaves one fewer
// for HTTPS, and a refused connection is closed before its handshake.
func TestConnectionLimitIsShared(t *testing.T) {
	perIP := stream.NewConnLimiter(2)
	f := newFront(t, "", perIP)
	if err := f.Mount("/x", echo); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	addr := f.Addr().String()
	xmpp, ok := perIP.Acquire(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
	if !ok {
		t.Fatal("acquire")
	}
	dial := func() (*tls.Conn, error) {
		return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	}
	c1, err := dial()
	if err != nil {
		t.Fatalf("first HTTPS connection: %v", err)
	}
	defer c1.Close()
	if c2, err := dial(); err == nil {
		c2.Close()
		t.Fatal("a third connection from one address (one XMPP, two HTTPS) was served")
	}
	xmpp()
	c3, err := dial()
	if err != nil {
		t.Fatalf("after the XMPP connection closed: %v", err)
	}
	c3.Close()
	c1.Close()
	deadline := time.Now().Add(5 * time.Second)
	for perIP.Open(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("closed connections still counted: %d", perIP.Open(&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// dialFrom returns a client whose connections come from src (a second
// loopback address), or skips when the system has none.
func dialFrom(t *testing.T, src, addr string) *http.Client {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	probe, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s: %v", src, err)
	}
	probe.Close()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// X-Forwarded-For and -Proto are believed from trusted proxies only: the
// plain listener serves nobody else, and on the TLS listener the headers
// of an untrusted client are removed.
func TestTrustedProxies(t *testing.T) {
	f := newFront(t, `
[https]
listen = "127.0.0.1:0"
plain_listen = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1", "10.0.0.0/8"]
`, nil)
	if err := f.Mount("/who", echo); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	plain := "http://" + f.PlainAddr().String() + "/who"
	c := &http.Client{Timeout: 10 * time.Second}

	// Rightmost untrusted hop is the client; a forged hop left of it is
	// never read.
	_, body := get(t, c, plain, "X-Forwarded-For", "203.0.113.5, 198.51.100.7, 10.1.2.3", "X-Forwarded-Proto", "https")
	if !strings.Contains(body, " 198.51.100.7:0 ") || !strings.Contains(body, "secure=true") {
		t.Errorf("through the proxy: %s", body)
	}
	_, body = get(t, c, plain, "X-Forwarded-For", "198.51.100.7", "X-Forwarded-Proto", "http")
	if !strings.Contains(body, "secure=false") {
		t.Errorf("proxy said http: %s", body)
	}
	_, body = get(t, c, plain)
	if !strings.Contains(body, " 127.0.0.1:0 ") || !strings.Contains(body, "secure=true") {
		t.Errorf("proxy without headers: %s", body)
	}

	// Not from a trusted proxy: 403 on the plain port; on the TLS port the
	// forwarded headers vanish.
	resp, _ := get(t, dialFrom(t, "127.0.0.2", f.PlainAddr().String()), plain, "X-Forwarded-For", "198.51.100.7")
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("plain listener from an untrusted address: %d", resp.StatusCode)
	}
	_, body = get(t, dialFrom(t, "127.0.0.2", f.Addr().String()), "https://localhost/who", "X-Forwarded-For", "198.51.100.7", "X-Forwarded-Proto", "https")
	if !strings.Contains(body, " 127.0.0.2:") || !strings.Contains(body, `xff=""`) || !strings.Contains(body, "secure=true") {
		t.Errorf("TLS from an untrusted address with forwarded headers: %s", body)
	}
}

func TestHostMeta(t *testing.T) {
	f := newFront(t, `
[https]
listen = "127.0.0.1:0"
websocket = true
bosh = true
[[host]]
domain = "a.test"
[[host]]
domain = "b.test"
[host.http]
public_url = "https://chat.b.test/xmpp/"
`, nil)
	f.start(t)
	addr := f.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	c := client(t, addr, true)

	resp, body := get(t, c, "https://a.test/.well-known/host-meta", "Host", "A.test:"+port)
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "*" ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xrd+xml") {
		t.Fatalf("host-meta: %d %v", resp.StatusCode, resp.Header)
	}
	for _, want := range []string{
		`<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">`,
		`<Link rel="urn:xmpp:alt-connections:websocket" href="wss://a.test:` + port + `/xmpp-websocket"></Link>`,
		`<Link rel="urn:xmpp:alt-connections:xbosh" href="https://a.test:` + port + `/http-bind"></Link>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("host-meta lacks %s:\n%s", want, body)
		}
	}

	// By the public URL's host name, as a reverse proxy passes it on.
	resp, body = get(t, c, "https://chat.b.test/.well-known/host-meta.json", "Host", "chat.b.test")
	var doc struct{ Links []httpfront.Link }
	if err := json.Unmarshal([]byte(body), &doc); err != nil || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("host-meta.json: %v %s %v", err, body, resp.Header)
	}
	want := []httpfront.Link{
		{Rel: httpfront.RelWebSocket, Href: "wss://chat.b.test/xmpp/xmpp-websocket"},
		{Rel: httpfront.RelBOSH, Href: "https://chat.b.test/xmpp/http-bind"},
	}
	if fmt.Sprint(doc.Links) != fmt.Sprint(want) {
		t.Errorf("links %v, want %v", doc.Links, want)
	}

	if resp, _ := get(t, c, "https://a.test/.well-known/host-meta", "Host", "elsewhere.test"); resp.StatusCode != 404 {
		t.Errorf("unknown host: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodOptions, "https://a.test/.well-known/host-meta", nil)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 204 || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("preflight: %v %v", resp, err)
	}
	req, _ = http.NewRequest(http.MethodPost, "https://a.test/.well-known/host-meta", nil)
	if resp, err := c.Do(req); err != nil || resp.StatusCode != 405 {
		t.Errorf("POST: %v %v", resp, err)
	}
}

// Only enabled transports are listed.
func TestHostMetaListsOnlyEnabledTransports(t *testing.T) {
	f := newFront(t, "[https]\nlisten = \"127.0.0.1:0\"\nbosh = true\n", nil)
	f.start(t)
	links := f.Links("localhost")
	if len(links) != 1 || links[0].Rel != httpfront.RelBOSH {
		t.Fatalf("links %v", links)
	}
}

// A hijacked connection (what a WebSocket handler does) outlives the
// request's timeouts (net/http clears the deadlines when it hands the
// connection over; its handler owns them from then on), and it still
// counts against the per-address limit until it is closed.
func TestHijackedConnectionsKeepNoDeadlines(t *testing.T) {
	perIP := stream.NewConnLimiter(10)
	f := newFront(t, "[https]\nlisten = \"127.0.0.1:0\"\nread_timeout = \"1s\"\nwrite_timeout = \"1s\"\n", perIP)
	if err := f.Mount("/ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		_, _ = brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n")
		_ = brw.Flush()
		time.Sleep(1500 * time.Millisecond)
		_, _ = c.Write([]byte("still here\n"))
		line, _ := brw.ReadString('\n')
		_, _ = c.Write([]byte("echo " + line))
	})); err != nil {
		t.Fatal(err)
	}
	f.start(t)
	c, err := tls.Dial("tcp", f.Addr().String(), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET /ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != 101 {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	if n := perIP.Open(c.LocalAddr()); n != 1 {
		t.Errorf("a hijacked connection counts %d, want 1", n)
	}
	if line, err := br.ReadString('\n'); err != nil || line != "still here\n" {
		t.Fatalf("after write_timeout: %q %v", line, err)
	}
	time.Sleep(1200 * time.Millisecond) // past read_timeout as well
	_, _ = io.WriteString(c, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "echo ping\n" {
		t.Fatalf("after read_timeout: %q %v", line, err)
	}
}
