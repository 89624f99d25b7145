// Package clientcert verifies TLS client certificates for SASL EXTERNAL
// (XEP-0178) and extracts the XMPP addresses they certify.
//
// Identities come only from the subjectAltName extension: the
// id-on-xmppAddr otherName (RFC 6120 §13.7.1.4, OID 1.3.6.1.5.5.7.8.5) and,
// when a certificate has none, rfc822Name (email) entries. The subject's
// common name or emailAddress attribute is never parsed: subject strings
// are free text, and matching on them is how certificate login bugs happen.
//
// A Verifier holds the configured CA bundle and CRLs; Reload rereads both
// (SIGHUP). The TLS layer only requests a certificate (tls.RequestClientCert)
// and Verify decides afterwards, so a client with an untrusted or revoked
// certificate can still log in with a password; it just is not offered
// EXTERNAL.
package clientcert

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync"
	"time"

	"parley/internal/xmpp/jid"
)

// OIDXMPPAddr is id-on-xmppAddr (RFC 6120 §13.7.1.4).
var oidXMPPAddr = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 8, 5}

var oidSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}

// Verifier checks client certificates against a CA pool and CRLs.
type Verifier struct {
	caFile   string
	crlFiles []string
	now      func() time.Time

	mu      sync.RWMutex
	pool    *x509.CertPool
	revoked map[string]map[string]bool // issuer DN (raw) -> serial (decimal) -> revoked
	crls    []*x509.RevocationList
}

// New loads caFile (PEM) and crlFiles (PEM or DER). now may be nil.
func New(caFile string, crlFiles []string, now func() time.Time) (*Verifier, error) {
	if now == nil {
		now = time.Now
	}
	v := &Verifier{caFile: caFile, crlFiles: append([]string(nil), crlFiles...), now: now}
	if err := v.Reload(); err != nil {
		return nil, err
	}
	return v, nil
}

// Reload rereads the CA bundle and the CRLs. On error the previous state is
// kept.
func (v *Verifier) Reload() error {
	b, err := os.ReadFile(v.caFile)
	if err != nil {
		return fmt.Errorf("clientcert: %w", err)
	}
	pool := x509.NewCertPool()
	var cas []*x509.Certificate
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fmt.Errorf("clientcert: %s: %w", v.caFile, err)
		}
		pool.AddCert(c)
		cas = append(cas, c)
	}
	if len(cas) == 0 {
		return fmt.Errorf("clientcert: %s: no PEM certificates", v.caFile)
	}
	var crls []*x509.RevocationList
	revoked := map[string]map[string]bool{}
	for _, f := range v.crlFiles {
		lists, err := readCRLs(f)
		if err != nil {
			return err
		}
		for _, l := range lists {
			if !signedByOneOf(l, cas) {
				return fmt.Errorf("clientcert: %s: CRL not signed by a configured CA", f)
			}
			crls = append(crls, l)
			m := revoked[string(l.RawIssuer)]
			if m == nil {
				m = map[string]bool{}
				revoked[string(l.RawIssuer)] = m
			}
			for _, e := range l.RevokedCertificateEntries {
				m[e.SerialNumber.String()] = true
			}
		}
	}
	v.mu.Lock()
	v.pool, v.revoked, v.crls = pool, revoked, crls
	v.mu.Unlock()
	return nil
}

func readCRLs(path string) ([]*x509.RevocationList, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("clientcert: %w", err)
	}
	var out []*x509.RevocationList
	if bytes.Contains(b, []byte("-----BEGIN")) {
		for rest := b; ; {
			var blk *pem.Block
			blk, rest = pem.Decode(rest)
			if blk == nil {
				break
			}
			if blk.Type != "X509 CRL" {
				continue
			}
			l, err := x509.ParseRevocationList(blk.Bytes)
			if err != nil {
				return nil, fmt.Errorf("clientcert: %s: %w", path, err)
			}
			out = append(out, l)
		}
	} else {
		l, err := x509.ParseRevocationList(b)
		if err != nil {
			return nil, fmt.Errorf("clientcert: %s: %w", path, err)
		}
		out = append(out, l)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("clientcert: %s: no CRL found", path)
	}
	return out, nil
}

func signedByOneOf(l *x509.RevocationList, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if bytes.Equal(ca.RawSubject, l.RawIssuer) && l.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

// ErrRevoked is returned by Verify for a certificate listed in a CRL.
var ErrRevoked = errors.New("clientcert: certificate revoked")

// Verify checks the peer's chain (leaf first, as in
// tls.ConnectionState.PeerCertificates) against the CA pool, for client
// authentication, and every certificate of the verified chain against the
// CRLs. It returns the leaf on success.
func (v *Verifier) Verify(peer []*x509.Certificate) (*x509.Certificate, error) {
	if len(peer) == 0 {
		return nil, errors.New("clientcert: no client certificate")
	}
	v.mu.RLock()
	pool, revoked := v.pool, v.revoked
	v.mu.RUnlock()
	inter := x509.NewCertPool()
	for _, c := range peer[1:] {
		inter.AddCert(c)
	}
	chains, err := peer[0].Verify(x509.VerifyOptions{
		Roots: pool, Intermediates: inter, CurrentTime: v.now(),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		return nil, err
	}
	for _, chain := range chains {
		for _, c := range chain {
			if revoked[string(c.RawIssuer)][serial(c.SerialNumber)] {
				return nil, ErrRevoked
			}
		}
	}
	return peer[0], nil
}

func serial(n *big.Int) string { return n.String() }

// Identities returns the XMPP addresses a certificate certifies: its
// id-on-xmppAddr otherNames, or, when it has none, its rfc822Name (email)
// subjectAltNames. Only bare JIDs with a localpart are returned (client
// certificates name accounts); entries that are not valid JIDs are skipped.
func Identities(c *x509.Certificate) []jid.JID {
	var xmpp []jid.JID
	for _, s := range xmppAddrs(c) {
		if j, err := jid.Parse(s); err == nil && j.Local() != "" && j.Resource() == "" {
			xmpp = append(xmpp, j)
		}
	}
	if len(xmpp) > 0 {
		return xmpp
	}
	var mail []jid.JID
	for _, s := range c.EmailAddresses {
		if j, err := jid.Parse(s); err == nil && j.Local() != "" && j.Resource() == "" {
			mail = append(mail, j)
		}
	}
	return mail
}

// xmppAddrs parses the subjectAltName extension for otherName entries of
// type id-on-xmppAddr (RFC 6120 §13.7.1.4: a UTF8String).
func xmppAddrs(c *x509.Certificate) []string {
	var out []string
	for _, ext := range c.Extensions {
		if !ext.Id.Equal(oidSubjectAltName) {
			continue
		}
		var seq asn1.RawValue
		if rest, err := asn1.Unmarshal(ext.Value, &seq); err != nil || len(rest) > 0 || !seq.IsCompound || seq.Tag != asn1.TagSequence {
			return nil
		}
		for rest := seq.Bytes; len(rest) > 0; {
			var gn asn1.RawValue
			var err error
			rest, err = asn1.Unmarshal(rest, &gn)
			if err != nil {
				return out
			}
			// GeneralName otherName is [0] IMPLICIT OtherName:
			// SEQUENCE { type-id OID, value [0] EXPLICIT ANY }.
			if gn.Class != asn1.ClassContextSpecific || gn.Tag != 0 || !gn.IsCompound {
				continue
			}
			var oid asn1.ObjectIdentifier
			inner, err := asn1.Unmarshal(gn.Bytes, &oid)
			if err != nil || !oid.Equal(oidXMPPAddr) {
				continue
			}
			var val asn1.RawValue
			if _, err := asn1.Unmarshal(inner, &val); err != nil || val.Class != asn1.ClassContextSpecific || val.Tag != 0 {
				continue
			}
			var s string
			if _, err := asn1.UnmarshalWithParams(val.Bytes, &s, "utf8"); err != nil {
				continue
			}
			out = append(out, s)
		}
	}
	return out
}

// XMPPAddrExtension builds a subjectAltName extension holding the given
// xmppAddr otherNames and email addresses, for tests and tooling that make
// client certificates (Go's x509 cannot express otherName itself).
func XMPPAddrExtension(xmppAddrs, emails []string) (pkix.Extension, error) {
	var names []asn1.RawValue
	for _, a := range xmppAddrs {
		utf8, err := asn1.MarshalWithParams(a, "utf8")
		if err != nil {
			return pkix.Extension{}, err
		}
		val, err := asn1.Marshal(asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: utf8})
		if err != nil {
			return pkix.Extension{}, err
		}
		oid, err := asn1.Marshal(oidXMPPAddr)
		if err != nil {
			return pkix.Extension{}, err
		}
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: append(oid, val...)})
	}
	for _, e := range emails {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 1, Bytes: []byte(e)})
	}
	b, err := asn1.Marshal(names)
	if err != nil {
		return pkix.Extension{}, err
	}
	return pkix.Extension{Id: oidSubjectAltName, Value: b}, nil
}
