package sasl

import (
	"context"
	"crypto/elliptic"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"parley/internal/gssapi"
	"parley/internal/gssapi/krbtest"
)

const krbRealm = "PARLEY.TEST"

// gssEnv is an Env over TLS with a Kerberos acceptor whose principals of
// krbRealm without instance map to their name, except "nobody".
func gssEnv(t *testing.T) (Env, *krbtest.Realm) {
	t.Helper()
	r := krbtest.New(t, krbRealm, "xmpp/localhost", 0)
	a, err := gssapi.New(gssapi.Config{Keytab: r.Keytab, Principal: "xmpp/localhost", MaxTokenBytes: 1 << 16, MaxClockSkew: 5 * time.Minute, ReplayCacheSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	cert := ecdsaCert(t, elliptic.P256())
	st, _ := tlsPair(t, tls.VersionTLS13, cert)
	env := testEnv(t)
	env.TLS = &st
	env.GSSAPI = a
	env.RemoteIP = net.ParseIP("127.0.0.1")
	env.MapPrincipal = func(_ context.Context, p gssapi.Principal) (string, error) {
		if p.Realm != krbRealm || len(p.Components) != 1 || p.Components[0] == "nobody" {
			return "", fail(CondNotAuthorized, "")
		}
		return p.Components[0], nil
	}
	return env, r
}

// gssLogin runs the RFC 4752 exchange as a client would and returns the
// session and the error of the step that failed.
func gssLogin(t *testing.T, env Env, tok []byte, in *krbtest.Initiator, mutual bool, final []byte) (Session, error) {
	t.Helper()
	sess, err := Start(GSSAPI, env)
	if err != nil {
		t.Fatal(err)
	}
	out, done, err := sess.Next(tok)
	if err != nil {
		return sess, err
	}
	if done {
		t.Fatal("done after the first token")
	}
	if mutual {
		in.CheckAPRep(t, out)
		if out, _, err = sess.Next([]byte{}); err != nil {
			return sess, err
		}
	}
	if got := in.Unwrap(t, out); string(got) != "\x01\x00\x00\x00" {
		t.Fatalf("server security layers %x, want 01000000 (none, size 0)", got)
	}
	out, done, err = sess.Next(in.Wrap(t, final))
	if err != nil {
		return sess, err
	}
	if !done || len(out) != 0 {
		t.Fatalf("final step: done=%v out=%x", done, out)
	}
	return sess, nil
}

func TestGSSAPILogin(t *testing.T) {
	env, r := gssEnv(t)
	for _, tc := range []struct {
		name, authzid, wantAuthzid string
		mutual                     bool
	}{
		{"mutual, no authzid", "", "", true},
		{"no mutual", "", "", false},
		{"authzid is the bare JID", "alice@localhost", "alice@localhost", true},
		{"authzid repeats the username", "alice", "", true},
		{"authzid repeats the principal", "alice@" + krbRealm, "", true},
		{"authzid names someone else", "bob@localhost", "bob@localhost", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, in := r.Token(t, krbtest.Options{Client: "alice", Mutual: tc.mutual})
			sess, err := gssLogin(t, env, tok, in, tc.mutual, append([]byte{1, 0, 0, 0}, tc.authzid...))
			if err != nil {
				t.Fatal(err)
			}
			if sess.Username() != "alice" || sess.Authzid() != tc.wantAuthzid {
				t.Fatalf("username %q authzid %q, want alice / %q", sess.Username(), sess.Authzid(), tc.wantAuthzid)
			}
		})
	}
}

func TestGSSAPIFailures(t *testing.T) {
	env, r := gssEnv(t)
	check := func(name string, err error, cond string, negotiation bool) {
		t.Helper()
		var f *Failure
		if !errors.As(err, &f) || f.Condition != cond || f.Negotiation != negotiation {
			t.Errorf("%s: %v (negotiation %v), want %s (negotiation %v)", name, err, f != nil && f.Negotiation, cond, negotiation)
		}
	}
	// Garbage and empty tokens: malformed-request, not a guess.
	for name, tok := range map[string][]byte{"garbage": []byte("GET / HTTP/1.1"), "empty": {}, "huge": make([]byte, 1<<17)} {
		sess := mustStart(t, GSSAPI, env)
		_, _, err := sess.Next(tok)
		check(name, err, CondMalformedRequest, true)
		if _, _, err := sess.Next(tok); err == nil {
			t.Errorf("%s: session goes on after failing", name)
		}
	}
	// No initial response: an empty challenge first.
	sess := mustStart(t, GSSAPI, env)
	if out, done, err := sess.Next(nil); err != nil || done || len(out) != 0 {
		t.Fatalf("no initial response: %x %v %v", out, done, err)
	}
	// A principal without an account, one of another realm.
	tok, in := r.Token(t, krbtest.Options{Client: "nobody", Mutual: true})
	_, err := gssLogin(t, env, tok, in, true, []byte{1, 0, 0, 0})
	check("unmapped principal", err, CondNotAuthorized, false)
	tok, in = r.Token(t, krbtest.Options{Client: "alice", ClientRealm: "EVIL.TEST", Mutual: true})
	_, err = gssLogin(t, env, tok, in, true, []byte{1, 0, 0, 0})
	check("other realm", err, CondNotAuthorized, false)
	// An expired ticket.
	tok, in = r.Token(t, krbtest.Options{Client: "alice", Expired: true})
	_, err = gssLogin(t, env, tok, in, false, []byte{1, 0, 0, 0})
	check("expired", err, CondNotAuthorized, false)
	// Choosing a layer we did not offer, or a short message.
	tok, in = r.Token(t, krbtest.Options{Client: "alice", Mutual: true})
	_, err = gssLogin(t, env, tok, in, true, []byte{4, 0, 16, 0})
	check("confidentiality layer", err, CondMalformedRequest, false)
	tok, in = r.Token(t, krbtest.Options{Client: "alice", Mutual: true})
	_, err = gssLogin(t, env, tok, in, true, []byte{1, 0})
	check("short layer message", err, CondMalformedRequest, false)
	tok, in = r.Token(t, krbtest.Options{Client: "alice", Mutual: true})
	_, err = gssLogin(t, env, tok, in, true, append([]byte{1, 0, 0, 0}, 0xff, 0xfe))
	check("authzid not UTF-8", err, CondInvalidAuthzid, false)
	// A response after the AP-REP that is not empty.
	tok, _ = r.Token(t, krbtest.Options{Client: "alice", Mutual: true})
	sess = mustStart(t, GSSAPI, env)
	if _, _, err := sess.Next(tok); err != nil {
		t.Fatal(err)
	}
	_, _, err = sess.Next([]byte("more"))
	check("non-empty response after AP-REP", err, CondMalformedRequest, false)
	// A forged final message (not a wrap token under the session key).
	tok, _ = r.Token(t, krbtest.Options{Client: "alice"})
	sess = mustStart(t, GSSAPI, env)
	if _, _, err := sess.Next(tok); err != nil {
		t.Fatal(err)
	}
	_, _, err = sess.Next(append([]byte{5, 4, 0, 0xff, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0}, strings.Repeat("x", 12)...))
	check("forged wrap token", err, CondNotAuthorized, false)
	// A replayed initial token.
	tok, in = r.Token(t, krbtest.Options{Client: "alice", Mutual: true})
	if _, err := gssLogin(t, env, tok, in, true, []byte{1, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	sess = mustStart(t, GSSAPI, env)
	_, _, err = sess.Next(tok)
	check("replay", err, CondNotAuthorized, false)
}

func TestGSSAPIOffered(t *testing.T) {
	env, _ := gssEnv(t)
	if !env.OfferGSSAPI() {
		t.Fatal("not offered over TLS with an acceptor")
	}
	clear := env
	clear.TLS = nil
	if clear.OfferGSSAPI() {
		t.Fatal("offered on a cleartext stream")
	}
	if _, err := Start(GSSAPI, clear); condition(err) != CondInvalidMechanism {
		t.Fatalf("Start on a cleartext stream: %v", err)
	}
	clear.AllowPlainWithoutTLS = true
	if !clear.OfferGSSAPI() {
		t.Fatal("not offered where cleartext authentication is allowed")
	}
	none := env
	none.GSSAPI = nil
	if _, err := Start(GSSAPI, none); condition(err) != CondInvalidMechanism {
		t.Fatalf("Start without an acceptor: %v", err)
	}
	policy := env
	policy.Allowed = []string{Plain}
	if policy.OfferGSSAPI() {
		t.Fatal("offered although the host's policy leaves it out")
	}
}
