package sasl

import (
	"bytes"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"slices"
	"testing"
	"time"

	"parley/internal/storage"
)

// clientHT computes what an XEP-0484 client sends and expects, keyed with
// the token text itself (not its hash), as clients do.
func clientHT(user, token, label string, cb []byte) []byte {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte(label))
	m.Write(cb)
	if label == "Responder" {
		return m.Sum(nil)
	}
	return append([]byte(user+"\x00"), m.Sum(nil)...)
}

type htFixture struct {
	env    Env
	token  string
	stored storage.FASTToken
	cb     map[string][]byte // mechanism -> client's binding data
}

func newHTFixture(t *testing.T) *htFixture {
	t.Helper()
	cert := ecdsaCert(t, elliptic.P256())
	srv, cli := tlsPair(t, tls.VersionTLS13, cert)
	exp, err := cli.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	endp := sha256.Sum256(cert.Leaf.Raw)
	tok, hash := NewFASTToken()
	return &htFixture{
		env:   Env{TLS: &srv, ServerCert: cert.Leaf},
		token: tok,
		stored: storage.FASTToken{ID: "t1", ClientID: "c", Mechanism: HTSHA256None, Hash: hash,
			IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)},
		cb: map[string][]byte{HTSHA256None: nil, HTSHA256Expr: exp, HTSHA256Endp: endp[:]},
	}
}

func (f *htFixture) fast(toks ...storage.FASTToken) FASTEnv {
	return FASTEnv{Tokens: func(user string) ([]storage.FASTToken, error) {
		if user != testUser {
			return nil, storage.ErrNotFound
		}
		return toks, nil
	}}
}

func TestNewFASTTokenHashIsHMACKey(t *testing.T) {
	tok, hash := NewFASTToken()
	if len(tok) <= sha256.BlockSize {
		t.Fatalf("token of %d characters: must exceed the 64-byte block for the stored hash to key HMAC", len(tok))
	}
	if h := sha256.Sum256([]byte(tok)); !bytes.Equal(h[:], hash) {
		t.Fatal("hash is not SHA-256 of the token")
	}
	m := hmac.New(sha256.New, []byte(tok))
	m.Write([]byte("Initiatorcb"))
	if !hmac.Equal(htMAC(hash, "Initiator", []byte("cb")), m.Sum(nil)) {
		t.Fatal("HMAC keyed with the hash differs from HMAC keyed with the token")
	}
	tok2, _ := NewFASTToken()
	if tok == tok2 {
		t.Fatal("two tokens are equal")
	}
}

func TestHTMechanismsOffered(t *testing.T) {
	f := newHTFixture(t)
	got := HTMechanisms(f.env.TLS, f.env.ServerCert)
	if !slices.Equal(got, []string{HTSHA256Expr, HTSHA256Endp, HTSHA256None}) {
		t.Fatalf("offered %v", got)
	}
	if got := HTMechanisms(nil, nil); !slices.Equal(got, []string{HTSHA256None}) {
		t.Fatalf("without TLS %v", got)
	}
	if _, err := StartFAST(HTSHA256None, Env{}, f.fast()); condition(err) != CondEncryptionRequired {
		t.Fatalf("HT without TLS: %v", err)
	}
	for _, m := range []string{HTSHA256Uniq, "HT-SHA-1-NONE", "PLAIN", ""} {
		if _, err := StartFAST(m, f.env, f.fast()); condition(err) != CondInvalidMechanism {
			t.Fatalf("StartFAST(%q): %v", m, err)
		}
	}
}

func TestHTSuccessEveryBinding(t *testing.T) {
	f := newHTFixture(t)
	for _, mech := range []string{HTSHA256None, HTSHA256Endp, HTSHA256Expr} {
		t.Run(mech, func(t *testing.T) {
			stored := f.stored
			stored.Mechanism = mech
			s, err := StartFAST(mech, f.env, f.fast(stored))
			if err != nil {
				t.Fatal(err)
			}
			out, done, err := s.Next(clientHT(testUser, f.token, "Initiator", f.cb[mech]))
			if err != nil || !done {
				t.Fatalf("Next: done=%v err=%v", done, err)
			}
			if !hmac.Equal(out, clientHT("", f.token, "Responder", f.cb[mech])) {
				t.Fatal("server's Responder hash is not what the client expects")
			}
			if s.Username() != testUser || s.Token().ID != "t1" || s.Authzid() != "" {
				t.Fatalf("username %q token %q", s.Username(), s.Token().ID)
			}
			if _, _, err := s.Next(nil); condition(err) != CondMalformedRequest {
				t.Fatalf("second Next: %v", err)
			}
		})
	}
}

func TestHTFailures(t *testing.T) {
	f := newHTFixture(t)
	other, otherHash := NewFASTToken()
	good := clientHT(testUser, f.token, "Initiator", nil)
	expired := f.stored
	expired.ExpiresAt = time.Now().Add(-time.Second)
	endpToken := f.stored
	endpToken.Mechanism = HTSHA256Endp
	// The rotation case: the client's other slot holds another token.
	second := f.stored
	second.ID, second.Hash = "t2", otherHash

	cases := []struct {
		name string
		mech string
		toks []storage.FASTToken
		msg  []byte
		cond string
		neg  bool
	}{
		{"wrong token", HTSHA256None, []storage.FASTToken{f.stored}, clientHT(testUser, other, "Initiator", nil), CondNotAuthorized, false},
		{"unknown user", HTSHA256None, []storage.FASTToken{f.stored}, clientHT("nobody", f.token, "Initiator", nil), CondNotAuthorized, false},
		{"revoked (no tokens)", HTSHA256None, nil, good, CondNotAuthorized, false},
		{"token of another mechanism", HTSHA256None, []storage.FASTToken{endpToken}, good, CondNotAuthorized, false},
		{"binding of another connection", HTSHA256Expr, []storage.FASTToken{{ID: "x", Mechanism: HTSHA256Expr, Hash: f.stored.Hash, ExpiresAt: time.Now().Add(time.Hour)}},
			clientHT(testUser, f.token, "Initiator", []byte("0123456789abcdef0123456789abcdef")), CondNotAuthorized, false},
		{"expired", HTSHA256None, []storage.FASTToken{expired}, good, CondCredentialsExpired, false},
		{"responder hash replayed as initiator", HTSHA256None, []storage.FASTToken{f.stored},
			append([]byte(testUser+"\x00"), clientHT("", f.token, "Responder", nil)...), CondNotAuthorized, false},
		{"no message", HTSHA256None, []storage.FASTToken{f.stored}, nil, CondMalformedRequest, true},
		{"no NUL", HTSHA256None, []storage.FASTToken{f.stored}, []byte(testUser), CondMalformedRequest, true},
		{"empty authcid", HTSHA256None, []storage.FASTToken{f.stored}, good[len(testUser):], CondMalformedRequest, true},
		{"short hash", HTSHA256None, []storage.FASTToken{f.stored}, good[:len(good)-1], CondMalformedRequest, true},
		{"bad UTF-8", HTSHA256None, []storage.FASTToken{f.stored}, append([]byte{0xff, 0}, good[len(testUser)+1:]...), CondMalformedRequest, true},
		{"oversized", HTSHA256None, []storage.FASTToken{f.stored}, bytes.Repeat([]byte("a"), maxHTMessage+1), CondMalformedRequest, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := StartFAST(tc.mech, f.env, f.fast(tc.toks...))
			if err != nil {
				t.Fatal(err)
			}
			_, done, err := s.Next(tc.msg)
			var fl *Failure
			if done || !errors.As(err, &fl) || fl.Condition != tc.cond || fl.Negotiation != tc.neg {
				t.Fatalf("done=%v err=%#v, want %s (negotiation %v)", done, err, tc.cond, tc.neg)
			}
			if fl.Text != "" && tc.cond == CondNotAuthorized {
				t.Fatalf("failure text %q reveals why", fl.Text)
			}
		})
	}
	t.Run("second slot matches", func(t *testing.T) {
		s, _ := StartFAST(HTSHA256None, f.env, f.fast(second, f.stored))
		if _, done, err := s.Next(good); !done || err != nil || s.Token().ID != "t1" {
			t.Fatalf("done=%v err=%v token %q", done, err, s.Token().ID)
		}
	})
	t.Run("storage down", func(t *testing.T) {
		s, _ := StartFAST(HTSHA256None, f.env, FASTEnv{Tokens: func(string) ([]storage.FASTToken, error) { return nil, errStorageDown }})
		if _, _, err := s.Next(good); condition(err) != CondTemporaryAuthFailure {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("normalizer refuses", func(t *testing.T) {
		env := f.env
		called := false
		env.Normalize = func(string) (string, error) { return "", errors.New("bad") }
		s, _ := StartFAST(HTSHA256None, env, FASTEnv{Tokens: func(string) ([]storage.FASTToken, error) { called = true; return nil, nil }})
		if _, _, err := s.Next(good); condition(err) != CondNotAuthorized || called {
			t.Fatalf("err %v, lookup called %v", err, called)
		}
	})
}
