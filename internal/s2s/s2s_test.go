package s2s_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"parley/internal/s2s"
	"parley/internal/s2s/dialback"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// loopback returns a random 127.x.y.z address, so every server in a test
// gets its own address on the standard port and static routes stay simple.
func loopback() string {
	return fmt.Sprintf("127.%d.%d.%d", 1+mrand.IntN(250), mrand.IntN(256), 1+mrand.IntN(250))
}

type peerCfg struct {
	domain string
	addr   string
	extra  string // more [s2s] keys
	host   string // more [[host]] keys
}

const secretA = "0123456789abcdef-secret-of-a"

// federation boots a.test and b.test routed to each other.
func federation(t *testing.T, a, b peerCfg) (*testserver.TS, *testserver.TS) {
	t.Helper()
	a.domain, b.domain = "a.test", "b.test"
	a.addr, b.addr = loopback()+":5269", loopback()+":5269"
	start := func(me, other peerCfg, secret string) *testserver.TS {
		return testserver.Start(t, fmt.Sprintf(`admin_socket = "-"
[[host]]
domain = %q
%s
[s2s]
enabled = true
listen = [%q]
connect_timeout = "3s"
dialback_secret = %q
%s
[s2s.routes]
%q = %q
"nowhere.test" = "127.0.0.1:1"
`, me.domain, me.host, me.addr, secret, me.extra, other.domain, other.addr))
	}
	return start(a, b, secretA), start(b, a, "")
}

func users(t *testing.T, a, b *testserver.TS) (*testserver.Client, *testserver.Client) {
	t.Helper()
	a.AddUser(t, "alice@a.test", "alice-password")
	b.AddUser(t, "bob@b.test", "bob-password")
	return a.Online(t, "alice@a.test", "alice-password", "home"), b.Online(t, "bob@b.test", "bob-password", "work")
}

func methods(ts *testserver.TS) map[string]string {
	out := map[string]string{}
	for _, c := range ts.S2S().List() {
		if c.State == "authenticated" {
			out[c.Direction] = c.Method
		}
	}
	return out
}

func exchange(t *testing.T, alice, bob *testserver.Client) {
	t.Helper()
	alice.Send("<message to='bob@b.test' type='chat' id='m1'><body>hi bob</body></message>")
	if got := bob.ExpectStanza("message", "id=m1"); got.Attr("from") != alice.JID || got.ChildText("", "body") != "hi bob" {
		t.Fatalf("bob got %s", got)
	}
	bob.Send("<message to='%s' type='chat' id='m2'><body>hi alice</body></message>", alice.JID)
	if got := alice.ExpectStanza("message", "id=m2"); got.Attr("from") != bob.JID {
		t.Fatalf("alice got %s", got)
	}
}

func TestDialbackOverTLSWithSelfSignedCerts(t *testing.T) {
	a, b := federation(t, peerCfg{extra: "accept_self_signed = true"}, peerCfg{extra: "accept_self_signed = true"})
	alice, bob := users(t, a, b)
	exchange(t, alice, bob)
	for _, ts := range []*testserver.TS{a, b} {
		m := methods(ts)
		if m["in"] != s2s.MethodDialbackTLS || m["out"] != s2s.MethodDialbackTLS {
			t.Fatalf("%s: methods %v, want dialback-tls both ways; list %+v", ts.Domain(), m, ts.S2S().List())
		}
	}
	for _, c := range a.S2S().List() {
		if c.Certificate != s2s.VerdictSelfSigned || !strings.HasPrefix(c.TLS, "TLS 1.") {
			t.Fatalf("list entry %+v: want a self-signed TLS connection", c)
		}
	}
}

// writeCA creates a CA and certificates for the domains, signed by it. An
// entry "a.test,conference.a.test" is one certificate naming all of them,
// stored as a.test.crt/a.test.key.
func writeCA(t *testing.T, dir string, domains ...string) (caFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Parley test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	caFile = filepath.Join(dir, "ca.crt")
	_ = os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	for i, names := range domains {
		dns := strings.Split(names, ",")
		d := dns[0]
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: d}, DNSNames: dns,
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(key)
		_ = os.WriteFile(filepath.Join(dir, d+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
		_ = os.WriteFile(filepath.Join(dir, d+".key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	}
	return caFile
}

func caPeers(t *testing.T, extraA, extraB string) (peerCfg, peerCfg) {
	dir := t.TempDir()
	// The certificates name the MUC domains too, so those can use EXTERNAL.
	ca := writeCA(t, dir, "a.test,conference.a.test", "b.test,conference.b.test")
	host := func(d string) string {
		return fmt.Sprintf("cert_file = %q\nkey_file = %q", filepath.Join(dir, d+".crt"), filepath.Join(dir, d+".key"))
	}
	return peerCfg{host: host("a.test"), extra: fmt.Sprintf("ca_file = %q\n%s", ca, extraA)},
		peerCfg{host: host("b.test"), extra: fmt.Sprintf("ca_file = %q\n%s", ca, extraB)}
}

func TestSASLExternalWithTrustedCerts(t *testing.T) {
	pa, pb := caPeers(t, "", "")
	a, b := federation(t, pa, pb)
	alice, bob := users(t, a, b)
	exchange(t, alice, bob)
	for _, ts := range []*testserver.TS{a, b} {
		m := methods(ts)
		if m["in"] != s2s.MethodExternal || m["out"] != s2s.MethodExternal {
			t.Fatalf("%s: methods %v, want sasl-external both ways", ts.Domain(), m)
		}
	}
	for _, c := range a.S2S().List() {
		if c.Certificate != s2s.VerdictValid {
			t.Fatalf("list entry %+v: want a valid certificate", c)
		}
	}
}

func TestExternalWithoutDialbackStillWorks(t *testing.T) {
	pa, pb := caPeers(t, "dialback = false", "dialback = false")
	a, b := federation(t, pa, pb)
	alice, bob := users(t, a, b)
	exchange(t, alice, bob)
}

// With EXTERNAL the only method on both sides (dialback off), the MUC
// domain federates too: its certificate names it, so it authenticates with
// SASL EXTERNAL on an outgoing stream of its own (from=conference.a.test),
// which b.test accepts like any other. Before, it was put on a.test's
// stream for dialback and its stanzas bounced (dialback-disabled).
func TestExternalOnlyForASecondLocalDomain(t *testing.T) {
	pa, pb := caPeers(t, "dialback = false", "dialback = false")
	a, b := federation(t, pa, pb)
	alice, bob := users(t, a, b)
	// a.test's stream to b.test exists first: the MUC domain must not join it.
	alice.Send("<message to='bob@b.test' id='m1'><body>hi</body></message>")
	bob.ExpectStanza("message", "id=m1")
	a.Router().Route(context.Background(), roomMessage(bob.JID, "c1"))
	if got := bob.ExpectStanza("message", "id=c1"); got.Attr("from") != "room@conference.a.test" {
		t.Fatalf("bob got %s", got)
	}
	found := false
	for _, c := range b.S2S().List() {
		if c.Direction == "in" && c.Remote == "conference.a.test" {
			found = c.Method == s2s.MethodExternal && c.State == "authenticated"
		}
	}
	if !found {
		t.Fatalf("b.test has no EXTERNAL pair from conference.a.test: %+v", b.S2S().List())
	}
}

// roomMessage is a message from the MUC service of a.test, as the room
// would route it (e.g. a mediated invitation).
func roomMessage(to, id string) *xml.Element {
	return xml.New("", "message").SetAttr("from", "room@conference.a.test").SetAttr("to", to).SetAttr("id", id).
		Append(xml.New("", "body").AppendText("from the room"))
}

// expectBounce waits for an error reply with the condition.
func expectBounce(t *testing.T, c *testserver.Client, id, cond string) {
	t.Helper()
	el := c.ExpectStanza("message", "id="+id, "type=error")
	if el.Child("", "error").Child("urn:ietf:params:xml:ns:xmpp-stanzas", cond) == nil {
		t.Fatalf("bounce %s, want %s", el, cond)
	}
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name   string
		a, b   string // [s2s] keys
		caMode bool
	}{
		{name: "self-signed not accepted", a: "", b: "accept_self_signed = true"},
		{name: "domain not approved", a: "accept_self_signed = true\nallowed_domains = [\"c.test\"]", b: "accept_self_signed = true"},
		{name: "domain blocked", a: "accept_self_signed = true\nblocked_domains = [\"b.test\"]", b: "accept_self_signed = true"},
		{name: "no method: dialback off, untrusted certs", a: "accept_self_signed = true\ndialback = false", b: "accept_self_signed = true"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := federation(t, peerCfg{extra: tc.a}, peerCfg{extra: tc.b})
			alice, bob := users(t, a, b)
			alice.Send("<message to='bob@b.test' id='x1'><body>1</body></message>")
			expectBounce(t, alice, "x1", "remote-server-not-found")
			bob.Send("<message to='alice@a.test' id='x2'><body>2</body></message>")
			expectBounce(t, bob, "x2", "remote-server-not-found")
			if m := methods(a); len(m) != 0 {
				t.Fatalf("a authenticated %v", m)
			}
		})
	}
}

func TestUnreachableBouncesAndQueueBound(t *testing.T) {
	a, _ := federation(t, peerCfg{extra: "accept_self_signed = true"}, peerCfg{})
	a.AddUser(t, "alice@a.test", "alice-password")
	alice := a.Online(t, "alice@a.test", "alice-password", "home")
	alice.Send("<message to='x@nowhere.test' id='n1'><body>1</body></message>")
	expectBounce(t, alice, "n1", "remote-server-not-found")
}

func TestTimeoutBouncesRemoteServerTimeout(t *testing.T) {
	silent := silentListener(t)
	ts := testserver.Start(t, fmt.Sprintf(`admin_socket = "-"
[[host]]
domain = "a.test"
[s2s]
enabled = true
listen = ["%s:5269"]
connect_timeout = "500ms"
[s2s.routes]
"silent.test" = %q
`, loopback(), silent))
	ts.AddUser(t, "alice@a.test", "alice-password")
	alice := ts.Online(t, "alice@a.test", "alice-password", "home")
	alice.Send("<message to='x@silent.test' id='t1'><body>1</body></message>")
	expectBounce(t, alice, "t1", "remote-server-timeout")
}

// rawPeer is a hand-driven server-to-server stream for attack tests.
type rawPeer struct {
	t   *testing.T
	nc  net.Conn
	dec *xml.Decoder
	id  string
	f   *xml.Element
}

func dialRaw(t *testing.T, addr, from, to string, useTLS bool) *rawPeer {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	p := &rawPeer{t: t, nc: nc}
	p.open(from, to)
	if useTLS {
		p.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
		p.expect("proceed")
		tc := tls.Client(p.nc, &tls.Config{InsecureSkipVerify: true, ServerName: to})
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		p.nc = tc
		p.open(from, to)
	}
	return p
}

func (p *rawPeer) open(from, to string) {
	p.send("<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' from='%s' to='%s' version='1.0'>", from, to)
	p.dec = xml.NewDecoder(p.nc, xml.DefaultLimits())
	p.dec.SetContentNamespace("jabber:server")
	_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	h, err := p.dec.ReadHeader()
	if err != nil {
		p.t.Fatal(err)
	}
	p.id = h.ID
	p.f = p.expect("features")
}

func (p *rawPeer) send(format string, args ...any) {
	_, _ = fmt.Fprintf(p.nc, format, args...)
}

func (p *rawPeer) expect(local string) *xml.Element {
	p.t.Helper()
	for {
		_ = p.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		el, err := p.dec.Next()
		if err != nil {
			p.t.Fatalf("waiting for %s: %v", local, err)
		}
		if el.Local == local {
			return el
		}
		if el.Local == "error" && local != "error" {
			p.t.Fatalf("waiting for %s: got %s", local, el)
		}
	}
}

func (p *rawPeer) expectStreamError(cond string) {
	p.t.Helper()
	el := p.expect("error")
	if el.Child("urn:ietf:params:xml:ns:xmpp-streams", cond) == nil {
		p.t.Fatalf("stream error %s, want %s", el, cond)
	}
}

// verifiedAsA opens a stream to b claiming a.test, authenticated by
// dialback with a key made from a's configured secret (b checks it with a).
func verifiedAsA(t *testing.T, bAddr string, useTLS bool) *rawPeer {
	p := dialRaw(t, bAddr, "a.test", "b.test", useTLS)
	key := dialback.NewKeys([]byte(secretA)).Key("b.test", "a.test", p.id)
	p.send("<db:result from='a.test' to='b.test'>%s</db:result>", key)
	if r := p.expect("result"); r.Attr("type") != "valid" {
		t.Fatalf("dialback: %s", r)
	}
	return p
}

func TestStreamAttacks(t *testing.T) {
	a, b := federation(t, peerCfg{extra: "accept_self_signed = true"}, peerCfg{extra: "accept_self_signed = true"})
	b.AddUser(t, "bob@b.test", "bob-password")
	bob := b.Online(t, "bob@b.test", "bob-password", "work")
	bAddr := b.S2S().Addrs()[0].String()
	aAddr := a.S2S().Addrs()[0].String()

	t.Run("stanza before verification", func(t *testing.T) {
		p := dialRaw(t, bAddr, "a.test", "b.test", true)
		p.send("<message from='alice@a.test' to='bob@b.test'><body>early</body></message>")
		p.expectStreamError("not-authorized")
	})
	t.Run("unsolicited db:result answer is ignored", func(t *testing.T) {
		p := dialRaw(t, bAddr, "a.test", "b.test", true)
		p.send("<db:result from='a.test' to='b.test' type='valid'/>")
		p.send("<message from='alice@a.test' to='bob@b.test'><body>sneaky</body></message>")
		p.expectStreamError("not-authorized")
	})
	t.Run("wrong dialback key", func(t *testing.T) {
		p := dialRaw(t, bAddr, "a.test", "b.test", true)
		p.send("<db:result from='a.test' to='b.test'>%s</db:result>", strings.Repeat("ab", 32))
		if r := p.expect("result"); r.Attr("type") != "invalid" {
			t.Fatalf("got %s", r)
		}
		p.send("<message from='alice@a.test' to='bob@b.test'><body>x</body></message>")
		p.expectStreamError("not-authorized")
	})
	t.Run("db:verify with a wrong key", func(t *testing.T) {
		p := dialRaw(t, aAddr, "b.test", "a.test", true)
		p.send("<db:verify from='b.test' to='a.test' id='abc'>%s</db:verify>", strings.Repeat("00", 32))
		if r := p.expect("verify"); r.Attr("type") != "invalid" || r.Attr("id") != "abc" {
			t.Fatalf("got %s", r)
		}
		good := dialback.NewKeys([]byte(secretA)).Key("b.test", "a.test", "abc")
		p.send("<db:verify from='b.test' to='a.test' id='abc'>%s</db:verify>", good)
		if r := p.expect("verify"); r.Attr("type") != "valid" {
			t.Fatalf("got %s", r)
		}
		p.send("<db:verify from='b.test' to='elsewhere.test' id='abc'>%s</db:verify>", good)
		if r := p.expect("verify"); r.Attr("type") != "error" {
			t.Fatalf("got %s", r)
		}
	})
	t.Run("verified stream delivers", func(t *testing.T) {
		p := verifiedAsA(t, bAddr, true)
		p.send("<message from='alice@a.test/x' to='bob@b.test' id='ok1'><body>hello</body></message>")
		bob.ExpectStanza("message", "id=ok1", "from=alice@a.test/x")
	})
	t.Run("spoofed from", func(t *testing.T) {
		p := verifiedAsA(t, bAddr, true)
		p.send("<message from='mallory@evil.test' to='bob@b.test'><body>x</body></message>")
		p.expectStreamError("invalid-from")
	})
	t.Run("to a domain not served", func(t *testing.T) {
		p := verifiedAsA(t, bAddr, true)
		p.send("<message from='alice@a.test' to='x@other.test'><body>x</body></message>")
		p.expectStreamError("host-unknown")
	})
	t.Run("plaintext refused when encryption required", func(t *testing.T) {
		p := dialRaw(t, bAddr, "a.test", "b.test", false)
		if st := p.f.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls"); st == nil || st.Child("urn:ietf:params:xml:ns:xmpp-tls", "required") == nil {
			t.Fatalf("features %s: want required STARTTLS", p.f)
		}
		key := dialback.NewKeys([]byte(secretA)).Key("b.test", "a.test", p.id)
		p.send("<db:result from='a.test' to='b.test'>%s</db:result>", key)
		if r := p.expect("result"); r.Attr("type") != "error" {
			t.Fatalf("got %s", r)
		}
	})
	t.Run("SASL EXTERNAL retried without end", func(t *testing.T) {
		p := dialRaw(t, bAddr, "a.test", "b.test", true)
		for range 20 {
			p.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
		}
		p.expectStreamError("policy-violation") // after limits.max_auth_failures
	})
	t.Run("wrong content namespace", func(t *testing.T) {
		nc, err := net.Dial("tcp", bAddr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		fmt.Fprint(nc, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='b.test' version='1.0'>")
		p := &rawPeer{t: t, nc: nc, dec: xml.NewDecoder(nc, xml.DefaultLimits())}
		if _, err := p.dec.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		p.expectStreamError("invalid-namespace")
	})
}

func TestPlainDialbackWhenEncryptionNotRequired(t *testing.T) {
	_, b := federation(t, peerCfg{extra: "accept_self_signed = true"}, peerCfg{extra: "accept_self_signed = true\nrequire_encryption = false"})
	b.AddUser(t, "bob@b.test", "bob-password")
	bob := b.Online(t, "bob@b.test", "bob-password", "work")
	p := verifiedAsA(t, b.S2S().Addrs()[0].String(), false)
	p.send("<message from='alice@a.test/x' to='bob@b.test' id='p1'><body>plain</body></message>")
	bob.ExpectStanza("message", "id=p1")
	found := false
	for _, c := range b.S2S().List() {
		if c.Direction == "in" && c.Method == s2s.MethodDialback && c.TLS == "none" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no plain dialback stream in %+v", b.S2S().List())
	}
}

// silentListener accepts connections and never says a word, so that a
// dialback verification routed to it stays pending until connect_timeout.
func silentListener(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
		}
	}()
	return ln.Addr().String()
}

// dialbackError reads the answer to a db:result and returns its error
// condition ("" when it is not an error).
func dialbackError(p *rawPeer, from string) string {
	p.t.Helper()
	for {
		r := p.expect("result")
		if r.Attr("from") != "b.test" || r.Attr("to") != from {
			continue
		}
		if r.Attr("type") != "error" {
			return ""
		}
		for _, e := range r.Elements() {
			if e.Local == "error" {
				if c := e.FirstElement(); c != nil {
					return c.Local
				}
			}
		}
		return "?"
	}
}

// Every dialback claim costs the server a stream to the claimed domain's
// authoritative server, so claims are bounded: per stream at once
// (max_dialback_pending: resource-constraint) and over its life
// (max_dialback_domains: the stream ends), across the server
// (max_verifications), and a claim to be the server itself is refused
// without asking itself. An attack test found one stream could make the
// server open thousands of connections.
func TestDialbackClaimsBounded(t *testing.T) {
	silent := silentListener(t)
	routes := ""
	for i := 1; i <= 6; i++ {
		routes += fmt.Sprintf("\"d%d.test\" = %q\n", i, silent)
	}
	start := func(t *testing.T, limits string) string {
		ts := testserver.Start(t, fmt.Sprintf(`admin_socket = "-"
[[host]]
domain = "b.test"
[s2s]
enabled = true
listen = ["%s:0"]
connect_timeout = "700ms"
%s
[s2s.routes]
%s`, loopback(), limits, routes))
		return ts.S2S().Addrs()[0].String()
	}
	claim := func(p *rawPeer, from string) {
		p.send("<db:result from='%s' to='b.test'>%s</db:result>", from, strings.Repeat("ab", 32))
	}
	t.Run("per stream", func(t *testing.T) {
		addr := start(t, "max_dialback_pending = 2\nmax_dialback_domains = 3")
		p := dialRaw(t, addr, "d1.test", "b.test", true)
		claim(p, "d1.test")
		claim(p, "d2.test")
		claim(p, "d3.test") // two pending already
		if c := dialbackError(p, "d3.test"); c != "resource-constraint" {
			t.Fatalf("third claim while two are pending: %q, want resource-constraint", c)
		}
		// The two pending ones time out against the silent server, in
		// either order.
		got := map[string]string{}
		for range 2 {
			r := p.expect("result")
			got[r.Attr("to")] = r.String()
		}
		for _, d := range []string{"d1.test", "d2.test"} {
			// The verification's deadline and the stream's connect
			// timeout are the same: either error may come first.
			if !strings.Contains(got[d], "remote-server-timeout") && !strings.Contains(got[d], "remote-server-not-found") {
				t.Fatalf("%s: %q", d, got[d])
			}
		}
		claim(p, "d3.test") // the third domain of the stream's life
		if c := dialbackError(p, "d3.test"); c != "remote-server-timeout" && c != "remote-server-not-found" {
			t.Fatalf("d3 after the others: %q", c)
		}
		claim(p, "d4.test")
		p.expectStreamError("policy-violation")
	})
	t.Run("own domain", func(t *testing.T) {
		addr := start(t, "")
		p := dialRaw(t, addr, "b.test", "b.test", true)
		claim(p, "b.test")
		if c := dialbackError(p, "b.test"); c != "policy-violation" {
			t.Fatalf("a claim to be the server itself: %q, want policy-violation at once", c)
		}
	})
	t.Run("blocked domain in its other form", func(t *testing.T) {
		// One domain, listed by its A-label and claimed by its U-label,
		// and the other way round (RFC 7622 §3.2: the same domain).
		addr := start(t, `blocked_domains = ["xn--bcher-kva.test", "MÜLLER.test."]`)
		for _, from := range []string{"bücher.test", "BÜCHER.test", "xn--mller-kva.test"} {
			p := dialRaw(t, addr, from, "b.test", true)
			claim(p, from)
			// The answer names the domains as the peer wrote them.
			if c := dialbackError(p, strings.ToLower(from)); c != "policy-violation" {
				t.Fatalf("%s with the domain blocked in another form: %q", from, c)
			}
		}
	})
	t.Run("across the server", func(t *testing.T) {
		addr := start(t, "max_verifications = 1")
		p := dialRaw(t, addr, "d5.test", "b.test", true)
		q := dialRaw(t, addr, "d6.test", "b.test", true)
		claim(p, "d5.test")
		time.Sleep(100 * time.Millisecond)
		claim(q, "d6.test")
		if c := dialbackError(q, "d6.test"); c != "resource-constraint" {
			t.Fatalf("second verification with max_verifications = 1: %q", c)
		}
	})
}
