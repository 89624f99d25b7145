package bosh_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/internal/bosh"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// A raw BOSH client for the tests: it writes the <body/> wrappers the test
// gives it and parses every response as one document.

const (
	nsStream = "http://etherx.jabber.org/streams"
	nsSASL   = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind   = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSM     = "urn:xmpp:sm:3"
)

// endpoint is the BOSH handler on an HTTPS test listener.
type endpoint struct {
	url    string
	client *http.Client
	h      *bosh.Handler
}

// start runs a test server (alice and bob, password1) and the BOSH
// endpoint on an HTTPS test listener: PLAIN, as on TCP, is offered only
// under TLS.
func start(t *testing.T, cfg bosh.Config) (*testserver.TS, *endpoint) {
	t.Helper()
	ts := testserver.Start(t, "")
	ts.AddUsers(t, "password1", "alice", "bob")
	if cfg.MaxWait == 0 {
		cfg.MaxWait = 2 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 5 * time.Second
	}
	h := bosh.NewHandler(ts.C2S(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hs := httptest.NewTLSServer(h)
	t.Cleanup(hs.Close)
	return ts, &endpoint{url: hs.URL + "/http-bind", client: hs.Client(), h: h}
}

// response is one answer: its status, bytes and parsed <body/>.
type response struct {
	status int
	header http.Header
	raw    []byte
	body   *xml.Element
}

func (r *response) String() string { return fmt.Sprintf("%d %s", r.status, r.raw) }

// post sends one request body and parses the answer. Stanzas in the
// answer come back with the empty namespace, as a stream decoder gives
// them.
func (e *endpoint) post(t testing.TB, body string, hdr ...string) *response {
	t.Helper()
	r, err := e.tryPost(context.Background(), body, hdr...)
	if err != nil {
		t.Fatalf("post: %v", err)
	}
	return r
}

// async posts body in a goroutine of its own; the answer (nil after a
// failure, which fails the test) comes on the channel.
func (e *endpoint) async(t testing.TB, body string) <-chan *response {
	ch := make(chan *response, 1)
	go func() {
		r, err := e.tryPost(context.Background(), body)
		if err != nil {
			t.Errorf("post: %v", err)
		}
		ch <- r
	}()
	return ch
}

func (e *endpoint) tryPost(ctx context.Context, body string, hdr ...string) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	r := &response{status: resp.StatusCode, header: resp.Header, raw: raw}
	// The parser below has the stream prefix bound already (a stream
	// header precedes the document); a response must declare it itself.
	if strings.Contains(string(raw), "<stream:") && !strings.Contains(string(raw), "xmlns:stream='http://etherx.jabber.org/streams'") {
		return nil, fmt.Errorf("response uses the stream prefix without declaring it: %s", raw)
	}
	if len(raw) > 0 {
		el, err := xml.ParseDocument(raw, xml.DefaultLimits(), "jabber:client")
		if err != nil {
			return nil, fmt.Errorf("response %q is not one XML document: %v", raw, err)
		}
		if el.Space != bosh.NSHTTPBind || el.Local != "body" {
			return nil, fmt.Errorf("response is not a <body/>: %s", raw)
		}
		r.body = el
	}
	return r, nil
}

// terminated reports whether r ends the session with cond ("" for none).
func (r *response) terminated(cond string) bool {
	return r.body != nil && r.body.Attr("type") == "terminate" && r.body.Attr("condition") == cond
}

// client is one BOSH session.
type client struct {
	t       *testing.T
	e       *endpoint
	sid     string
	rid     uint64
	pending []*xml.Element
	mu      sync.Mutex // rid, when requests go out from several goroutines
}

const wrapperNS = "xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'"

// create opens a session; attrs are added to the creation request.
func create(t *testing.T, e *endpoint, attrs string) (*client, *response) {
	t.Helper()
	c := &client{t: t, e: e, rid: 1_000_000 + uint64(time.Now().UnixNano()%1_000_000)}
	if !strings.Contains(attrs, "wait=") {
		attrs += " wait='2'"
	}
	if !strings.Contains(attrs, "hold=") {
		attrs += " hold='1'"
	}
	if !strings.Contains(attrs, "ver=") && !strings.Contains(attrs, "legacy") {
		attrs += " ver='1.11'"
	}
	attrs = strings.ReplaceAll(attrs, "legacy", "")
	r := e.post(t, fmt.Sprintf("<body rid='%d' to='localhost' xml:lang='en' xmpp:version='1.0' %s %s/>", c.rid, attrs, wrapperNS))
	if r.body != nil {
		c.sid = r.body.Attr("sid")
		c.keep(r)
	}
	return c, r
}

// nextRID reserves the next request ID.
func (c *client) nextRID() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rid++
	return c.rid
}

// body is a request wrapper for rid with attrs around payload.
func (c *client) body(rid uint64, attrs, payload string) string {
	if payload == "" {
		return fmt.Sprintf("<body rid='%d' sid='%s' %s %s/>", rid, c.sid, attrs, wrapperNS)
	}
	return fmt.Sprintf("<body rid='%d' sid='%s' %s %s>%s</body>", rid, c.sid, attrs, wrapperNS, payload)
}

// send makes the next request and returns its answer; the payloads
// answered are kept for expect too.
func (c *client) send(attrs, payload string) *response {
	c.t.Helper()
	r := c.e.post(c.t, c.body(c.nextRID(), attrs, payload))
	c.keep(r)
	return r
}

func (c *client) keep(r *response) {
	if r.body == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending = append(c.pending, r.body.Elements()...)
}

// expect returns the first payload received that matches, polling for
// more until one does.
func (c *client) expect(match func(*xml.Element) bool) *xml.Element {
	c.t.Helper()
	deadline := time.Now().Add(8 * time.Second)
	for {
		c.mu.Lock()
		for i, el := range c.pending {
			if match(el) {
				c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
				c.mu.Unlock()
				return el
			}
		}
		c.mu.Unlock()
		if time.Now().After(deadline) {
			c.t.Fatalf("expected payload not received (pending %v)", c.pending)
		}
		if r := c.send("", ""); r.status != http.StatusOK || r.body.Attr("type") == "terminate" {
			c.t.Fatalf("poll: %s", r)
		}
	}
}

func (c *client) expectLocal(local string) *xml.Element {
	c.t.Helper()
	return c.expect(func(el *xml.Element) bool { return el.Local == local })
}

// login creates a session, authenticates alice or bob with PLAIN,
// restarts and binds resource.
func login(t *testing.T, e *endpoint, user, res, attrs string) *client {
	t.Helper()
	c, r := create(t, e, attrs)
	if r.status != http.StatusOK || c.sid == "" {
		t.Fatalf("session creation: %s", r)
	}
	c.expect(func(el *xml.Element) bool { return el.Space == nsStream && el.Local == "features" })
	c.send("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00password1"))+"</auth>")
	if s := c.expect(func(el *xml.Element) bool { return el.Space == nsSASL }); s.Local != "success" {
		t.Fatalf("auth: %s", s)
	}
	c.send("xmpp:restart='true' to='localhost'", "")
	f := c.expect(func(el *xml.Element) bool { return el.Space == nsStream && el.Local == "features" })
	if f.Child(nsBind, "bind") == nil {
		t.Fatalf("features after restart: %s", f)
	}
	c.send("", "<iq xmlns='jabber:client' type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>"+res+"</resource></bind></iq>")
	if r := c.expect(func(el *xml.Element) bool { return el.Local == "iq" && el.Attr("id") == "b1" }); r.Attr("type") != "result" {
		t.Fatalf("bind: %s", r)
	}
	return c
}

// online logs in and sends initial presence.
func online(t *testing.T, e *endpoint, user, res, attrs string) *client {
	t.Helper()
	c := login(t, e, user, res, attrs)
	c.send("", "<presence xmlns='jabber:client'/>")
	c.expect(func(el *xml.Element) bool { return el.Local == "presence" })
	return c
}

// keys returns the key sequence K(1)..K(n) of XEP-0124 §15.3 for seed.
func keys(seed string, n int) []string {
	out := make([]string, n)
	k := seed
	for i := range n {
		k = sha1hex(k)
		out[i] = k
	}
	return out
}

// waitUntil polls cond for up to d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitHeld waits until the session holds n requests (answered none of
// them yet) and has w waiting ahead of a gap in the rids: requests sent in
// the background (endpoint.async) have reached it.
func (c *client) waitHeld(n, w int) {
	c.t.Helper()
	waitUntil(c.t, 5*time.Second, fmt.Sprintf("%d held and %d waiting requests", n, w), func() bool {
		held, waiting, _, ok := c.e.h.Requests(c.sid)
		return ok && held == n && waiting == w
	})
}

func ridOf(r *response) uint64 {
	n, _ := strconv.ParseUint(r.body.Attr("ack"), 10, 64)
	return n
}
