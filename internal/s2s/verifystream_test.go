package s2s_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"parley/internal/s2s"
	"parley/internal/s2s/dialback"
	"parley/internal/testserver"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// The tests in this file use only 127.0.3.x: c2s listeners too, so
// nothing binds the testserver's default 127.0.0.1.
func addr3(host int) string { return fmt.Sprintf("127.0.3.%d", host) }

// c2sOn is the [c2s] table putting a test server's client listeners on ip.
func c2sOn(ip string) string {
	return fmt.Sprintf("[c2s]\nlisten = [\"%s:0\"]\ndirect_tls_listen = [\"%s:0\"]\n", ip, ip)
}

const secretB = "fedcba9876543210-secret-of-b"

// authority is the authoritative server of every domain routed to it, as
// an attacker would run one: STARTTLS with a self-signed certificate, then
// dialback. It answers each db:verify (valid when the key is the one its
// secret makes over the request's own strings) and each db:result Parley
// sends (always valid), and counts the streams Parley opens to it and how
// they end.
type authority struct {
	t    *testing.T
	ln   net.Listener
	keys *dialback.Keys
	cert tls.Certificate

	open    atomic.Int32 // streams open now
	clean   atomic.Int32 // streams Parley ended with </stream:stream>
	results atomic.Int32 // db:result requests Parley sent
	// verifies receives every db:verify request as read.
	verifies chan *xml.Element
}

func newAuthority(t *testing.T, ip, secret string) *authority {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	a := &authority{
		t: t, ln: ln, keys: dialback.NewKeys([]byte(secret)), cert: selfSigned(t, "authority.test"),
		verifies: make(chan *xml.Element, 1024),
	}
	acceptAll(t, ln, a.serve)
	return a
}

func (a *authority) addr() string { return a.ln.Addr().String() }

// header reads Parley's stream header and answers with ours and features.
func (a *authority) header(c net.Conn, features string) *xml.Decoder {
	d := xml.NewDecoder(c, xml.DefaultLimits())
	d.SetContentNamespace(stanza.NSServer)
	h, err := d.ReadHeader()
	if err != nil {
		return nil
	}
	fmt.Fprintf(c, "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' "+
		"xmlns:stream='http://etherx.jabber.org/streams' id='auth-%p' from='%s' to='%s' version='1.0'>"+
		"<stream:features>%s</stream:features>", d, h.To, h.From, features)
	return d
}

func (a *authority) serve(nc net.Conn) {
	defer nc.Close()
	a.open.Add(1)
	defer a.open.Add(-1)
	d := a.header(nc, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>")
	if d == nil {
		return
	}
	if el, err := d.Next(); err != nil || el.Local != "starttls" {
		return
	}
	fmt.Fprint(nc, "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	tc := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{a.cert}})
	if tc.Handshake() != nil {
		return
	}
	if d = a.header(tc, "<dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"); d == nil {
		return
	}
	for {
		el, err := d.Next()
		if errors.Is(err, xml.ErrStreamClosed) {
			a.clean.Add(1)
			return
		}
		if err != nil {
			return
		}
		switch {
		case el.Space == dialback.NS && el.Local == "verify":
			a.verifies <- el
			typ := "invalid"
			if a.keys.Valid(el.Attr("from"), el.Attr("to"), el.Attr("id"), strings.TrimSpace(el.Text())) {
				typ = "valid"
			}
			// The answer names the domains as the request did.
			fmt.Fprintf(tc, "<db:verify from='%s' to='%s' id='%s' type='%s'/>", el.Attr("to"), el.Attr("from"), el.Attr("id"), typ)
		case el.Space == dialback.NS && el.Local == "result":
			a.results.Add(1)
			fmt.Fprintf(tc, "<db:result from='%s' to='%s' type='valid'/>", el.Attr("to"), el.Attr("from"))
		}
	}
}

// outStreams is the parley_connections{kind="s2s-out"} gauge.
func outStreams(ts *testserver.TS) int {
	var m dto.Metric
	_ = ts.Metrics().Connections.WithLabelValues("s2s-out").Write(&m)
	return int(m.GetGauge().GetValue())
}

// waitFor polls cond every 20 ms until it holds or d has passed.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(20 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}

// claimAll makes the dialback claims of an attacking peer: from each of
// the domains, in rounds that stay within max_dialback_pending, with keys
// the authority (which the attacker runs) vouches for. Every claim must
// be answered valid.
func claimAll(t *testing.T, p *rawPeer, auth *authority, domains []string) {
	t.Helper()
	for len(domains) > 0 {
		n := min(len(domains), 8)
		round := domains[:n]
		domains = domains[n:]
		for _, d := range round {
			p.send("<db:result from='%s' to='b.test'>%s</db:result>", d, auth.keys.Key("b.test", d, p.id))
		}
		for range round {
			if r := p.expect("result"); r.Attr("type") != "valid" {
				t.Fatalf("claim: %s", r)
			}
		}
	}
}

// startB boots b.test on ip (s2s on port 0) with the given [s2s] keys,
// routes and a dialback secret of its own.
func startB(t *testing.T, ip, extra, routes string) (*testserver.TS, string) {
	t.Helper()
	ts := testserver.Start(t, fmt.Sprintf(`admin_socket = "-"
[[host]]
domain = "b.test"
%s[s2s]
enabled = true
listen = ["%s:0"]
accept_self_signed = true
connect_timeout = "5s"
dialback_secret = %q
%s
[s2s.routes]
%s`, c2sOn(ip), ip, secretB, extra, routes))
	return ts, ts.S2S().Addrs()[0].String()
}

// A dialback claim makes the receiving server open a stream to the claimed
// domain's authoritative server for db:verify. Such a stream, which no
// stanza ever used, used to stay until idle_timeout (10 minutes) and even
// authenticated a pair of ours with the authority (an attacker's, which
// says valid to anything), so a peer bounded to max_verifications claims
// at a time could still pile up thousands of idle outgoing streams by
// claiming one made-up domain after another. Now it is closed, with
// </stream:stream>, shortly after its last verification; and while
// streams linger for reuse, at most max_verifications of them do.
func TestVerificationStreamsClose(t *testing.T) {
	const n = 24
	auth := newAuthority(t, addr3(2), "secret-of-the-attacker")
	var domains []string
	routes := ""
	for i := range n {
		d := fmt.Sprintf("d%d.evil.test", i)
		domains = append(domains, d)
		routes += fmt.Sprintf("%q = %q\n", d, auth.addr())
	}

	t.Run("closed after the last verification", func(t *testing.T) {
		b, addr := startB(t, addr3(1), "", routes)
		s2s.SetVerifyLinger(b.S2S(), 200*time.Millisecond)
		p := dialRaw(t, addr, "d0.evil.test", "b.test", true)
		claimAll(t, p, auth, domains)
		if !waitFor(3*time.Second, func() bool { return outStreams(b) == 0 && auth.open.Load() == 0 }) {
			t.Fatalf("%d outgoing streams (authority: %d open) 3s after %d verifications; idle_timeout is %v",
				outStreams(b), auth.open.Load(), n, b.Config.S2S.IdleTimeout.Duration)
		}
		if c := auth.clean.Load(); c != n {
			t.Fatalf("%d of %d verification streams closed with </stream:stream>", c, n)
		}
		if r := auth.results.Load(); r != 0 {
			t.Fatalf("%d pairs of b.test authenticated on streams opened only to verify", r)
		}
		// The claims themselves are verified.
		if len(b.S2S().List()) == 0 {
			t.Fatal("no incoming pair verified")
		}
	})

	t.Run("lingering bounded by max_verifications", func(t *testing.T) {
		auth.clean.Store(0)
		b, addr := startB(t, addr3(3), "max_verifications = 4", routes)
		s2s.SetVerifyLinger(b.S2S(), time.Minute)
		p := dialRaw(t, addr, "d0.evil.test", "b.test", true)
		for _, d := range domains[:12] {
			claimAll(t, p, auth, []string{d}) // one at a time: max_verifications = 4
		}
		if !waitFor(3*time.Second, func() bool { return outStreams(b) <= 4 && auth.clean.Load() >= 8 }) {
			t.Fatalf("%d outgoing streams, %d closed with </stream:stream> after 12 verifications with max_verifications = 4",
				outStreams(b), auth.clean.Load())
		}
	})
}

// A stream opened to verify a peer's claim and then used for a stanza to
// that peer (the reply to the first message, the common case) is a route
// like any other: it stays past the verification linger.
func TestVerificationStreamReusedForStanzas(t *testing.T) {
	aIP, bIP := addr3(10), addr3(11)
	start := func(me, ip, other, otherIP, secret string) *testserver.TS {
		return testserver.Start(t, fmt.Sprintf(`admin_socket = "-"
[[host]]
domain = %q
%s[s2s]
enabled = true
listen = ["%s:5269"]
accept_self_signed = true
connect_timeout = "5s"
dialback_secret = %q
[s2s.routes]
%q = "%s:5269"
`, me, c2sOn(ip), ip, secret, other, otherIP))
	}
	a := start("a.test", aIP, "b.test", bIP, secretA)
	b := start("b.test", bIP, "a.test", aIP, secretB)
	s2s.SetVerifyLinger(b.S2S(), 500*time.Millisecond)
	alice, bob := users(t, a, b)
	// alice's message makes b verify a's key over a stream of b's own to
	// a.test, which carries nothing else yet ...
	alice.Send("<message to='bob@b.test' type='chat' id='v1'><body>hi bob</body></message>")
	bob.ExpectStanza("message", "id=v1")
	verifying := false
	for _, c := range b.S2S().List() {
		verifying = verifying || c.Direction == "out" && c.Remote == "a.test" && c.State == "verifying"
	}
	if !verifying {
		t.Fatalf("no verification stream from b.test to a.test: %+v", b.S2S().List())
	}
	// ... and bob's reply at once goes over that stream.
	bob.Send("<message to='%s' type='chat' id='v2'><body>hi alice</body></message>", alice.JID)
	alice.ExpectStanza("message", "id=v2")
	time.Sleep(time.Second) // twice the linger
	if got := outStreams(b); got != 1 {
		t.Fatalf("b has %d outgoing streams after the linger, want the one carrying bob's reply", got)
	}
	exchange(t, alice, bob)
	if got := authenticatedOut(t, b); got != 1 {
		t.Fatalf("b authenticated %v outgoing pairs, want 1: the stream was replaced", got)
	}
}

// authenticatedOut sums parley_s2s_authenticated_total{direction="out"}.
func authenticatedOut(t *testing.T, ts *testserver.TS) float64 {
	t.Helper()
	mfs, err := ts.Metrics().Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "parley_s2s_authenticated_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "direction" && l.GetValue() == "out" {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

// With encryption required, an incoming stream that has not done STARTTLS
// gets no verdict on a db:verify (a key valid or not is what an attacker
// on the path wants to learn, and the policy says nothing goes in clear):
// the request is refused with policy-violation, as a db:result before TLS
// is. After STARTTLS the same request is answered.
func TestDBVerifyBeforeTLSRefused(t *testing.T) {
	_, addr := startB(t, addr3(20), "", "")
	key := dialback.NewKeys([]byte(secretB)).Key("a.test", "b.test", "id-1")
	p := dialRaw(t, addr, "a.test", "b.test", false)
	p.send("<db:verify from='a.test' to='b.test' id='id-1'>%s</db:verify>", key)
	r := p.expect("verify")
	if r.Attr("type") != "error" || dialbackCondition(r) != "policy-violation" {
		t.Fatalf("db:verify before STARTTLS answered %s, want an error with policy-violation", r)
	}
	q := dialRaw(t, addr, "a.test", "b.test", true)
	q.send("<db:verify from='a.test' to='b.test' id='id-1'>%s</db:verify>", key)
	if r := q.expect("verify"); r.Attr("type") != "valid" {
		t.Fatalf("db:verify after STARTTLS answered %s", r)
	}

	t.Run("encryption optional", func(t *testing.T) {
		_, addr := startB(t, addr3(21), "require_encryption = false", "")
		p := dialRaw(t, addr, "a.test", "b.test", false)
		p.send("<db:verify from='a.test' to='b.test' id='id-1'>%s</db:verify>", key)
		if r := p.expect("verify"); r.Attr("type") != "valid" {
			t.Fatalf("db:verify without TLS, not required: %s", r)
		}
	})
}

// dialbackCondition is the error condition of a dialback element.
func dialbackCondition(el *xml.Element) string {
	for _, e := range el.Elements() {
		if e.Local == "error" {
			if c := e.FirstElement(); c != nil {
				return c.Local
			}
		}
	}
	return ""
}

// Dialback keys are hashes over the domain strings the originating server
// wrote, so the db:verify Parley sends as receiving server carries those
// strings exactly (A-labels stay A-labels, U-labels U-labels), while the
// stream to the authoritative server is the one to the prepared domain.
// The authority here checks the key over the request's own strings and
// answers in the same form, which Parley must match to its request.
//
// Our own domain is ASCII: a host named by a U-label cannot be started
// yet (the self-signed certificate made for it puts the U-label in a DNS
// name, which x509 refuses).
func TestDialbackIDNWireForms(t *testing.T) {
	auth := newAuthority(t, addr3(30), "secret-of-müller")
	b, addr := startB(t, addr3(31), "", fmt.Sprintf("%q = %q\n", "xn--mller-kva.test", auth.addr()))
	for _, from := range []string{"xn--mller-kva.test", "müller.test"} {
		t.Run(from, func(t *testing.T) {
			p := dialRaw(t, addr, from, "b.test", true)
			p.send("<db:result from='%s' to='b.test'>%s</db:result>", from, auth.keys.Key("b.test", from, p.id))
			var req *xml.Element
			select {
			case req = <-auth.verifies:
			case <-time.After(5 * time.Second):
				t.Fatal("no db:verify at the authoritative server")
			}
			if req.Attr("from") != "b.test" || req.Attr("to") != from || req.Attr("id") != p.id {
				t.Fatalf("db:verify %s, want from=b.test to=%s id=%s as the originating server wrote them", req, from, p.id)
			}
			if !auth.keys.Valid("b.test", from, p.id, strings.TrimSpace(req.Text())) {
				t.Fatalf("the key of %s does not validate over its strings", req)
			}
			r := p.expect("result")
			if r.Attr("type") != "valid" || r.Attr("from") != "b.test" || r.Attr("to") != from {
				t.Fatalf("db:result answered %s, want valid from=b.test to=%s", r, from)
			}
			// The pair verified is the prepared one: a stanza from the
			// domain in its other form is accepted on the stream too.
			other := map[string]string{"xn--mller-kva.test": "müller.test", "müller.test": "xn--mller-kva.test"}[from]
			p.send("<message from='user@%s' to='b.test' id='i1'/><message from='user@%s' to='b.test' id='i2'/>", from, other)
			time.Sleep(200 * time.Millisecond)
			found := false
			for _, c := range b.S2S().List() {
				found = found || c.Direction == "in" && c.Remote == "müller.test" && c.Local == "b.test" && c.State == "authenticated"
			}
			if !found {
				t.Fatalf("no verified pair müller.test → b.test in %+v", b.S2S().List())
			}
		})
	}

	t.Run("as authoritative server", func(t *testing.T) {
		// b.test made its key for müller.test over the prepared name
		// (the one it wrote in its db:result); a receiving server that
		// writes its own name as the A-label asks about that same key,
		// and gets its strings back in the answer.
		key := dialback.NewKeys([]byte(secretB)).Key("müller.test", "b.test", "id-7")
		for _, from := range []string{"müller.test", "xn--mller-kva.test"} {
			q := dialRaw(t, addr, from, "b.test", true)
			q.send("<db:verify from='%s' to='b.test' id='id-7'>%s</db:verify>", from, key)
			if r := q.expect("verify"); r.Attr("type") != "valid" || r.Attr("from") != "b.test" || r.Attr("to") != from {
				t.Fatalf("db:verify from=%s answered %s", from, r)
			}
		}
	})
}
