package s2s_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
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
// where other implementations are lenient. By default it offers SASL
// EXTERNAL after TLS whatever the client certificate is, refuses it, and
// then ignores dialback on that stream; it verifies a.test's dialback keys
// itself (it knows secretA), standing in for the round trip to the
// authoritative server. With trust set (newExternalOnlyPeer) it is the
// other kind of strict: it accepts SASL EXTERNAL for a certificate that
// chains to trust and names the stream's 'from', never offers dialback,
// and takes stanzas only from the domain authenticated on their stream.
// It records the raw bytes it reads so tests can check the wire form.
type strictPeer struct {
	t     *testing.T
	ln    net.Listener
	cert  tls.Certificate
	trust *x509.CertPool
	// events: "conn", "auth", "external:<domain>", "dialback:<domain>",
	// "dialback-attempt", "message:<id>", "unauthenticated:<id>",
	// "bad-header", "stream-error:<condition>".
	events chan string

	mu  sync.Mutex
	raw bytes.Buffer
}

// acceptAll serves every connection ln accepts with serve until the test
// ends, then closes the listener and the connections.
func acceptAll(t *testing.T, ln net.Listener, serve func(net.Conn)) {
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			go serve(c)
		}
	}()
}

// newStrictPeer starts the default strict peer: EXTERNAL always refused,
// dialback accepted unless EXTERNAL was tried first.
func newStrictPeer(t *testing.T) *strictPeer { return startStrictPeer(t, nil) }

// newExternalOnlyPeer starts a strict peer that allows only SASL EXTERNAL,
// for certificates issued by trust.
func newExternalOnlyPeer(t *testing.T, trust *x509.CertPool) *strictPeer {
	return startStrictPeer(t, trust)
}

func startStrictPeer(t *testing.T, trust *x509.CertPool) *strictPeer {
	t.Helper()
	ln, err := net.Listen("tcp", loopback()+":5269")
	if err != nil {
		t.Fatal(err)
	}
	p := &strictPeer{t: t, ln: ln, cert: selfSigned(t, "b.test"), trust: trust, events: make(chan string, 64)}
	acceptAll(t, ln, p.serve)
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

// peerStream is one connection Parley opened to the strict peer.
type peerStream struct {
	p      *strictPeer
	conn   net.Conn
	id     string // of our latest header
	from   string // of Parley's latest header
	authed string // the domain SASL EXTERNAL authenticated
	deaf   bool   // EXTERNAL failed: dialback is ignored (ejabberd)
}

// open reads Parley's header and answers with ours and the features.
func (s *peerStream) open(id, features string) *xml.Decoder {
	d := xml.NewDecoder(recorder{s.conn, s.p}, xml.DefaultLimits())
	d.SetContentNamespace("jabber:server")
	h, err := d.ReadHeader()
	if err != nil {
		s.p.events <- "bad-header"
		return nil
	}
	s.id, s.from = id, h.From
	db := " xmlns:db='jabber:server:dialback'"
	if s.p.trust != nil {
		db = ""
	}
	fmt.Fprintf(s.conn, "<?xml version='1.0'?><stream:stream xmlns='jabber:server'%s "+
		"xmlns:stream='http://etherx.jabber.org/streams' id='%s' from='b.test' to='%s' version='1.0'>"+
		"<stream:features>%s</stream:features>", db, id, h.From, features)
	return d
}

// features after TLS: EXTERNAL always; dialback unless EXTERNAL-only.
func (p *strictPeer) features() string {
	f := "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>EXTERNAL</mechanism></mechanisms>"
	if p.trust == nil {
		f += "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
	}
	return f
}

func (p *strictPeer) serve(nc net.Conn) {
	p.events <- "conn"
	s := &peerStream{p: p, conn: nc}
	d := s.open("id-plain", "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>")
	if d == nil {
		return
	}
	if el, err := d.Next(); err != nil || el.Local != "starttls" {
		return
	}
	fmt.Fprint(nc, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{p.cert}, ClientAuth: tls.RequestClientCert})
	if tc.Handshake() != nil {
		return
	}
	s.conn = tc
	if d = s.open(fmt.Sprintf("id-%p", tc), p.features()); d == nil {
		return
	}
	for {
		el, err := d.Next()
		if err != nil {
			return
		}
		if d = s.handle(d, el, tc); d == nil {
			return
		}
	}
}

// handle answers one element; it returns the decoder to go on with (a new
// one after a stream restart), nil to end.
func (s *peerStream) handle(d *xml.Decoder, el *xml.Element, tc *tls.Conn) *xml.Decoder {
	p := s.p
	switch {
	case el.Local == "auth":
		p.events <- "auth"
		if !p.externalValid(s, el, tc) {
			fmt.Fprint(s.conn, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/></failure>")
			s.deaf = true
			return d
		}
		s.authed = s.from
		p.events <- "external:" + s.authed
		fmt.Fprint(s.conn, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
		return s.open(s.id+"-sasl", "")
	case el.Space == dialback.NS && el.Local == "result":
		s.dialback(el)
	case el.Local == "message":
		if p.trust != nil && jidDomain(el.Attr("from")) != s.authed {
			p.events <- "unauthenticated:" + el.Attr("id")
			return d
		}
		p.events <- "message:" + el.Attr("id")
	case el.Space == "http://etherx.jabber.org/streams" && el.Local == "error":
		p.events <- "stream-error:" + streamCondition(el)
		return nil
	}
	return d
}

// dialback answers a db:result: refused when EXTERNAL-only, ignored after
// a failed EXTERNAL, else checked against secretA (any domain of a.test).
func (s *peerStream) dialback(el *xml.Element) {
	from := el.Attr("from")
	switch {
	case s.p.trust != nil:
		s.p.events <- "dialback-attempt"
		fmt.Fprintf(s.conn, "<result xmlns='jabber:server:dialback' from='b.test' to='%s' type='error'>"+
			"<error type='cancel'><policy-violation xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></result>", from)
	case s.deaf:
	case strings.TrimSpace(el.Text()) != dialback.NewKeys([]byte(secretA)).Key("b.test", from, s.id) || el.Attr("to") != "b.test":
		fmt.Fprintf(s.conn, "<db:result from='b.test' to='%s' type='invalid'/>", from)
	default:
		s.p.events <- "dialback:" + from
		fmt.Fprintf(s.conn, "<db:result from='b.test' to='%s' type='valid'/>", from)
	}
}

// externalValid is XEP-0178 on the receiving side: the authorization
// identity (or the header's 'from') must be the stream's 'from', and the
// client certificate must chain to trust and name it.
func (p *strictPeer) externalValid(s *peerStream, el *xml.Element, tc *tls.Conn) bool {
	if p.trust == nil || el.Attr("mechanism") != "EXTERNAL" {
		return false
	}
	authz := s.from
	if t := strings.TrimSpace(el.Text()); t != "" && t != "=" {
		b, err := base64.StdEncoding.DecodeString(t)
		if err != nil {
			return false
		}
		authz = string(b)
	}
	certs := tc.ConnectionState().PeerCertificates
	if authz != s.from || len(certs) == 0 {
		return false
	}
	_, err := certs[0].Verify(x509.VerifyOptions{Roots: p.trust, DNSName: authz, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// jidDomain is the domain part of a JID string.
func jidDomain(j string) string {
	if i := strings.IndexByte(j, '@'); i >= 0 {
		j = j[i+1:]
	}
	d, _, _ := strings.Cut(j, "/")
	return d
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
	peer.expectEvents([]string{"conn", "dialback:a.test", "message:m1"}, "auth")
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
	peer.expectEvents([]string{"conn", "auth", "conn", "dialback:a.test", "message:m2"})
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
	peer.expectEvents([]string{"conn", "auth"}, "dialback:a.test", "message:m3")
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

// caPool loads a CA file written by writeCA.
func caPool(t *testing.T, caFile string) *x509.CertPool {
	t.Helper()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatal("no CA certificate in " + caFile)
	}
	return pool
}

// Against a peer that allows only SASL EXTERNAL, each local domain whose
// certificate verifies authenticates on its own stream with from= that
// domain (EXTERNAL vouches for one domain per stream): a stanza from the
// MUC domain gets through, where before the domain was put on a.test's
// stream for dialback, which this peer does not speak, and bounced.
func TestSecondLocalDomainUsesExternalOnItsOwnStream(t *testing.T) {
	dir := t.TempDir()
	ca := writeCA(t, dir, "a.test,conference.a.test")
	peer := newExternalOnlyPeer(t, caPool(t, ca))
	host := fmt.Sprintf("cert_file = %q\nkey_file = %q", dir+"/a.test.crt", dir+"/a.test.key")
	a := startTowards(t, peer.ln.Addr().String(), host, fmt.Sprintf("ca_file = %q", ca))
	a.AddUser(t, "alice@a.test", "alice-password")
	alice := a.Online(t, "alice@a.test", "alice-password", "home")
	alice.Send("<message to='bob@b.test' id='m6'><body>hi</body></message>")
	peer.expectEvents([]string{"conn", "auth", "external:a.test", "message:m6"}, "unauthenticated:m6")
	a.Router().Route(context.Background(), roomMessage("bob@b.test", "c2"))
	peer.expectEvents([]string{"conn", "auth", "external:conference.a.test", "message:c2"},
		"unauthenticated:c2", "dialback-attempt")
	for _, c := range a.S2S().List() {
		if c.Direction == "out" && (c.State != "authenticated" || c.Method != s2s.MethodExternal) {
			t.Fatalf("outgoing pair %+v, want every pair authenticated with EXTERNAL", c)
		}
	}
}

// Where EXTERNAL is not possible (our certificate is self-signed) and
// dialback is allowed, the MUC domain still joins a.test's stream for
// dialback rather than opening one of its own.
func TestSecondLocalDomainPiggybacksDialback(t *testing.T) {
	peer := newStrictPeer(t)
	a := startTowards(t, peer.ln.Addr().String(), "", "")
	a.AddUser(t, "alice@a.test", "alice-password")
	alice := a.Online(t, "alice@a.test", "alice-password", "home")
	alice.Send("<message to='bob@b.test' id='m7'><body>hi</body></message>")
	peer.expectEvents([]string{"conn", "dialback:a.test", "message:m7"}, "auth")
	a.Router().Route(context.Background(), roomMessage("bob@b.test", "c3"))
	peer.expectEvents([]string{"dialback:conference.a.test", "message:c3"}, "conn", "auth")
}
