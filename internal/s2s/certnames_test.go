package s2s

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"
)

// An internationalised domain's certificate carries its DNS-ID as the
// A-label (RFC 6125 §6.4.2); the domain of a stream is prepared to
// U-labels, and must still match it. An attack test found such peers
// always got name-mismatch.
func TestCertNamesInternationalised(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "xn--bcher-kva.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		DNSNames: []string{"xn--bcher-kva.test"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if !certNames(c, "bücher.test") {
		t.Fatal("the A-label DNS-ID does not name the prepared domain bücher.test")
	}
	if certNames(c, "bucher.test") {
		t.Fatal("the certificate names another domain")
	}
}
