package s2s_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"parley/internal/testserver"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// selfSigned makes a self-signed certificate naming domain.
func selfSigned(t *testing.T, domain string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: domain}, DNSNames: []string{domain},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

const headerFromB = "<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' " +
	"xmlns:db='jabber:server:dialback' to='a.test' from='b.test' version='1.0'>"

// startTLSAsB opens an incoming stream to addr as b.test and runs STARTTLS
// presenting a self-signed certificate; it returns the TLS connection, on
// which neither side has opened a stream yet.
func startTLSAsB(t *testing.T, addr string) *tls.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = io.WriteString(nc, headerFromB)
	dec := xml.NewDecoder(nc, xml.DefaultLimits())
	dec.SetContentNamespace(stanza.NSServer)
	if _, err := dec.ReadHeader(); err != nil {
		t.Fatalf("plaintext header: %v", err)
	}
	if f, err := dec.Next(); err != nil || f.Local != "features" {
		t.Fatalf("plaintext features: %v %v", f, err)
	}
	_, _ = io.WriteString(nc, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if p, err := dec.Next(); err != nil || p.Local != "proceed" {
		t.Fatalf("no proceed: %v %v", p, err)
	}
	tc := tls.Client(nc, &tls.Config{
		InsecureSkipVerify: true, ServerName: "a.test", // Parley's certificate is not what is tested
		Certificates: []tls.Certificate{selfSigned(t, "b.test")},
	})
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake: %v", err)
	}
	return tc
}

// expectOpenThenError reads Parley's side of the TLS stream: it must be a
// well-formed stream header (RFC 6120 §4.9.1.2), perhaps followed by
// features, then a stream error with cond.
func expectOpenThenError(t *testing.T, c net.Conn, cond string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	dec := xml.NewDecoder(c, xml.DefaultLimits())
	dec.SetContentNamespace(stanza.NSServer)
	if _, err := dec.ReadHeader(); err != nil {
		t.Fatalf("no well-formed stream header before the error: %v", err)
	}
	for {
		el, err := dec.Next()
		if err != nil {
			t.Fatalf("no stream error %s: %v", cond, err)
		}
		if el.Space != stanza.NSStream || el.Local != "error" {
			continue
		}
		if el.Child("urn:ietf:params:xml:ns:xmpp-streams", cond) == nil {
			t.Fatalf("stream error %s, want %s", el, cond)
		}
		return
	}
}

// incomingA boots a.test with only SASL EXTERNAL allowed (dialback off).
func incomingA(t *testing.T) string {
	t.Helper()
	addr := loopback() + ":5269"
	testserver.Start(t, fmt.Sprintf(`admin_socket = "-"
[[host]]
domain = "a.test"
[limits]
preauth_timeout = "2s"
[s2s]
enabled = true
listen = [%q]
dialback = false
`, addr))
	return addr
}

// A peer whose certificate cannot authenticate it (self-signed, and
// dialback is off) is refused with the reason on the stream it opened
// after TLS: our header first, then policy-violation, instead of empty
// features and a wait for the pre-authentication timeout.
func TestIncomingRefusedCertificateAfterTLS(t *testing.T) {
	tc := startTLSAsB(t, incomingA(t))
	_, _ = io.WriteString(tc, headerFromB)
	expectOpenThenError(t, tc, "policy-violation")
}

// A peer that goes silent after STARTTLS gets connection-timeout inside a
// stream: the error is preceded by our header on the TLS stream even
// though the peer never sent its own.
func TestIncomingTimeoutAfterTLSOpensTheStream(t *testing.T) {
	tc := startTLSAsB(t, incomingA(t))
	expectOpenThenError(t, tc, "connection-timeout")
}
