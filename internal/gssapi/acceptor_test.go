package gssapi_test

import (
	"bytes"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"

	"parley/internal/gssapi"
	"parley/internal/gssapi/krbtest"
)

const realm = "PARLEY.TEST"

func newAcceptor(t *testing.T, r *krbtest.Realm, cacheSize int) *gssapi.Acceptor {
	t.Helper()
	a, err := gssapi.New(gssapi.Config{Keytab: r.Keytab, Principal: "xmpp/localhost", MaxTokenBytes: 64 * 1024, MaxClockSkew: 5 * time.Minute, ReplayCacheSize: cacheSize})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

var local = net.ParseIP("127.0.0.1")

func TestAcceptMutualAndWrap(t *testing.T) {
	for _, et := range []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA256_128} {
		for _, noSubkey := range []bool{false, true} {
			r := krbtest.New(t, realm, "xmpp/localhost", et)
			a := newAcceptor(t, r, 100)
			tok, in := r.Token(t, krbtest.Options{Client: "alice", Mutual: true, NoSubkey: noSubkey})
			ctx, rep, err := a.Accept(tok, local)
			if err != nil {
				t.Fatalf("etype %d: %v", et, err)
			}
			if ctx.Principal.String() != "alice@"+realm || !ctx.Mutual || rep == nil {
				t.Fatalf("etype %d: principal %s mutual %v rep %d bytes", et, ctx.Principal, ctx.Mutual, len(rep))
			}
			in.CheckAPRep(t, rep)
			w, err := ctx.Wrap([]byte{1, 0, 0, 0})
			if err != nil {
				t.Fatal(err)
			}
			if got := in.Unwrap(t, w); !bytes.Equal(got, []byte{1, 0, 0, 0}) {
				t.Fatalf("wrap payload %x", got)
			}
			got, err := ctx.Unwrap(in.Wrap(t, []byte("\x01\x00\x00\x00alice@localhost")))
			if err != nil || string(got) != "\x01\x00\x00\x00alice@localhost" {
				t.Fatalf("unwrap: %q %v", got, err)
			}
			// A flipped byte anywhere fails the checksum.
			bad := in.Wrap(t, []byte("\x01\x00\x00\x00alice@localhost"))
			bad[20] ^= 1
			if _, err := ctx.Unwrap(bad); !errors.Is(err, gssapi.ErrRejected) {
				t.Fatalf("tampered wrap token: %v", err)
			}
			// Our own token reflected back is refused (acceptor flag).
			if _, err := ctx.Unwrap(w); !errors.Is(err, gssapi.ErrRejected) {
				t.Fatalf("reflected acceptor token: %v", err)
			}
		}
	}
}

func TestAcceptWithoutMutual(t *testing.T) {
	r := krbtest.New(t, realm, "xmpp/localhost", 0)
	a := newAcceptor(t, r, 100)
	tok, in := r.Token(t, krbtest.Options{Client: "bob"})
	ctx, rep, err := a.Accept(tok, local)
	if err != nil || rep != nil || ctx.Mutual {
		t.Fatalf("accept: %v rep=%x mutual=%v", err, rep, ctx != nil && ctx.Mutual)
	}
	w, _ := ctx.Wrap([]byte{1, 0, 0, 0})
	in.Unwrap(t, w)
}

func TestAcceptRefusals(t *testing.T) {
	r := krbtest.New(t, realm, "xmpp/localhost", 0)
	other := krbtest.New(t, realm, "xmpp/localhost", 0) // same name, other key
	a := newAcceptor(t, r, 100)
	good, _ := r.Token(t, krbtest.Options{Client: "alice"})
	foreign, _ := other.Token(t, krbtest.Options{Client: "alice"})
	wrongService, _ := r.Token(t, krbtest.Options{Client: "alice", Service: "host/localhost"})
	expired, _ := r.Token(t, krbtest.Options{Client: "alice", Expired: true})
	skewed, _ := r.Token(t, krbtest.Options{Client: "alice", ClockOffset: time.Hour})
	noChecksum, _ := r.Token(t, krbtest.Options{Client: "alice", NoChecksum: true})
	truncated := good[:len(good)-10]
	otherOID := append([]byte{}, good...)
	otherOID[5] ^= 0x01 // inside the OID
	for _, tc := range []struct {
		name string
		tok  []byte
		want error
	}{
		{"empty", nil, gssapi.ErrDefective},
		{"garbage", []byte("this is not a token at all"), gssapi.ErrDefective},
		{"truncated", truncated, gssapi.ErrDefective},
		{"other mechanism", otherOID, gssapi.ErrDefective},
		{"AP-REP instead of AP-REQ", krbtest.Frame([]byte{2, 0}, good[17:]), gssapi.ErrDefective},
		{"oversized", append(bytes.Repeat([]byte{0}, 64*1024), good...), gssapi.ErrDefective},
		{"ticket from another KDC", foreign, gssapi.ErrRejected},
		{"ticket for another service", wrongService, gssapi.ErrRejected},
		{"expired ticket", expired, gssapi.ErrRejected},
		{"skewed clock", skewed, gssapi.ErrRejected},
		{"no GSS-API checksum", noChecksum, gssapi.ErrRejected},
	} {
		if _, _, err := a.Accept(tc.tok, local); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The good token still works once, and not twice (replay).
	if _, _, err := a.Accept(good, local); err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Accept(good, local); !errors.Is(err, gssapi.ErrRejected) {
		t.Fatalf("replayed token: %v", err)
	}
}

func TestReplayCacheBound(t *testing.T) {
	r := krbtest.New(t, realm, "xmpp/localhost", 0)
	a := newAcceptor(t, r, 2)
	for i := 0; i < 2; i++ {
		tok, _ := r.Token(t, krbtest.Options{Client: "alice", ClockOffset: time.Duration(i) * time.Second})
		if _, _, err := a.Accept(tok, local); err != nil {
			t.Fatal(err)
		}
	}
	tok, _ := r.Token(t, krbtest.Options{Client: "alice", ClockOffset: 3 * time.Second})
	if _, _, err := a.Accept(tok, local); !errors.Is(err, gssapi.ErrUnavailable) {
		t.Fatalf("full replay cache: %v, want ErrUnavailable", err)
	}
}

func TestKeytabProblems(t *testing.T) {
	r := krbtest.New(t, realm, "xmpp/localhost", 0)
	cfg := gssapi.Config{Keytab: r.Keytab, Principal: "xmpp/elsewhere", MaxTokenBytes: 1 << 16, MaxClockSkew: time.Minute, ReplayCacheSize: 10}
	if _, err := gssapi.New(cfg); err == nil {
		t.Fatal("keytab without the principal accepted")
	}
	cfg.Principal, cfg.Keytab = "xmpp/localhost", r.Keytab+".missing"
	if _, err := gssapi.New(cfg); err == nil {
		t.Fatal("missing keytab accepted")
	}
	// A rotated keytab is picked up without a restart; a broken one
	// keeps the old keys in use and is reported.
	cfg.Keytab = r.Keytab
	a, err := gssapi.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	rotated := krbtest.New(t, realm, "xmpp/localhost", 0)
	b, _ := os.ReadFile(rotated.Keytab)
	if err := os.WriteFile(r.Keytab, b, 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	_ = os.Chtimes(r.Keytab, later, later)
	tok, _ := rotated.Token(t, krbtest.Options{Client: "alice"})
	if _, _, err := a.Accept(tok, local); err != nil {
		t.Fatalf("token for the rotated key: %v", err)
	}
	if err := os.WriteFile(r.Keytab, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	tok, _ = rotated.Token(t, krbtest.Options{Client: "alice", ClockOffset: time.Second})
	if _, _, err := a.Accept(tok, local); err != nil {
		t.Fatalf("broken keytab file should keep the previous keys: %v", err)
	}
	if a.KeytabProblem() == nil {
		t.Fatal("broken keytab not reported")
	}
}

func FuzzAccept(f *testing.F) {
	r := krbtest.New(f, realm, "xmpp/localhost", 0)
	a, err := gssapi.New(gssapi.Config{Keytab: r.Keytab, Principal: "xmpp/localhost", MaxTokenBytes: 1 << 16, MaxClockSkew: time.Minute, ReplayCacheSize: 1 << 16})
	if err != nil {
		f.Fatal(err)
	}
	tok, _ := r.Token(f, krbtest.Options{Client: "alice", Mutual: true})
	f.Add(tok)
	f.Add([]byte{0x60, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = a.Accept(b, local) // must not panic
	})
}
