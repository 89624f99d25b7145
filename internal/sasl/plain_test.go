package sasl

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/tls"
	"errors"
	"strings"
	"testing"
)

func plainMsg(parts ...string) []byte { return []byte(strings.Join(parts, "\x00")) }

func TestPLAIN(t *testing.T) {
	cert := ecdsaCert(t, elliptic.P256())
	srvState, _ := tlsPair(t, tls.VersionTLS13, cert)

	tests := []struct {
		name      string
		msgs      [][]byte // fed in order; the last one decides
		wantCond  string
		wantUser  string
		wantAuthz string
	}{
		{name: "success", msgs: [][]byte{plainMsg("", testUser, testPassword)}, wantUser: testUser},
		{name: "success after empty challenge", msgs: [][]byte{nil, plainMsg("", testUser, testPassword)}, wantUser: testUser},
		{name: "authzid reported", msgs: [][]byte{plainMsg("juliet@capulet.lit", testUser, testPassword)}, wantUser: testUser, wantAuthz: "juliet@capulet.lit"},
		{name: "foreign authzid only reported", msgs: [][]byte{plainMsg("romeo@montague.lit", testUser, testPassword)}, wantUser: testUser, wantAuthz: "romeo@montague.lit"},
		{name: "SASLprep of password", msgs: [][]byte{plainMsg("", testUser, "r0m3o!pencil\u00AD")}, wantUser: testUser}, // soft hyphen maps to nothing
		{name: "wrong password", msgs: [][]byte{plainMsg("", testUser, "nope")}, wantCond: CondNotAuthorized},
		{name: "unknown user", msgs: [][]byte{plainMsg("", "romeo", testPassword)}, wantCond: CondNotAuthorized},
		{name: "storage error", msgs: [][]byte{plainMsg("", "broken", testPassword)}, wantCond: CondTemporaryAuthFailure},
		{name: "password SASLprep rejects", msgs: [][]byte{plainMsg("", testUser, "a\u0007b")}, wantCond: CondNotAuthorized},
		{name: "empty initial response", msgs: [][]byte{{}}, wantCond: CondMalformedRequest},
		{name: "empty response after challenge", msgs: [][]byte{nil, {}}, wantCond: CondMalformedRequest},
		{name: "nil twice", msgs: [][]byte{nil, nil}, wantCond: CondMalformedRequest},
		{name: "no NUL", msgs: [][]byte{[]byte("juliet")}, wantCond: CondMalformedRequest},
		{name: "one NUL", msgs: [][]byte{plainMsg(testUser, testPassword)}, wantCond: CondMalformedRequest},
		{name: "three NULs", msgs: [][]byte{plainMsg("", testUser, testPassword, "")}, wantCond: CondMalformedRequest},
		{name: "empty authcid", msgs: [][]byte{plainMsg("", "", testPassword)}, wantCond: CondMalformedRequest},
		{name: "empty password", msgs: [][]byte{plainMsg("", testUser, "")}, wantCond: CondMalformedRequest},
		{name: "invalid UTF-8", msgs: [][]byte{plainMsg("", "jul\xffiet", testPassword)}, wantCond: CondMalformedRequest},
		{name: "too long", msgs: [][]byte{plainMsg("", testUser, strings.Repeat("a", 5000))}, wantCond: CondMalformedRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			env := testEnv(t)
			env.TLS = &srvState
			sess := mustStart(t, Plain, env)
			var (
				out  []byte
				done bool
				err  error
			)
			for i, m := range tc.msgs {
				out, done, err = sess.Next(m)
				if i < len(tc.msgs)-1 {
					if err != nil || done || out == nil || len(out) != 0 {
						t.Fatalf("message %d: got %q, %v, %v; want empty challenge", i, out, done, err)
					}
				}
			}
			if got := condition(err); got != tc.wantCond {
				t.Fatalf("got %q (%v), want %q", got, err, tc.wantCond)
			}
			if tc.wantCond != "" {
				if _, _, err := sess.Next(plainMsg("", testUser, testPassword)); err == nil {
					t.Fatal("session continued after failure")
				}
				return
			}
			if !done || out != nil {
				t.Fatalf("done=%v out=%q, want done with no additional data", done, out)
			}
			if sess.Username() != tc.wantUser || sess.Authzid() != tc.wantAuthz {
				t.Fatalf("Username, Authzid = %q, %q; want %q, %q", sess.Username(), sess.Authzid(), tc.wantUser, tc.wantAuthz)
			}
		})
	}
}

func TestPLAINUnknownAndWrongLookAlike(t *testing.T) {
	env := testEnv(t)
	env.AllowPlainWithoutTLS = true
	run := func(user, pass string) error {
		_, _, err := mustStart(t, Plain, env).Next(plainMsg("", user, pass))
		return err
	}
	a, b := run(testUser, "nope"), run("romeo", "nope")
	if a == nil || b == nil || a.Error() != b.Error() {
		t.Fatalf("wrong password %v, unknown user %v", a, b)
	}
}

func TestPLAINNormalize(t *testing.T) {
	env := testEnv(t)
	env.AllowPlainWithoutTLS = true
	env.Normalize = func(s string) (string, error) { return strings.ToLower(s), nil }
	sess := mustStart(t, Plain, env)
	if _, done, err := sess.Next(plainMsg("", "Juliet", testPassword)); err != nil || !done {
		t.Fatal(err)
	}
	if sess.Username() != testUser {
		t.Fatalf("Username = %q", sess.Username())
	}
}

func TestParsePlainKeepsBytes(t *testing.T) {
	z, c, p, f := parsePlain([]byte("a\x00b\x00c,d=e"))
	if f != nil || z != "a" || c != "b" || p != "c,d=e" {
		t.Fatalf("%q %q %q %v", z, c, p, f)
	}
	if _, _, _, f := parsePlain(bytes.Repeat([]byte{0}, 2)); f == nil {
		t.Fatal("accepted empty authcid and password")
	}
}

func TestExternal(t *testing.T) {
	env := Env{External: func(_ context.Context, authzid string) (string, error) {
		switch authzid {
		case "", "alice@example.org":
			return "alice", nil
		default:
			return "", NewFailure(CondInvalidAuthzid, "")
		}
	}}
	if _, err := Start(External, Env{}); err == nil {
		t.Fatal("EXTERNAL started without an External hook")
	}
	// Initial response "=" (empty).
	s, _ := Start(External, env)
	if _, done, err := s.Next([]byte{}); !done || err != nil || s.Username() != "alice" {
		t.Fatalf("empty authzid: done=%v err=%v user=%q", done, err, s.Username())
	}
	// No initial response: empty challenge, then the authzid.
	s, _ = Start(External, env)
	if ch, done, err := s.Next(nil); done || err != nil || len(ch) != 0 {
		t.Fatalf("want empty challenge, got %q %v %v", ch, done, err)
	}
	if _, done, err := s.Next([]byte("alice@example.org")); !done || err != nil || s.Authzid() != "alice@example.org" {
		t.Fatalf("authzid: %v %v", done, err)
	}
	s, _ = Start(External, env)
	_, _, err := s.Next([]byte("bob@example.org"))
	var f *Failure
	if !errors.As(err, &f) || f.Condition != CondInvalidAuthzid {
		t.Fatalf("wrong authzid: %v", err)
	}
	s, _ = Start(External, env)
	if _, _, err := s.Next([]byte{0xff}); err == nil {
		t.Fatal("invalid UTF-8 accepted")
	}
}

func TestPlainWithCheckPassword(t *testing.T) {
	tlsState := &tls.ConnectionState{HandshakeComplete: true}
	env := Env{TLS: tlsState, CheckPassword: func(_ context.Context, user, pass string) error {
		switch {
		case user == "down":
			return NewFailure(CondTemporaryAuthFailure, "")
		case user == "alice" && pass == "secret":
			return nil
		}
		return NewFailure(CondNotAuthorized, "")
	}}
	for _, name := range []string{SCRAMSHA256, SCRAMSHA1Plus, "DIGEST-MD5"} {
		if _, err := Start(name, env); err == nil {
			t.Errorf("%s started with an external password check", name)
		}
	}
	if got := OfferedPasswordCheck(tlsState, false); len(got) != 1 || got[0] != Plain {
		t.Fatalf("offered %v", got)
	}
	if got := OfferedPasswordCheck(nil, false); len(got) != 0 {
		t.Fatalf("offered without TLS: %v", got)
	}
	for _, tc := range []struct{ msg, cond, user string }{
		{"\x00alice\x00secret", "", "alice"},
		{"\x00alice\x00wrong", CondNotAuthorized, ""},
		{"\x00down\x00x", CondTemporaryAuthFailure, ""},
	} {
		s, err := Start(Plain, env)
		if err != nil {
			t.Fatal(err)
		}
		_, done, err := s.Next([]byte(tc.msg))
		var f *Failure
		switch {
		case tc.cond == "" && (err != nil || !done || s.Username() != tc.user):
			t.Errorf("%q: %v %v %q", tc.msg, done, err, s.Username())
		case tc.cond != "" && (!errors.As(err, &f) || f.Condition != tc.cond):
			t.Errorf("%q: got %v, want %s", tc.msg, err, tc.cond)
		}
	}
}
