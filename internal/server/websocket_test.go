package server_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// wsDial opens an XMPP WebSocket on the server's HTTPS listener (HTTP/1.1:
// WebSocket upgrades need it).
func wsDial(t *testing.T, ts *testserver.TS) (*websocket.Conn, error) {
	t.Helper()
	addr := ts.HTTPSAddr().String()
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
		},
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}
	t.Cleanup(tr.CloseIdleConnections)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "wss://localhost/xmpp-websocket", &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr}, Subprotocols: []string{"xmpp"},
	})
	if err == nil {
		t.Cleanup(func() { _ = c.CloseNow() })
	}
	return c, err
}

func wsRoundTrip(t *testing.T, c *websocket.Conn, send, want string) *xml.Element {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if send != "" {
		if err := c.Write(ctx, websocket.MessageText, []byte(send)); err != nil {
			t.Fatal(err)
		}
	}
	for {
		_, data, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for <%s/>: %v", want, err)
		}
		el, err := xml.ParseDocument(data, xml.DefaultLimits(), "urn:none")
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		if el.Local == want {
			return el
		}
	}
}

// With [https] websocket = true the server mounts RFC 7395 on its public
// HTTPS listener and announces it in host-meta; a client logs in over it
// and chats with a TCP client.
func TestWebSocketOnTheHTTPSListener(t *testing.T) {
	ts := testserver.Start(t, "[https]\nwebsocket = true\n")
	ts.AddUsers(t, "password1", "alice", "bob")
	resp, err := ts.HTTPSClient(t).Get("https://localhost/.well-known/host-meta.json")
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	buf := make([]byte, 4096)
	n, _ := resp.Body.Read(buf)
	b.Write(buf[:n])
	resp.Body.Close()
	if !strings.Contains(b.String(), "/xmpp-websocket") {
		t.Fatalf("host-meta without the WebSocket endpoint: %s", b.String())
	}

	c, err := wsDial(t, ts)
	if err != nil {
		t.Fatal(err)
	}
	open := "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
	wsRoundTrip(t, c, open, "features")
	auth := "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00password1")) + "</auth>"
	wsRoundTrip(t, c, auth, "success")
	wsRoundTrip(t, c, open, "features")
	wsRoundTrip(t, c, "<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>", "iq")
	bob := ts.Online(t, "bob", "password1", "tcp")
	bob.Send("<message to='alice@localhost/web' type='chat'><body>hi</body></message>")
	if m := wsRoundTrip(t, c, "", "message"); m.ChildText("jabber:client", "body") != "hi" {
		t.Fatalf("got %s", m)
	}
}

// The per-address connection bound counts TCP client streams and HTTPS
// connections together.
func TestWebSocketSharesTheConnectionLimit(t *testing.T) {
	ts := testserver.Start(t, "[https]\nwebsocket = true\n[limits]\nmax_connections_per_ip = 2\n")
	// Served (the stream header answered), so both are counted.
	testserver.Dial(t, ts.StartTLSAddr()).Open("localhost")
	testserver.Dial(t, ts.StartTLSAddr()).Open("localhost")
	if _, err := wsDial(t, ts); err == nil {
		t.Fatal("a third connection from the address was accepted over HTTPS")
	}
}

// With [https] bosh = true the server mounts XEP-0206 at /http-bind: a
// session is created and answers with the stream features.
func TestBOSHOnTheHTTPSListener(t *testing.T) {
	ts := testserver.Start(t, "[https]\nbosh = true\n")
	body := "<body xmlns='http://jabber.org/protocol/httpbind' rid='1000' to='localhost' xml:lang='en' wait='5' hold='1' ver='1.6' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'/>"
	resp, err := ts.HTTPSClient(t).Post("https://localhost/http-bind", "text/xml; charset=utf-8", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b strings.Builder
	buf := make([]byte, 8192)
	for {
		n, err := resp.Body.Read(buf)
		b.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if resp.StatusCode != 200 || !strings.Contains(b.String(), "sid=") || !strings.Contains(b.String(), "mechanisms") {
		t.Fatalf("session creation: %d %s", resp.StatusCode, b.String())
	}
}

// Behind a trusted TLS-terminating proxy (plain_listen), a WebSocket
// stream counts as encrypted when the proxy says so: PLAIN is offered and
// login works; a proxy reporting plain HTTP gets no PLAIN. Channel binding
// is never offered there (the TLS is the proxy's).
func TestWebSocketBehindTrustedProxy(t *testing.T) {
	ts := testserver.Start(t, "[https]\nwebsocket = true\nplain_listen = \"127.0.0.1:0\"\ntrusted_proxies = [\"127.0.0.1\"]\n")
	ts.AddUser(t, "alice", "password1")
	dial := func(proto string) *websocket.Conn {
		h := http.Header{}
		h.Set("X-Forwarded-Proto", proto)
		h.Set("X-Forwarded-For", "192.0.2.7")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		c, _, err := websocket.Dial(ctx, "ws://"+ts.HTTPSPlainAddr().String()+"/xmpp-websocket",
			&websocket.DialOptions{Subprotocols: []string{"xmpp"}, HTTPHeader: h})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.CloseNow() })
		return c
	}
	open := "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
	c := dial("https")
	f := wsRoundTrip(t, c, open, "features")
	if s := f.String(); !strings.Contains(s, ">PLAIN<") || strings.Contains(s, "-PLUS") || strings.Contains(s, "starttls") {
		t.Fatalf("features behind a TLS proxy: %s", s)
	}
	auth := "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00password1")) + "</auth>"
	wsRoundTrip(t, c, auth, "success")

	c = dial("http")
	f = wsRoundTrip(t, c, open, "features")
	if s := f.String(); strings.Contains(s, ">PLAIN<") {
		t.Fatalf("PLAIN offered on a stream the proxy says is plain HTTP: %s", s)
	}
}
