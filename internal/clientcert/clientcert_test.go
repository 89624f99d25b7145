package clientcert_test

import (
	"crypto/x509"
	"errors"
	"path/filepath"
	"testing"

	"parley/internal/clientcert"
	"parley/internal/clientcert/clientcerttest"
)

func TestIdentities(t *testing.T) {
	ca, _ := clientcerttest.NewCA(t, t.TempDir(), "ca")
	cases := []struct {
		name         string
		xmpp, emails []string
		want         []string
	}{
		{"xmppAddr", []string{"alice@example.org"}, nil, []string{"alice@example.org"}},
		{"xmppAddr wins over email", []string{"alice@example.org"}, []string{"other@example.org"}, []string{"alice@example.org"}},
		{"email fallback", nil, []string{"bob@example.org"}, []string{"bob@example.org"}},
		{"two xmppAddrs", []string{"a@example.org", "b@example.net"}, nil, []string{"a@example.org", "b@example.net"}},
		{"domain-only and full JIDs skipped", []string{"example.org", "c@example.org/res"}, nil, nil},
		{"nothing: the CN is never used", nil, nil, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ca.Client(t, "mallory@example.org", tc.xmpp, tc.emails)
			got := clientcert.Identities(c.Leaf)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v want %v", got, tc.want)
			}
			for i := range got {
				if got[i].String() != tc.want[i] {
					t.Fatalf("got %v want %v", got, tc.want)
				}
			}
		})
	}
}

func TestVerifyAndRevocation(t *testing.T) {
	dir := t.TempDir()
	ca, caFile := clientcerttest.NewCA(t, dir, "ca")
	other, _ := clientcerttest.NewCA(t, dir, "other")
	crl := filepath.Join(dir, "ca.crl")
	ca.WriteCRL(t, crl)
	v, err := clientcert.New(caFile, []string{crl}, nil)
	if err != nil {
		t.Fatal(err)
	}
	good := ca.Client(t, "good", []string{"a@example.org"}, nil)
	bad := ca.Client(t, "bad", []string{"b@example.org"}, nil)
	foreign := other.Client(t, "foreign", []string{"c@example.org"}, nil)
	for _, c := range []*x509.Certificate{good.Leaf, bad.Leaf} {
		if _, err := v.Verify([]*x509.Certificate{c}); err != nil {
			t.Fatalf("%s: %v", c.Subject.CommonName, err)
		}
	}
	if _, err := v.Verify([]*x509.Certificate{foreign.Leaf}); err == nil {
		t.Fatal("certificate of an unconfigured CA accepted")
	}
	if _, err := v.Verify(nil); err == nil {
		t.Fatal("no certificate accepted")
	}
	// Revoke bad and reload: only bad is refused.
	ca.WriteCRL(t, crl, bad.Leaf)
	if err := v.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify([]*x509.Certificate{bad.Leaf}); !errors.Is(err, clientcert.ErrRevoked) {
		t.Fatalf("revoked certificate: %v", err)
	}
	if _, err := v.Verify([]*x509.Certificate{good.Leaf}); err != nil {
		t.Fatalf("good certificate after reload: %v", err)
	}
	// A CRL signed by another CA is a configuration error.
	bogus := filepath.Join(dir, "bogus.crl")
	other.WriteCRL(t, bogus, good.Leaf)
	if _, err := clientcert.New(caFile, []string{bogus}, nil); err == nil {
		t.Fatal("CRL from a foreign CA accepted")
	}
}
