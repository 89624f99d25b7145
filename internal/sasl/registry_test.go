package sasl

import (
	"bytes"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"slices"
	"testing"

	"github.com/xdg-go/scram"
)

func TestOfferedAndChannelBindingTypes(t *testing.T) {
	p256 := ecdsaCert(t, elliptic.P256())
	ed := ed25519Cert(t)
	tls13, _ := tlsPair(t, tls.VersionTLS13, p256)
	tls12, _ := tlsPair(t, tls.VersionTLS12, p256)
	tls13ed, _ := tlsPair(t, tls.VersionTLS13, ed)
	handmade := &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS12}
	unfinished := tls13
	unfinished.HandshakeComplete = false

	all := []string{SCRAMSHA512Plus, SCRAMSHA256Plus, SCRAMSHA1Plus, SCRAMSHA512, SCRAMSHA256, SCRAMSHA1, Plain}
	noPlus := all[3:]
	tests := []struct {
		name       string
		st         *tls.ConnectionState
		cert       *x509.Certificate
		allowPlain bool
		wantCB     []string
		wantMechs  []string
	}{
		{"no TLS", nil, nil, false, nil, noPlus[:3]},
		{"no TLS, PLAIN allowed", nil, nil, true, nil, noPlus},
		{"handshake not complete", &unfinished, p256.Leaf, false, nil, noPlus[:3]},
		{"TLS 1.3 with cert", &tls13, p256.Leaf, false, []string{CBTLSExporter, CBTLSServerEndPoint}, all},
		{"TLS 1.2 (EMS) with cert", &tls12, p256.Leaf, false, []string{CBTLSExporter, CBTLSServerEndPoint}, all},
		{"TLS 1.3 without cert", &tls13, nil, false, []string{CBTLSExporter}, all},
		{"TLS 1.3 Ed25519 cert", &tls13ed, ed.Leaf, false, []string{CBTLSExporter}, all},
		{"no exporter, no cert", handmade, nil, false, nil, noPlus},
		{"no exporter, cert", handmade, p256.Leaf, false, []string{CBTLSServerEndPoint}, all},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ChannelBindingTypes(tc.st, tc.cert); !slices.Equal(got, tc.wantCB) {
				t.Errorf("ChannelBindingTypes = %q, want %q", got, tc.wantCB)
			}
			if got := Offered(tc.st, tc.cert, tc.allowPlain); !slices.Equal(got, tc.wantMechs) {
				t.Errorf("Offered = %q, want %q", got, tc.wantMechs)
			}
		})
	}
}

func TestStart(t *testing.T) {
	cert := ecdsaCert(t, elliptic.P256())
	st, _ := tlsPair(t, tls.VersionTLS13, cert)
	tlsEnv := testEnv(t)
	tlsEnv.TLS = &st
	tlsEnv.ServerCert = cert.Leaf

	noLookup := tlsEnv
	noLookup.Lookup = nil
	noKey := tlsEnv
	noKey.FakeSaltKey = []byte("short")

	tests := []struct {
		name string
		mech string
		env  Env
		want string
	}{
		{"unknown mechanism", "DIGEST-MD5", tlsEnv, CondInvalidMechanism},
		{"lowercase name", "scram-sha-256", tlsEnv, CondInvalidMechanism},
		{"EXTERNAL not implemented", "EXTERNAL", tlsEnv, CondInvalidMechanism},
		{"PLUS without TLS", SCRAMSHA256Plus, testEnv(t), CondInvalidMechanism},
		{"PLAIN without TLS", Plain, testEnv(t), CondInvalidMechanism},
		{"PLAIN over TLS", Plain, tlsEnv, ""},
		{"PLUS over TLS", SCRAMSHA512Plus, tlsEnv, ""},
		{"no lookup", SCRAMSHA256, noLookup, CondTemporaryAuthFailure},
		{"short fake salt key", SCRAMSHA256, noKey, CondTemporaryAuthFailure},
		{"PLAIN does not need the fake salt key", Plain, noKey, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Start(tc.mech, tc.env)
			if got := condition(err); got != tc.want {
				t.Fatalf("got %q (%v), want %q", got, err, tc.want)
			}
			if err == nil && s.Name() != tc.mech {
				t.Fatalf("Name = %q", s.Name())
			}
		})
	}
}

func TestFailureError(t *testing.T) {
	var err error = fail(CondNotAuthorized, "")
	var f *Failure
	if !errors.As(err, &f) || err.Error() != "sasl: not-authorized" {
		t.Fatal(err)
	}
	if got := fail(CondMalformedRequest, "x").Error(); got != "sasl: malformed-request: x" {
		t.Fatal(got)
	}
}

// TestEndPointHash checks the RFC 5929 §4.1 hash choice, including the
// MD5/SHA-1 upgrade that cannot be exercised with certificates Go will sign.
func TestEndPointHash(t *testing.T) {
	raw := []byte("not really DER, only hashed")
	tests := []struct {
		alg  x509.SignatureAlgorithm
		want []byte // nil: binding undefined
	}{
		{x509.MD5WithRSA, sum256(raw)},
		{x509.SHA1WithRSA, sum256(raw)},
		{x509.ECDSAWithSHA1, sum256(raw)},
		{x509.SHA256WithRSA, sum256(raw)},
		{x509.SHA256WithRSAPSS, sum256(raw)},
		{x509.ECDSAWithSHA256, sum256(raw)},
		{x509.SHA384WithRSA, sum384(raw)},
		{x509.ECDSAWithSHA384, sum384(raw)},
		{x509.SHA512WithRSAPSS, sum512(raw)},
		{x509.ECDSAWithSHA512, sum512(raw)},
		{x509.PureEd25519, nil},
		{x509.UnknownSignatureAlgorithm, nil},
		{x509.MD2WithRSA, nil},
	}
	st := &tls.ConnectionState{HandshakeComplete: true}
	for _, tc := range tests {
		t.Run(tc.alg.String(), func(t *testing.T) {
			cert := &x509.Certificate{Raw: raw, SignatureAlgorithm: tc.alg}
			got, ok := channelBindingData(CBTLSServerEndPoint, st, cert)
			if ok != (tc.want != nil) || !bytes.Equal(got, tc.want) {
				t.Fatalf("got %x (%v), want %x", got, ok, tc.want)
			}
		})
	}
}

// TestBindingDataMatchesClient checks the server computes, from its own side
// of the connection, exactly what an xdg-go/scram client computes from its
// side.
func TestBindingDataMatchesClient(t *testing.T) {
	for _, curve := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		cert := ecdsaCert(t, curve)
		for _, ver := range tlsVersions {
			srv, cli := tlsPair(t, ver.v, cert)
			wantEP, err := scram.NewTLSServerEndpointBinding(&cli)
			if err != nil {
				t.Fatal(err)
			}
			wantEx, _ := scram.NewTLSExporterBinding(&cli)
			gotEP, ok1 := channelBindingData(CBTLSServerEndPoint, &srv, cert.Leaf)
			gotEx, ok2 := channelBindingData(CBTLSExporter, &srv, cert.Leaf)
			if !ok1 || !ok2 || !bytes.Equal(gotEP, wantEP.Data) || !bytes.Equal(gotEx, wantEx.Data) {
				t.Errorf("%s %s: server and client binding data differ", curve.Params().Name, ver.name)
			}
			if _, ok := channelBindingData("tls-unique", &srv, cert.Leaf); ok {
				t.Error("tls-unique must not be supported")
			}
		}
	}
}

func sum256(b []byte) []byte { h := sha256.Sum256(b); return h[:] }
func sum384(b []byte) []byte { h := sha512.Sum384(b); return h[:] }
func sum512(b []byte) []byte { h := sha512.Sum512(b); return h[:] }
