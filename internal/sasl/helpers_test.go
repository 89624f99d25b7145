package sasl

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"parley/internal/storage"
)

const (
	testUser     = "juliet"
	testPassword = "r0m3o!pencil"
)

var errStorageDown = errors.New("database unavailable")

// testCreds derives credentials once per test binary: PBKDF2 with three
// families is the slow part of every test.
var testCreds = sync.OnceValue(func() storage.Credentials {
	c, err := DeriveCredentials(testPassword, 0)
	if err != nil {
		panic(err)
	}
	return c
})

// lookupFunc serves the accounts in users; "broken" simulates a storage
// outage.
func lookupFunc(users map[string]storage.Credentials) func(context.Context, string) (storage.Credentials, error) {
	return func(ctx context.Context, name string) (storage.Credentials, error) {
		if name == "broken" {
			return storage.Credentials{}, errStorageDown
		}
		c, ok := users[name]
		if !ok {
			return storage.Credentials{}, storage.ErrNotFound
		}
		return c, nil
	}
}

func testEnv(t testing.TB) Env {
	t.Helper()
	return Env{
		Lookup:      lookupFunc(map[string]storage.Credentials{testUser: testCreds()}),
		FakeSaltKey: []byte("0123456789abcdef0123456789abcdef"),
	}
}

// selfSigned makes a certificate signed with key; the signature algorithm
// follows from the key type (P-256 → ECDSA-SHA256, P-384 → ECDSA-SHA384,
// Ed25519 → PureEd25519).
func selfSigned(t testing.TB, key crypto.Signer) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "parley.test"},
		DNSNames:     []string{"parley.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func ecdsaCert(t testing.TB, c elliptic.Curve) tls.Certificate {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return selfSigned(t, k)
}

func ed25519Cert(t testing.TB) tls.Certificate {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return selfSigned(t, k)
}

// tlsPair runs a real TLS handshake over net.Pipe at the given version and
// returns both ends' connection state.
func tlsPair(t testing.TB, version uint16, cert tls.Certificate) (server, client tls.ConnectionState) {
	t.Helper()
	sc, cc := net.Pipe()
	srv := tls.Server(sc, &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   version,
		MaxVersion:   version,
	})
	cli := tls.Client(cc, &tls.Config{
		ServerName:         "parley.test",
		InsecureSkipVerify: true, // self-signed test certificate
		MinVersion:         version,
		MaxVersion:         version,
	})
	// Close the pipe, not the tls.Conns: their Close writes close_notify,
	// which on an unbuffered pipe nobody reads blocks for five seconds.
	defer sc.Close()
	defer cc.Close()
	errc := make(chan error, 1)
	go func() { errc <- srv.Handshake() }()
	if err := cli.Handshake(); err != nil {
		t.Fatalf("client handshake: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("server handshake: %v", err)
	}
	server, client = srv.ConnectionState(), cli.ConnectionState()
	if server.Version != version {
		t.Fatalf("negotiated %x, want %x", server.Version, version)
	}
	return server, client
}

func scramHash(t testing.TB, mech string) scram.HashGeneratorFcn {
	t.Helper()
	switch strings.TrimSuffix(mech, "-PLUS") {
	case SCRAMSHA1:
		return scram.SHA1
	case SCRAMSHA256:
		return scram.SHA256
	case SCRAMSHA512:
		return scram.SHA512
	}
	t.Fatalf("not a SCRAM mechanism: %s", mech)
	return nil
}

// transcript records what the server said during a SCRAM exchange.
type transcript struct {
	serverFirst string
	err         error // the server's error, if any
	step        int   // 1: failed on client-first, 2: on client-final
	clientErr   error // the client rejecting the server's final message
}

// runSCRAM drives a full exchange between an xdg-go/scram client
// conversation and sess. initial chooses whether client-first goes in
// <auth/> or after an empty challenge.
func runSCRAM(t testing.TB, sess Session, cc *scram.ClientConversation, initial bool) transcript {
	t.Helper()
	var tr transcript
	c1, err := cc.Step("")
	if err != nil {
		t.Fatalf("client-first: %v", err)
	}
	if !initial {
		ch, done, err := sess.Next(nil)
		if err != nil || done || ch == nil || len(ch) != 0 {
			t.Fatalf("no initial response: got %q, %v, %v; want empty challenge", ch, done, err)
		}
	}
	s1, done, err := sess.Next([]byte(c1))
	if err != nil {
		tr.err, tr.step = err, 1
		return tr
	}
	if done {
		t.Fatal("done after client-first")
	}
	tr.serverFirst = string(s1)
	c2, err := cc.Step(string(s1))
	if err != nil {
		t.Fatalf("client-final: %v", err)
	}
	s2, done, err := sess.Next([]byte(c2))
	if err != nil {
		tr.err, tr.step = err, 2
		return tr
	}
	if !done {
		t.Fatal("not done after client-final")
	}
	if _, err := cc.Step(string(s2)); err != nil || !cc.Valid() {
		tr.clientErr = errors.Join(err, errors.New("client did not validate server signature"))
	}
	return tr
}

func condition(err error) string {
	var f *Failure
	if errors.As(err, &f) {
		return f.Condition
	}
	if err == nil {
		return ""
	}
	return "non-Failure error: " + err.Error()
}

func mustStart(t testing.TB, mech string, env Env) Session {
	t.Helper()
	s, err := Start(mech, env)
	if err != nil {
		t.Fatalf("Start(%s): %v", mech, err)
	}
	if s.Name() != mech {
		t.Fatalf("Name() = %q, want %q", s.Name(), mech)
	}
	return s
}
