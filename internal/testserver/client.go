package testserver

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Client is a raw XMPP client for tests: it writes whatever text the test
// gives it and reads the server's output as element trees.
type Client struct {
	t      testing.TB
	Conn   net.Conn
	dec    *xml.Decoder
	JID    string
	Header xml.StreamHeader
	// Features holds the last <stream:features/> read by Open.
	Features *xml.Element
	pending  []*xml.Element
	iqSeq    int
}

// Dial opens a TCP connection to addr.
func Dial(t testing.TB, addr string) *Client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &Client{t: t, Conn: nc}
	t.Cleanup(func() { _ = c.Conn.Close() })
	return c
}

// DialTLS opens a direct TLS connection (XEP-0368) to addr.
func DialTLS(t testing.TB, addr, serverName string) *Client {
	t.Helper()
	nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{ServerName: serverName, InsecureSkipVerify: true, NextProtos: []string{"xmpp-client"}})
	if err != nil {
		t.Fatalf("dial tls %s: %v", addr, err)
	}
	c := &Client{t: t, Conn: nc}
	t.Cleanup(func() { _ = c.Conn.Close() })
	return c
}

// Send writes raw text (fmt.Sprintf(format, args...)).
func (c *Client) Send(format string, args ...any) {
	c.t.Helper()
	s := format
	if len(args) > 0 {
		s = fmt.Sprintf(format, args...)
	}
	_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Conn.Write([]byte(s)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// Open sends a stream header to domain and reads the server's header and
// features.
func (c *Client) Open(domain string) {
	c.t.Helper()
	c.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='%s' version='1.0'>", domain)
	c.dec = xml.NewDecoder(c.Conn, xml.DefaultLimits())
	c.dec.SetContentNamespace("jabber:client")
	_ = c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := c.dec.ReadHeader()
	if err != nil {
		c.t.Fatalf("read header: %v", err)
	}
	c.Header = h
	c.Features = c.Expect(func(el *xml.Element) bool { return el.Local == "features" || el.Local == "error" })
	if c.Features.Local == "error" {
		c.t.Fatalf("stream error instead of features: %s", c.Features)
	}
}

// ReadHeaderOnly sends a header and reads the server's header, without
// expecting features (for stream-error tests).
func (c *Client) ReadHeaderOnly(header string) {
	c.t.Helper()
	c.Send("%s", header)
	c.dec = xml.NewDecoder(c.Conn, xml.DefaultLimits())
	c.dec.SetContentNamespace("jabber:client")
	_ = c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := c.dec.ReadHeader()
	if err != nil {
		c.t.Fatalf("read header: %v", err)
	}
	c.Header = h
}

// Next reads the next element (5 s timeout).
func (c *Client) Next() (*xml.Element, error) {
	if len(c.pending) > 0 {
		el := c.pending[0]
		c.pending = c.pending[1:]
		return el, nil
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	return c.dec.Next()
}

// Expect reads elements until match returns true and returns that element.
// Elements that do not match are kept for later Expect calls, so tests can
// wait for events in any order.
func (c *Client) Expect(match func(*xml.Element) bool) *xml.Element {
	c.t.Helper()
	for i, el := range c.pending {
		if match(el) {
			c.pending = append(c.pending[:i:i], c.pending[i+1:]...)
			return el
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		_ = c.Conn.SetReadDeadline(deadline)
		el, err := c.dec.Next()
		if err != nil {
			c.t.Fatalf("expect: %v (pending: %v)", err, c.pendingStrings())
		}
		if match(el) {
			return el
		}
		c.pending = append(c.pending, el)
	}
	c.t.Fatalf("expect: timed out (pending: %v)", c.pendingStrings())
	return nil
}

// Pending returns the elements read but not yet matched by Expect, oldest
// first.
func (c *Client) Pending() []*xml.Element { return append([]*xml.Element(nil), c.pending...) }

// Drain returns what c received and did not consume, after a round trip
// through the server (a ping to the server, whose answer comes after
// everything sent to c before it).
func (c *Client) Drain() []*xml.Element {
	c.t.Helper()
	domain := c.Header.From
	if j, err := jid.Parse(c.JID); err == nil {
		domain = j.Domain()
	}
	var got []*xml.Element
	c.Send("<iq type='get' id='drain' to='%s'><ping xmlns='urn:xmpp:ping'/></iq>", domain)
	c.Expect(func(el *xml.Element) bool {
		if el.Local == "iq" && el.Attr("id") == "drain" {
			return true
		}
		got = append(got, el)
		return false
	})
	return got
}

func (c *Client) pendingStrings() []string {
	var out []string
	for _, el := range c.pending {
		out = append(out, el.String())
	}
	return out
}

// ExpectStanza waits for an element with the given local name whose
// attributes include every "name=value" pair in attrs.
func (c *Client) ExpectStanza(local string, attrs ...string) *xml.Element {
	c.t.Helper()
	return c.Expect(func(el *xml.Element) bool { return Matches(el, local, attrs...) })
}

// Matches reports whether el has the local name and attributes.
func Matches(el *xml.Element, local string, attrs ...string) bool {
	if el.Local != local {
		return false
	}
	for _, a := range attrs {
		k, v, _ := strings.Cut(a, "=")
		if el.Attr(k) != v {
			return false
		}
	}
	return true
}

// ExpectStreamError waits for a stream error with the given condition.
func (c *Client) ExpectStreamError(cond string) {
	c.t.Helper()
	el := c.Expect(func(el *xml.Element) bool {
		return el.Local == "error" && el.Space == "http://etherx.jabber.org/streams"
	})
	if el.Child("urn:ietf:params:xml:ns:xmpp-streams", cond) == nil {
		c.t.Fatalf("stream error %s, want %s", el, cond)
	}
}

// ExpectClosed waits until the server closes the stream or connection.
func (c *Client) ExpectClosed() {
	c.t.Helper()
	for {
		_ = c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err := c.dec.Next()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				c.t.Fatalf("expect closed: server kept the connection open")
			}
			return
		}
	}
}

// StartTLS negotiates STARTTLS and reopens the stream.
func (c *Client) StartTLS(domain string) {
	c.t.Helper()
	c.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	c.ExpectStanza("proceed")
	tc := tls.Client(c.Conn, &tls.Config{ServerName: domain, InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		c.t.Fatalf("tls: %v", err)
	}
	c.Conn = tc
	c.Open(domain)
}

// AuthPlain authenticates with SASL PLAIN and reopens the stream.
func (c *Client) AuthPlain(domain, user, password string) {
	c.t.Helper()
	msg := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", msg)
	el := c.Expect(func(el *xml.Element) bool { return el.Local == "success" || el.Local == "failure" })
	if el.Local != "success" {
		c.t.Fatalf("auth failed: %s", el)
	}
	c.Open(domain)
}

// Bind binds resource (server-generated if empty) and records the JID.
func (c *Client) Bind(resource string) string {
	c.t.Helper()
	if resource == "" {
		c.Send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	} else {
		c.Send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>", resource)
	}
	el := c.ExpectStanza("iq", "id=bind1")
	if el.Attr("type") != "result" {
		c.t.Fatalf("bind failed: %s", el)
	}
	c.JID = el.Child("urn:ietf:params:xml:ns:xmpp-bind", "bind").ChildText("", "jid")
	return c.JID
}

// Authenticated connects with STARTTLS and authenticates with PLAIN, and
// stops before resource binding (for XEP-0198 resumption, which replaces
// it).
func (ts *TS) Authenticated(t testing.TB, user, password string) *Client {
	t.Helper()
	domain := ts.Domain()
	if u, h, ok := strings.Cut(user, "@"); ok {
		user, domain = u, h
	}
	c := Dial(t, ts.StartTLSAddr())
	c.Open(domain)
	c.StartTLS(domain)
	c.AuthPlain(domain, user, password)
	return c
}

// CanLogin reports whether user (a username of the default domain, or
// user@host) authenticates with password over STARTTLS and PLAIN; the
// connection is closed either way.
func (ts *TS) CanLogin(t testing.TB, user, password string) bool {
	t.Helper()
	domain := ts.Domain()
	if u, h, ok := strings.Cut(user, "@"); ok {
		user, domain = u, h
	}
	c := Dial(t, ts.StartTLSAddr())
	defer c.Close()
	c.Open(domain)
	c.StartTLS(domain)
	msg := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", msg)
	return c.Expect(func(el *xml.Element) bool { return el.Local == "success" || el.Local == "failure" }).Local == "success"
}

// Login connects with STARTTLS, authenticates with PLAIN and binds.
func (ts *TS) Login(t testing.TB, user, password, resource string) *Client {
	t.Helper()
	domain := ts.Domain()
	if u, h, ok := strings.Cut(user, "@"); ok {
		user, domain = u, h
	}
	c := Dial(t, ts.StartTLSAddr())
	c.Open(domain)
	c.StartTLS(domain)
	c.AuthPlain(domain, user, password)
	c.Bind(resource)
	return c
}

// Online logs in and sends initial presence, waiting for its reflection.
func (ts *TS) Online(t testing.TB, user, password, resource string) *Client {
	t.Helper()
	c := ts.Login(t, user, password, resource)
	c.Send("<presence/>")
	c.ExpectStanza("presence", "from="+c.JID)
	return c
}

// Close sends the closing stream tag.
func (c *Client) Close() {
	_, _ = c.Conn.Write([]byte("</stream:stream>"))
}

// IQ sends <iq type=typ to=to>payload</iq> with a fresh id and returns the
// reply with that id. An empty to omits the attribute.
func (c *Client) IQ(typ, to, payload string) *xml.Element {
	c.t.Helper()
	c.iqSeq++
	id := fmt.Sprintf("iq%d", c.iqSeq)
	toAttr := ""
	if to != "" {
		toAttr = " to='" + to + "'"
	}
	c.Send("<iq type='%s' id='%s'%s>%s</iq>", typ, id, toAttr, payload)
	return c.ExpectStanza("iq", "id="+id)
}

// ErrorCondition returns the stanza error condition of el, or "" when el is
// not an error.
func ErrorCondition(el *xml.Element) string {
	if el.Attr("type") != "error" {
		return ""
	}
	c, _, _, _ := stanza.ParseError(el)
	return string(c)
}
