package websocket_test

import (
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"parley/internal/testserver"
	ws "parley/internal/websocket"
	"parley/internal/xmpp/xml"
)

// wsClient is a raw RFC 7395 client: one XML document per message.
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func dial(t *testing.T, e *endpoint, opts *websocket.DialOptions) (*wsClient, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if opts == nil {
		opts = &websocket.DialOptions{Subprotocols: []string{"xmpp"}}
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = e.client
	}
	c, resp, err := websocket.Dial(ctx, e.url, opts)
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return &wsClient{t: t, c: c}, resp, nil
}

func (w *wsClient) send(s string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// next reads one message and parses it as a document of its own (every
// message must be one).
func (w *wsClient) next() *xml.Element {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, data, err := w.c.Read(ctx)
	if err != nil {
		w.t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		w.t.Fatalf("binary message")
	}
	el, err := xml.ParseDocument(data, xml.DefaultLimits(), "urn:example:none")
	if err != nil {
		w.t.Fatalf("message %q is not one XML document: %v", data, err)
	}
	return el
}

// expect reads messages until one has the given local name.
func (w *wsClient) expect(local string) *xml.Element {
	w.t.Helper()
	for range 20 {
		if el := w.next(); el.Local == local {
			return el
		}
	}
	w.t.Fatalf("no <%s/>", local)
	return nil
}

const open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"

// startTLS runs a test server and the WebSocket endpoint on an HTTPS test
// listener (PLAIN, like on TCP, is offered only under TLS).
func startTLS(t *testing.T, cfg ws.Config) (*testserver.TS, *endpoint) {
	t.Helper()
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	h := ws.NewHandler(ts.C2S(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hs := httptest.NewTLSServer(h)
	t.Cleanup(hs.Close)
	return ts, &endpoint{url: "wss" + strings.TrimPrefix(hs.URL, "https") + "/xmpp-websocket", client: hs.Client()}
}

// endpoint is the test listener: its URL and a client trusting its
// certificate.
type endpoint struct {
	url    string
	client *http.Client
}

// login opens, authenticates with PLAIN and binds over the WebSocket.
func login(t *testing.T, e *endpoint, user, res string) *wsClient {
	t.Helper()
	c, _, err := dial(t, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.send(open)
	if o := c.next(); o.Local != "open" || o.Space != ws.NSFraming || o.Attr("from") != "localhost" || o.Attr("version") != "1.0" || o.Attr("id") == "" {
		t.Fatalf("server open: %s", o)
	}
	f := c.expect("features")
	if f.Space != "http://etherx.jabber.org/streams" || f.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls") != nil {
		t.Fatalf("features (no STARTTLS on WebSocket): %s", f)
	}
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00password1")) + "</auth>")
	if s := c.next(); s.Local != "success" {
		t.Fatalf("auth: %s", s)
	}
	c.send(open) // RFC 7395 §3.5: the client restarts with a new <open/>
	c.expect("open")
	c.expect("features")
	c.send("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + res + "</resource></bind></iq>")
	if r := c.expect("iq"); r.Attr("type") != "result" {
		t.Fatalf("bind: %s", r)
	}
	return c
}

func TestLoginAndChatOverWebSocket(t *testing.T) {
	ts, e := startTLS(t, ws.Config{})
	alice := login(t, e, "alice", "web")
	alice.send("<presence xmlns='jabber:client'/>")
	alice.expect("presence")
	bob := ts.Online(t, "bob", "password1", "tcp")
	bob.Send("<message to='alice@localhost/web' type='chat'><body>hello browser</body></message>")
	m := alice.expect("message")
	if m.Space != "jabber:client" || m.ChildText("jabber:client", "body") != "hello browser" {
		t.Fatalf("message over WebSocket: %s", m)
	}
	alice.send("<message xmlns='jabber:client' to='bob@localhost/tcp' type='chat'><body>hello tcp</body></message>")
	if got := bob.ExpectStanza("message"); got.ChildText("", "body") != "hello tcp" || got.Attr("from") != "alice@localhost/web" {
		t.Fatalf("message from WebSocket: %s", got)
	}
	alice.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
	alice.expect("close")
}

func TestHandshakeRefusals(t *testing.T) {
	_, e := startTLS(t, ws.Config{OriginPatterns: []string{"chat.example.com"}})
	// No xmpp subprotocol: the server closes with a policy violation.
	c, _, err := dial(t, e, &websocket.DialOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := c.c.Read(ctx); websocket.CloseStatus(err) != websocket.StatusPolicyViolation {
		t.Fatalf("without the xmpp subprotocol: %v", err)
	}
	// A page from a foreign origin is refused before the upgrade.
	h := http.Header{}
	h.Set("Origin", "https://evil.example.net")
	if _, resp, err := dial(t, e, &websocket.DialOptions{Subprotocols: []string{"xmpp"}, HTTPHeader: h}); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v", resp, err)
	}
	h.Set("Origin", "https://chat.example.com")
	if _, _, err := dial(t, e, &websocket.DialOptions{Subprotocols: []string{"xmpp"}, HTTPHeader: h}); err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
}

// expectStreamError reads the error and the <close/> that must follow it,
// each its own message (RFC 7395 §3.6).
func expectStreamError(t *testing.T, c *wsClient, cond string) {
	t.Helper()
	el := c.expect("error")
	if el.Space != "http://etherx.jabber.org/streams" || el.Child("urn:ietf:params:xml:ns:xmpp-streams", cond) == nil {
		t.Fatalf("stream error %s, want %s", el, cond)
	}
	if cl := c.next(); cl.Local != "close" || cl.Space != ws.NSFraming {
		t.Fatalf("after the error: %s", cl)
	}
}

func TestHostileInput(t *testing.T) {
	_, e := startTLS(t, ws.Config{})
	cases := []struct {
		name, first, then, cond string
	}{
		{"billion laughs in the open", `<!DOCTYPE o [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>`, "", "restricted-xml"},
		{"not an open", "<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'/>", "", "invalid-namespace"},
		{"two elements in one message", open, "<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>", "not-well-formed"},
		{"invalid UTF-8", open, "<message xmlns='jabber:client'><body>\xff\xfe</body></message>", "not-well-formed"},
		{"comment", open, "<message xmlns='jabber:client'><!-- x --></message>", "restricted-xml"},
		{"unknown host", "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='elsewhere.example' version='1.0'/>", "", "host-unknown"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := dial(t, e, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.send(tc.first)
			if tc.then != "" {
				c.expect("features")
				c.send(tc.then)
			}
			expectStreamError(t, c, tc.cond)
		})
	}
}

func TestOversizedMessages(t *testing.T) {
	ts, e := startTLS(t, ws.Config{})
	max := ts.Config.Limits.MaxStanzaBytes
	// Over max_stanza_bytes: the stream error a TCP client gets.
	c := login(t, e, "alice", "web")
	c.send("<message xmlns='jabber:client' to='bob@localhost'><body>" + strings.Repeat("x", max) + "</body></message>")
	expectStreamError(t, c, "policy-violation")
	// Far over it: the library stops reading at its limit (and sends 1009,
	// unless the stream's own close gets out first); either way the
	// connection ends without the message being read into memory.
	c = login(t, e, "alice", "web2")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.c.Write(ctx, websocket.MessageText, []byte(strings.Repeat("x", 3*max)))
	for {
		if _, _, err := c.c.Read(ctx); err != nil {
			if websocket.CloseStatus(err) == -1 && ctx.Err() != nil {
				t.Fatalf("connection still open: %v", err)
			}
			return
		}
	}
}

// A message that never ends (fragments that keep coming, or one frame
// announcing more than the server would hold) is cut off at the read
// limit: the server closes with 1009 instead of buffering what the client
// sends until it runs out of memory. The library's net.Conn view, which
// the transport writes through, turns that limit off when it is made; a
// limit set before it would be lost.
func TestEndlessMessageIsCutOff(t *testing.T) {
	ts, e := startTLS(t, ws.Config{})
	max := ts.Config.Limits.MaxStanzaBytes
	for _, authed := range []bool{false, true} {
		var c *wsClient
		if authed {
			c = login(t, e, "alice", "endless")
		} else {
			var err error
			if c, _, err = dial(t, e, nil); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		w, err := c.c.Writer(ctx, websocket.MessageText)
		if err != nil {
			t.Fatal(err)
		}
		// Each Write is a fragment; the message is never finished.
		// Eight times the stanza limit, well past the server's read limit.
		chunk := []byte(strings.Repeat("x", 16<<10))
		go func() {
			for sent := 0; sent < 8*max; sent += len(chunk) {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		}()
		_, _, err = c.c.Read(ctx)
		cancel()
		if got := websocket.CloseStatus(err); got != websocket.StatusMessageTooBig {
			t.Fatalf("authenticated %v: read ended with %v (close status %d), want the server's 1009", authed, err, got)
		}
	}
}

// An <open/> is held to the stream header limit, as a TCP stream header is.
func TestOversizedOpen(t *testing.T) {
	_, e := startTLS(t, ws.Config{})
	c, _, err := dial(t, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0' x='" + strings.Repeat("y", 9<<10) + "'/>")
	expectStreamError(t, c, "policy-violation")
}

func TestBinaryMessageIsRefused(t *testing.T) {
	_, e := startTLS(t, ws.Config{})
	c, _, err := dial(t, e, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.c.Write(ctx, websocket.MessageBinary, []byte(open))
	expectStreamError(t, c, "bad-format")
}

// Stream management works over WebSocket, and a session lost on a
// WebSocket resumes on a TCP connection: resumption works on any listener.
func TestStreamManagementAcrossTransports(t *testing.T) {
	ts, e := startTLS(t, ws.Config{})
	alice := login(t, e, "alice", "web")
	alice.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	enabled := alice.expect("enabled")
	alice.send("<presence xmlns='jabber:client'/>")
	alice.expect("presence")
	bob := ts.Online(t, "bob", "password1", "tcp")
	bob.Send("<message to='alice@localhost/web' type='chat'><body>one</body></message>")
	alice.expect("message")
	_ = alice.c.CloseNow() // the browser tab's network is gone
	time.Sleep(100 * time.Millisecond)
	bob.Send("<message to='alice@localhost/web' type='chat'><body>two</body></message>")

	tcp := ts.Authenticated(t, "alice", "password1")
	tcp.Send("<resume xmlns='urn:xmpp:sm:3' previd='%s' h='0'/>", enabled.Attr("id"))
	if r := tcp.Expect(func(el *xml.Element) bool { return el.Space == "urn:xmpp:sm:3" }); r.Local != "resumed" {
		t.Fatalf("resume on TCP: %s", r)
	}
	for _, want := range []string{"one", "two"} {
		m := tcp.ExpectStanza("message")
		if m.ChildText("", "body") != want {
			t.Fatalf("after resumption got %s, want %q", m, want)
		}
	}
}
