package s2s_test

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"parley/internal/s2s"
	"parley/internal/s2s/dialback"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// strictPeer is a receiving server for b.test that behaves like ejabberd
// where other implementations are lenient: it offers SASL EXTERNAL after
// TLS whatever the client certificate is, refuses it for a certificate it
// does not trust, and then ignores dialback on that stream; it records
// the raw bytes it reads so tests can check the wire form. It verifies
// a.test's dialback keys itself (it knows secretA), standing in for the
// round trip to the authoritative server.
type strictPeer struct {
	t      *testing.T
	ln     net.Listener
	cert   tls.Certificate
	events chan string // "conn", "auth", "dialback", "message:<id>", "bad-header", "stream-error:<condition>"

	mu    sync.Mutex
	raw   bytes.Buffer
	conns []net.Conn
}

func newStrictPeer(t *testing.T) *strictPeer {
	t.Helper()
	ln, err := net.Listen("tcp", loopback()+":5269")
	if err != nil {
		t.Fatal(err)
	}
	p := &strictPeer{t: t, ln: ln, cert: selfSigned(t, "b.test"), events: make(chan string, 64)}
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			go p.serve(c)
		}
	}()
	return p
}

// recorder copies what is read into the peer's raw buffer.
type recorder struct {
	io.Reader
	p *strictPeer
}

func (r recorder) Read(b []byte) (int, error) {
	n, err := r.Reader.Read(b)
	r.p.mu.Lock()
	r.p.raw.Write(b[:n])
	r.p.mu.Unlock()
	return n, err
}

func (p *strictPeer) rawText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.raw.String()
}

func (p *strictPeer) serve(nc net.Conn) {
	p.events <- "conn"
	var conn net.Conn = nc
	open := func(id, features string) *xml.Decoder {
		d := xml.NewDecoder(recorder{conn, p}, xml.DefaultLimits())
		d.SetContentNamespace("jabber:server")
		if _, err := d.ReadHeader(); err != nil {
			p.events <- "bad-header"
			return nil
		}
		fmt.Fprintf(conn, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "+
			"xmlns:stream='http://etherx.jabber.org/streams' id='%s' from='b.test' to='a.test' version='1.0'>"+
			"<stream:features>%s</stream:features>", id, features)
		return d
	}
	d := open("id-plain", "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>")
	if d == nil {
		return
	}
	if el, err := d.Next(); err != nil || el.Local != "starttls" {
		return
	}
	fmt.Fprint(conn, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{p.cert}, ClientAuth: tls.RequestClientCert})
	if tc.Handshake() != nil {
		return
	}
	conn = tc
	id := fmt.Sprintf("id-%p", tc)
	d = open(id, "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>"+
		"<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>")
	if d == nil {
		return
	}
	deaf := false
	for {
		el, err := d.Next()
		if err != nil {
			return
		}
		switch {
		case el.Local == "auth":
			p.events <- "auth"
			fmt.Fprint(conn, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>")
			deaf = true
		case el.Space == dialback.NS && el.Local == "result" && !deaf:
			key := dialback.NewKeys([]byte(secretA)).Key("b.test", "a.test", id)
			if strings.TrimSpace(el.Text()) != key || el.Attr("from") != "a.test" || el.Attr("to") != "b.test" {
				fmt.Fprint(conn, "<db:result from='b.test' to='a.test' type='invalid'/>")
				continue
			}
			p.events <- "dialback"
			fmt.Fprint(conn, "<db:result from='b.test' to='a.test' type='valid'/>")
		case el.Local == "message":
			p.events <- "message:" + el.Attr("id")
		case el.Space == "http://etherx.jabber.org/streams" && el.Local == "error":
			p.events <- "stream-error:" + streamCondition(el)
			return
		}
	}
}

// expectEvents reads the peer's events in order, failing on any event
// listed in never.
func (p *strictPeer) expectEvents(want []string, never ...string) {
	p.t.Helper()
	for _, w := range want {
		for {
			select {
			case ev := <-p.events:
				for _, n := range never {
					if ev == n {
						p.t.Fatalf("unexpected %q while waiting for %q; wire so far:\n%s", ev, w, p.rawText())
					}
				}
				if ev == w {
					goto next
				}
			case <-time.After(5 * time.Second):
				p.t.Fatalf("no %q from Parley; wire so far:\n%s", w, p.rawText())
			}
		}
	next:
	}
}

// startTowards boots a.test with b.test routed to addr.
func startTowards(t *testing.T, addr, host, extra string) *testserver.TS {
	t.Helper()
	return testserver.Start(t, fmt.Sprintf(`admin_socket = "-"
[[host]]
domain = "a.test"
%s
[s2s]
enabled = true
listen = [%q]
connect_timeout = "3s"
dialback_secret = %q
accept_self_signed = true
%s
[s2s.routes]
"b.test" = %q
`, host, loopback()+":5269", secretA, extra, addr))
}

func outMethod(ts *testserver.TS) string {
	for _, c := range ts.S2S().List() {
		if c.Direction == "out" && c.State == "authenticated" {
			return c.Method
		}
	}
	return ""
}

// With our own certificate self-signed, SASL EXTERNAL cannot succeed, so
// Parley goes straight to dialback even though the peer offers EXTERNAL;
// dialback elements use the db: prefix on the wire.
func TestOutgoingSkipsExternalWithUntrustedOwnCertificate(t *testing.T) {
	peer := newStrictPeer(t)
	a := startTowards(t, peer.ln.Addr().String(), "", "")
	a.AddUser(t, "alice@a.test", "alice-password")
	alice := a.Online(t, "alice@a.test", "alice-password", "home")
	alice.Send("<message to='bob@b.test' id='m1'><body>hi</body></message>")
	peer.expectEvents([]string{"conn", "dialback", "message:m1"}, "auth")
	raw := peer.rawText()
	if !strings.Contains(raw, "<db:result from='a.test' to='b.test'>") || strings.Contains(raw, "<result xmlns=") {
		t.Fatalf("dialback request not in the db: form on the wire:\n%s", raw)
	}
	if m := outMethod(a); m != s2s.MethodDialbackTLS {
		t.Fatalf("outgoing method %q, want %s", m, s2s.MethodDialbackTLS)
	}
}

// With a certificate that verifies against our roots Parley tries
// EXTERNAL; when the peer refuses it (it does not trust our CA), dialback
// runs on a new connection, because some peers ignore dialback on a
// stream whose SASL attempt failed.
func TestRefusedExternalFallsBackToDialbackOnANewConnection(t *testing.T) {
	peer := newStrictPeer(t)
	dir := t.TempDir()
	ca := writeCA(t, dir, "a.test")
	host := fmt.Sprintf("cert_file = %q\nkey_file = %q", dir+"/a.test.crt", dir+"/a.test.key")
	a := startTowards(t, peer.ln.Addr().String(), host, fmt.Sprintf("ca_file = %q", ca))
	a.AddUser(t, "alice@a.test", "alice-password")
	alice := a.Online(t, "alice@a.test", "alice-password", "home")
	alice.Send("<message to='bob@b.test' id='m2'><body>hi</body></message>")
	peer.expectEvents([]string{"conn", "auth", "conn", "dialback", "message:m2"})
	select {
	case ev := <-peer.events:
		t.Fatalf("unexpected %q after delivery", ev)
	default:
	}
	if m := outMethod(a); m != s2s.MethodDialbackTLS {
		t.Fatalf("outgoing method %q, want %s", m, s2s.MethodDialbackTLS)
	}
}

// When dialback is off, a refused EXTERNAL is final: stanzas bounce.
func TestRefusedExternalWithoutDialbackBounces(t *testing.T) {
	peer := newStrictPeer(t)
	dir := t.TempDir()
	ca := writeCA(t, dir, "a.test")
	host := fmt.Sprintf("cert_file = %q\nkey_file = %q", dir+"/a.test.crt", dir+"/a.test.key")
	a := startTowards(t, peer.ln.Addr().String(), host, fmt.Sprintf("ca_file = %q\ndialback = false", ca))
	a.AddUser(t, "alice@a.test", "alice-password")
	alice := a.Online(t, "alice@a.test", "alice-password", "home")
	alice.Send("<message to='bob@b.test' id='m3'><body>hi</body></message>")
	expectBounce(t, alice, "m3", "remote-server-not-found")
	if n := testutilCounter(t, a, "external-refused"); n != 1 {
		t.Fatalf("failures{reason=external-refused} = %v, want 1", n)
	}
	peer.expectEvents([]string{"conn", "auth"}, "dialback", "message:m3")
}

// Parley's own stream features and errors use the stream: prefix on the
// wire (ejabberd waits forever for <features xmlns=...>).
func TestStreamElementsUseThePrefix(t *testing.T) {
	a := startTowards(t, "127.0.0.1:1", "", "")
	nc, err := net.DialTimeout("tcp", a.S2S().Addrs()[0].String(), 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	fmt.Fprint(nc, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "+
		"xmlns:stream='http://etherx.jabber.org/streams' from='b.test' to='a.test' version='1.0'>")
	read := func(until string) string {
		var buf bytes.Buffer
		b := make([]byte, 4096)
		_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		for !strings.Contains(buf.String(), until) {
			n, err := nc.Read(b)
			buf.Write(b[:n])
			if err != nil {
				t.Fatalf("reading for %q: %v; got %s", until, err, buf.String())
			}
		}
		return buf.String()
	}
	if got := read("features>"); !strings.Contains(got, "<stream:features>") {
		t.Fatalf("features not prefixed: %s", got)
	}
	fmt.Fprint(nc, "<message from='x@b.test' to='y@a.test'/>")
	if got := read("</stream:stream>"); !strings.Contains(got, "<stream:error><not-authorized") {
		t.Fatalf("stream error not prefixed: %s", got)
	}
}

// testutilCounter reads parley_s2s_failures_total{direction="out",reason}.
func testutilCounter(t *testing.T, ts *testserver.TS, reason string) float64 {
	t.Helper()
	mfs, err := ts.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "parley_s2s_failures_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["direction"] == "out" && labels["reason"] == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// streamCondition is the defined condition of a stream error element.
func streamCondition(el *xml.Element) string {
	for _, c := range el.Elements() {
		if c.Space == "urn:ietf:params:xml:ns:xmpp-streams" && c.Local != "text" {
			return c.Local
		}
	}
	return ""
}

// When our policy refuses the peer's certificate right after the TLS
// handshake, the stream error goes out inside a stream: the peer reads our
// header for the new TLS stream first and then the reason, where a bare
// <stream:error> left it reporting not-well-formed XML.
func TestOutgoingRefusedCertificateOpensTheStream(t *testing.T) {
	peer := newStrictPeer(t)
	a := startTowards(t, peer.ln.Addr().String(), "[host.s2s]\naccept_self_signed = false", "")
	a.AddUser(t, "alice@a.test", "alice-password")
	alice := a.Online(t, "alice@a.test", "alice-password", "home")
	alice.Send("<message to='bob@b.test' id='m4'><body>hi</body></message>")
	expectBounce(t, alice, "m4", "remote-server-not-found")
	peer.expectEvents([]string{"conn", "stream-error:policy-violation"}, "bad-header", "message:m4")
}
