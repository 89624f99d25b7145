package s2s

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"os"
	"time"

	"golang.org/x/net/idna"

	"parley/internal/xmpp/jid"
)

// Certificate verdicts, as logged and listed.
const (
	VerdictNone       = "no-tls"         // plaintext stream
	VerdictNoCert     = "no-certificate" // TLS, but the peer sent none (incoming)
	VerdictValid      = "valid"          // chains to a trusted root and names the domain
	VerdictSelfSigned = "self-signed"
	VerdictUntrusted  = "untrusted" // unknown issuer, expired, bad chain
	VerdictNameWrong  = "name-mismatch"
)

// loadRoots returns the system roots plus the PEM bundle in caFile.
func loadRoots(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	b, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("s2s.ca_file: %w", err)
	}
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("s2s.ca_file %s: no certificate found", caFile)
	}
	return pool, nil
}

// verdict checks the peer's certificate chain against roots and the
// domain against its identities (RFC 6120 §13.7.2, RFC 6125 §6: DNS-ID
// including a wildcard in the left-most label, and the XMPP-specific
// id-on-xmppAddr; the CN is not used).
func verdict(st *tls.ConnectionState, roots *x509.CertPool, domain string, now time.Time) string {
	if st == nil {
		return VerdictNone
	}
	if len(st.PeerCertificates) == 0 {
		return VerdictNoCert
	}
	leaf := st.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range st.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := leaf.Verify(x509.VerifyOptions{
		Roots: roots, Intermediates: inter, CurrentTime: now,
		// Servers present the same certificate as TLS client and server;
		// many carry only serverAuth, so the usage is not restricted.
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		if bytes.Equal(leaf.RawIssuer, leaf.RawSubject) && leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature) == nil {
			return VerdictSelfSigned
		}
		return VerdictUntrusted
	}
	if !certNames(leaf, domain) {
		return VerdictNameWrong
	}
	return VerdictValid
}

var (
	oidSAN      = asn1.ObjectIdentifier{2, 5, 29, 17}
	oidXMPPAddr = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5}
)

// certNames reports whether the certificate is issued to domain (a
// prepared domainpart: U-labels), by DNS-ID (Go's matcher: exact or
// left-most wildcard), which certificates carry in A-labels (RFC 6125
// §6.4.2, so the domain is converted first), or id-on-xmppAddr, a JID in
// UTF-8 (compared prepared, RFC 6120 §13.7.1.4).
func certNames(c *x509.Certificate, domain string) bool {
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil {
		ascii = domain // an IP literal, say: Go's matcher takes it as it is
	}
	if c.VerifyHostname(ascii) == nil {
		return true
	}
	for _, a := range xmppAddrs(c) {
		if p, err := jid.PrepareDomain(a); err == nil && p == domain {
			return true
		}
	}
	return false
}

// xmppAddrs extracts id-on-xmppAddr otherName values (RFC 6120 §13.7.1.4)
// from the subjectAltName extension, which crypto/x509 does not decode.
func xmppAddrs(c *x509.Certificate) []string {
	var out []string
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSAN) {
			continue
		}
		var seq asn1.RawValue
		if _, err := asn1.Unmarshal(ext.Value, &seq); err != nil {
			return nil
		}
		rest := seq.Bytes
		for len(rest) > 0 {
			var gn asn1.RawValue
			var err error
			if rest, err = asn1.Unmarshal(rest, &gn); err != nil {
				return out
			}
			if gn.Class != asn1.ClassContextSpecific || gn.Tag != 0 { // otherName
				continue
			}
			var oid asn1.ObjectIdentifier
			r2, err := asn1.Unmarshal(gn.Bytes, &oid)
			if err != nil || !oid.Equal(oidXMPPAddr) {
				continue
			}
			var explicit asn1.RawValue
			if _, err := asn1.Unmarshal(r2, &explicit); err != nil {
				continue
			}
			var s string
			if _, err := asn1.UnmarshalWithParams(explicit.Bytes, &s, "utf8"); err == nil {
				out = append(out, s)
			}
		}
	}
	return out
}

// ownVerdict applies verdict() to our own certificate for local: what a
// peer with the same trust roots would conclude about us. It decides
// whether SASL EXTERNAL is worth trying on an outgoing stream.
func (s *Service) ownVerdict(local string) string {
	c := s.certs.ForName(local)
	if c == nil || len(c.Certificate) == 0 {
		return VerdictNoCert
	}
	chain := make([]*x509.Certificate, 0, len(c.Certificate))
	for _, der := range c.Certificate {
		p, err := x509.ParseCertificate(der)
		if err != nil {
			return VerdictUntrusted
		}
		chain = append(chain, p)
	}
	return verdict(&tls.ConnectionState{PeerCertificates: chain}, s.roots, local, s.now())
}

func tlsVersion(st *tls.ConnectionState) string {
	if st == nil {
		return "none"
	}
	return tls.VersionName(st.Version)
}
