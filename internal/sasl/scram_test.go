package sasl

import (
	"bytes"
	"context"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/xdg-go/scram"

	"parley/internal/storage"
)

var nonPlusSCRAM = []string{SCRAMSHA1, SCRAMSHA256, SCRAMSHA512}

func TestSCRAMWithoutTLS(t *testing.T) {
	for _, mech := range nonPlusSCRAM {
		tests := []struct {
			name      string
			user      string
			password  string
			authzid   string
			y         bool // client supports binding but saw no -PLUS
			initial   bool
			wantCond  string
			wantStep  int
			wantAuthz string
		}{
			{name: "success", user: testUser, password: testPassword, initial: true},
			{name: "success after empty challenge", user: testUser, password: testPassword},
			{name: "success with authzid", user: testUser, password: testPassword, authzid: "juliet@capulet.lit", initial: true, wantAuthz: "juliet@capulet.lit"},
			{name: "y flag without -PLUS offered", user: testUser, password: testPassword, y: true, initial: true},
			{name: "wrong password", user: testUser, password: "nope", initial: true, wantCond: CondNotAuthorized, wantStep: 2},
			{name: "unknown user", user: "romeo", password: testPassword, initial: true, wantCond: CondNotAuthorized, wantStep: 2},
			{name: "storage error", user: "broken", password: testPassword, initial: true, wantCond: CondTemporaryAuthFailure, wantStep: 1},
		}
		for _, tc := range tests {
			t.Run(mech+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				sess := mustStart(t, mech, testEnv(t))
				client, err := scramHash(t, mech).NewClient(tc.user, tc.password, tc.authzid)
				if err != nil {
					t.Fatal(err)
				}
				cc := client.NewConversation()
				if tc.y {
					cc = client.NewConversationAdvertisingChannelBinding()
				}
				tr := runSCRAM(t, sess, cc, tc.initial)
				if got := condition(tr.err); got != tc.wantCond || tr.step != tc.wantStep {
					t.Fatalf("got %q at step %d (%v), want %q at step %d", got, tr.step, tr.err, tc.wantCond, tc.wantStep)
				}
				if tc.wantCond != "" {
					return
				}
				if tr.clientErr != nil {
					t.Fatalf("client rejected server-final: %v", tr.clientErr)
				}
				if sess.Username() != tc.user || sess.Authzid() != tc.wantAuthz {
					t.Fatalf("Username, Authzid = %q, %q; want %q, %q", sess.Username(), sess.Authzid(), tc.user, tc.wantAuthz)
				}
			})
		}
	}
}

var tlsVersions = []struct {
	name string
	v    uint16
}{{"TLS1.3", tls.VersionTLS13}, {"TLS1.2", tls.VersionTLS12}}

func TestSCRAMPlusOverTLS(t *testing.T) {
	cert := ecdsaCert(t, elliptic.P256())
	for _, ver := range tlsVersions {
		srvState, cliState := tlsPair(t, ver.v, cert)
		// A second connection, to get binding data that is valid but
		// belongs to another channel (what a MITM relaying would have).
		_, otherCli := tlsPair(t, ver.v, ecdsaCert(t, elliptic.P256()))

		exporter, err := scram.NewTLSExporterBinding(&cliState)
		if err != nil {
			t.Fatal(err)
		}
		endpoint, err := scram.NewTLSServerEndpointBinding(&cliState)
		if err != nil {
			t.Fatal(err)
		}
		otherExporter, _ := scram.NewTLSExporterBinding(&otherCli)
		otherEndpoint, _ := scram.NewTLSServerEndpointBinding(&otherCli)

		env := testEnv(t)
		env.TLS = &srvState
		env.ServerCert = cert.Leaf

		for _, mech := range []string{SCRAMSHA1Plus, SCRAMSHA256Plus, SCRAMSHA512Plus} {
			tests := []struct {
				name     string
				cb       scram.ChannelBinding
				password string
				wantCond string
				wantStep int
			}{
				{name: "tls-exporter", cb: exporter, password: testPassword},
				{name: "tls-server-end-point", cb: endpoint, password: testPassword},
				{name: "tls-exporter wrong password", cb: exporter, password: "x", wantCond: CondNotAuthorized, wantStep: 2},
				{name: "tls-exporter of another connection", cb: otherExporter, password: testPassword, wantCond: CondNotAuthorized, wantStep: 2},
				{name: "tls-server-end-point of another certificate", cb: otherEndpoint, password: testPassword, wantCond: CondNotAuthorized, wantStep: 2},
				{name: "tls-unique not supported", cb: scram.NewTLSUniqueBinding([]byte("0123456789ab")), password: testPassword, wantCond: CondNotAuthorized, wantStep: 1},
			}
			for _, tc := range tests {
				t.Run(ver.name+"/"+mech+"/"+tc.name, func(t *testing.T) {
					t.Parallel()
					sess := mustStart(t, mech, env)
					client, err := scramHash(t, mech).NewClient(testUser, tc.password, "")
					if err != nil {
						t.Fatal(err)
					}
					tr := runSCRAM(t, sess, client.NewConversationWithChannelBinding(tc.cb), true)
					if got := condition(tr.err); got != tc.wantCond || tr.step != tc.wantStep {
						t.Fatalf("got %q at step %d (%v), want %q at step %d", got, tr.step, tr.err, tc.wantCond, tc.wantStep)
					}
					if tc.wantCond == "" && (tr.clientErr != nil || sess.Username() != testUser) {
						t.Fatalf("client error %v, username %q", tr.clientErr, sess.Username())
					}
				})
			}
		}
	}
}

// TestSCRAMChannelBindingFlags covers the gs2 flag policy: which flag each
// mechanism variant accepts, and downgrade detection (RFC 5802 §6).
func TestSCRAMChannelBindingFlags(t *testing.T) {
	cert := ecdsaCert(t, elliptic.P256())
	srvState, cliState := tlsPair(t, tls.VersionTLS13, cert)
	exporter, _ := scram.NewTLSExporterBinding(&cliState)

	withTLS := testEnv(t)
	withTLS.TLS = &srvState
	withTLS.ServerCert = cert.Leaf

	// TLS without any channel binding type: a state not produced by a
	// handshake cannot export keying material, and without ServerCert
	// there is no tls-server-end-point. (crypto/tls cannot be made to
	// negotiate TLS 1.2 without extended master secret, the real-world
	// case.)
	noCB := testEnv(t)
	noCB.TLS = &tls.ConnectionState{HandshakeComplete: true, Version: tls.VersionTLS12}

	tests := []struct {
		name     string
		mech     string
		env      Env
		conv     func(*scram.Client) *scram.ClientConversation
		wantCond string
	}{
		{"n on non-PLUS over TLS", SCRAMSHA256, withTLS, (*scram.Client).NewConversation, ""},
		{"y on non-PLUS while -PLUS offered is a downgrade", SCRAMSHA256, withTLS, (*scram.Client).NewConversationAdvertisingChannelBinding, CondNotAuthorized},
		{"y on non-PLUS over TLS without bindings", SCRAMSHA256, noCB, (*scram.Client).NewConversationAdvertisingChannelBinding, ""},
		{"p on non-PLUS", SCRAMSHA256, withTLS, func(c *scram.Client) *scram.ClientConversation { return c.NewConversationWithChannelBinding(exporter) }, CondMalformedRequest},
		{"n on PLUS", SCRAMSHA256Plus, withTLS, (*scram.Client).NewConversation, CondMalformedRequest},
		{"y on PLUS", SCRAMSHA256Plus, withTLS, (*scram.Client).NewConversationAdvertisingChannelBinding, CondMalformedRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sess := mustStart(t, tc.mech, tc.env)
			client, _ := scram.SHA256.NewClient(testUser, testPassword, "")
			tr := runSCRAM(t, sess, tc.conv(client), true)
			if got := condition(tr.err); got != tc.wantCond {
				t.Fatalf("got %q (%v), want %q", got, tr.err, tc.wantCond)
			}
			if tc.wantCond != "" && tr.step != 1 {
				t.Fatalf("failed at step %d, want the client-first-message rejected", tr.step)
			}
			if tc.wantCond == "" && tr.clientErr != nil {
				t.Fatal(tr.clientErr)
			}
		})
	}
	if f := new(Failure); !errors.As(runDowngrade(t, withTLS), &f) || f.Text != "server-does-support-channel-binding" {
		t.Fatalf("downgrade failure text = %q", f.Text)
	}
}

func runDowngrade(t *testing.T, env Env) error {
	sess := mustStart(t, SCRAMSHA1, env)
	client, _ := scram.SHA1.NewClient(testUser, testPassword, "")
	return runSCRAM(t, sess, client.NewConversationAdvertisingChannelBinding(), true).err
}

var serverFirstRE = regexp.MustCompile(`^r=([!-+\--~]+),s=([A-Za-z0-9+/=]+),i=([0-9]+)$`)

// serverFirst starts an exchange for user and returns the decoded salt and
// iteration count of the server-first-message.
func serverFirst(t *testing.T, env Env, mech, user string) (salt []byte, iters string) {
	t.Helper()
	sess := mustStart(t, mech, env)
	client, _ := scramHash(t, mech).NewClient(user, "whatever", "")
	c1, _ := client.NewConversation().Step("")
	s1, _, err := sess.Next([]byte(c1))
	if err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	m := serverFirstRE.FindStringSubmatch(string(s1))
	if m == nil {
		t.Fatalf("server-first-message %q has an unexpected shape", s1)
	}
	salt, err = base64.StdEncoding.DecodeString(m[2])
	if err != nil {
		t.Fatal(err)
	}
	return salt, m[3]
}

func TestSCRAMUnknownUserIndistinguishable(t *testing.T) {
	for _, mech := range nonPlusSCRAM {
		t.Run(mech, func(t *testing.T) {
			t.Parallel()
			env := testEnv(t)
			realSalt, realIters := serverFirst(t, env, mech, testUser)
			fake1, fakeIters := serverFirst(t, env, mech, "romeo")
			fake2, _ := serverFirst(t, env, mech, "romeo")
			other, _ := serverFirst(t, env, mech, "tybalt")

			if len(fake1) != len(realSalt) || fakeIters != realIters {
				t.Errorf("fake salt %d bytes / i=%s, real %d bytes / i=%s", len(fake1), fakeIters, len(realSalt), realIters)
			}
			if !bytes.Equal(fake1, fake2) {
				t.Error("fake salt changes between attempts")
			}
			if bytes.Equal(fake1, other) {
				t.Error("two unknown users share a salt")
			}
			env2 := testEnv(t)
			env2.FakeSaltKey = bytes.Repeat([]byte{7}, 32)
			if s, _ := serverFirst(t, env2, mech, "romeo"); bytes.Equal(s, fake1) {
				t.Error("fake salt does not depend on the server secret")
			}

			// Same failure, same text, at the same step.
			wrong := runFull(t, env, mech, testUser, "bad password")
			unknown := runFull(t, env, mech, "romeo", testPassword)
			if wrong.step != 2 || unknown.step != 2 || wrong.err.Error() != unknown.err.Error() {
				t.Errorf("wrong password: %v at %d; unknown user: %v at %d", wrong.err, wrong.step, unknown.err, unknown.step)
			}
		})
	}
	t.Run("fake salt differs per family", func(t *testing.T) {
		env := testEnv(t)
		a, _ := serverFirst(t, env, SCRAMSHA1, "romeo")
		b, _ := serverFirst(t, env, SCRAMSHA256, "romeo")
		if bytes.Equal(a, b) {
			t.Error("real accounts have a salt per family; fake ones must too")
		}
	})
	t.Run("configured iteration count", func(t *testing.T) {
		env := testEnv(t)
		env.Iterations = 10000
		if _, i := serverFirst(t, env, SCRAMSHA256, "romeo"); i != "10000" {
			t.Errorf("i=%s, want 10000", i)
		}
	})
}

func runFull(t *testing.T, env Env, mech, user, password string) transcript {
	t.Helper()
	sess := mustStart(t, mech, env)
	client, _ := scramHash(t, mech).NewClient(user, password, "")
	return runSCRAM(t, sess, client.NewConversation(), true)
}

func TestSCRAMAccountWithoutFamilyKey(t *testing.T) {
	only256 := testCreds()
	only256 = storage.Credentials{Keys: map[string]storage.ScramKey{HashSHA256: only256.Keys[HashSHA256]}}
	env := testEnv(t)
	env.Lookup = lookupFunc(map[string]storage.Credentials{testUser: only256})

	if tr := runFull(t, env, SCRAMSHA256, testUser, testPassword); tr.err != nil {
		t.Fatalf("SHA-256: %v", tr.err)
	}
	if tr := runFull(t, env, SCRAMSHA1, testUser, testPassword); condition(tr.err) != CondNotAuthorized || tr.step != 2 {
		t.Fatalf("SHA-1 without a SHA-1 key: %v at step %d, want not-authorized at step 2", tr.err, tr.step)
	}
}

func TestSCRAMNormalize(t *testing.T) {
	env := testEnv(t)
	env.Normalize = func(s string) (string, error) {
		if strings.ContainsAny(s, "@/") {
			return "", errors.New("invalid localpart")
		}
		return strings.ToLower(s), nil
	}
	if tr := runFull(t, env, SCRAMSHA256, "JULIET", testPassword); tr.err != nil {
		t.Fatalf("normalized name: %v", tr.err)
	}
	if tr := runFull(t, env, SCRAMSHA256, "juliet@capulet", testPassword); condition(tr.err) != CondNotAuthorized || tr.step != 2 {
		t.Fatalf("unnormalizable name: %v at step %d, want not-authorized at step 2", tr.err, tr.step)
	}
}

func TestSCRAMMalformed(t *testing.T) {
	firsts := []struct {
		name string
		msg  []byte
	}{
		{"empty initial response", []byte{}},
		{"no comma", []byte("garbage")},
		{"bad flag", []byte("x,,n=juliet,r=abc")},
		{"bad cb name", []byte("p=tls exporter,,n=juliet,r=abc")},
		{"missing nonce", []byte("n,,n=juliet")},
		{"extension m=", []byte("n,,m=ext,n=juliet,r=abc")},
		{"bad name escape", []byte("n,,n=jul=ZZiet,r=abc")},
		{"bad authzid", []byte("n,x=foo,n=juliet,r=abc")},
		{"invalid UTF-8", []byte("n,,n=jul\xffiet,r=abc")},
		{"NUL", []byte("n,,n=jul\x00iet,r=abc")},
		{"too long", append([]byte("n,,n=juliet,r="), bytes.Repeat([]byte("a"), 5000)...)},
	}
	for _, tc := range firsts {
		t.Run("first/"+tc.name, func(t *testing.T) {
			sess := mustStart(t, SCRAMSHA256, testEnv(t))
			_, _, err := sess.Next(tc.msg)
			if condition(err) != CondMalformedRequest {
				t.Fatalf("got %v, want malformed-request", err)
			}
			if _, _, err := sess.Next([]byte("n,,n=juliet,r=abc")); err == nil {
				t.Fatal("session continued after failure")
			}
		})
	}

	finals := []struct {
		name string
		mk   func(nonce string) string
		want string
	}{
		{"garbage", func(string) string { return "garbage" }, CondMalformedRequest},
		{"missing proof", func(n string) string { return "c=biws,r=" + n }, CondMalformedRequest},
		{"bad base64 proof", func(n string) string { return "c=biws,r=" + n + ",p=!!!" }, CondMalformedRequest},
		{"wrong nonce", func(n string) string {
			return "c=biws,r=other,p=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
		}, CondNotAuthorized},
		{"short proof", func(n string) string { return "c=biws,r=" + n + ",p=AAAA" }, CondNotAuthorized},
		{"cbind changed", func(n string) string {
			return "c=eSws,r=" + n + ",p=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
		}, CondNotAuthorized},
		{"empty", func(string) string { return "" }, CondMalformedRequest},
	}
	for _, tc := range finals {
		t.Run("final/"+tc.name, func(t *testing.T) {
			sess := mustStart(t, SCRAMSHA256, testEnv(t))
			s1, _, err := sess.Next([]byte("n,,n=juliet,r=clientnonce"))
			if err != nil {
				t.Fatal(err)
			}
			nonce := strings.TrimPrefix(strings.Split(string(s1), ",")[0], "r=")
			if _, _, err := sess.Next([]byte(tc.mk(nonce))); condition(err) != tc.want {
				t.Fatalf("got %v, want %s", err, tc.want)
			}
			if _, _, err := sess.Next(nil); condition(err) != CondMalformedRequest {
				t.Fatalf("Next after failure: %v", err)
			}
		})
	}

	t.Run("Next after success", func(t *testing.T) {
		sess := mustStart(t, SCRAMSHA256, testEnv(t))
		client, _ := scram.SHA256.NewClient(testUser, testPassword, "")
		if tr := runSCRAM(t, sess, client.NewConversation(), true); tr.err != nil {
			t.Fatal(tr.err)
		}
		if _, _, err := sess.Next([]byte("x")); condition(err) != CondMalformedRequest {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("nil after empty challenge is not a second challenge", func(t *testing.T) {
		sess := mustStart(t, SCRAMSHA256, testEnv(t))
		if _, _, err := sess.Next(nil); err != nil {
			t.Fatal(err)
		}
		if _, _, err := sess.Next(nil); condition(err) != CondMalformedRequest {
			t.Fatalf("got %v", err)
		}
	})
}

// TestSCRAMContext checks that Env.Ctx reaches the lookup.
func TestSCRAMContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env := testEnv(t)
	env.Ctx = ctx
	env.Lookup = func(ctx context.Context, _ string) (storage.Credentials, error) {
		return storage.Credentials{}, ctx.Err()
	}
	if tr := runFull(t, env, SCRAMSHA256, testUser, testPassword); condition(tr.err) != CondTemporaryAuthFailure {
		t.Fatalf("got %v", tr.err)
	}
}

func TestFakeSaltIsRandomLooking(t *testing.T) {
	// Guards against a fake salt of all zeros or a truncated HMAC.
	s := fakeSalt([]byte("k"), HashSHA256, "romeo")
	if len(s) != SaltSize || bytes.Equal(s, make([]byte, SaltSize)) {
		t.Fatalf("fake salt %x", s)
	}
	r := make([]byte, 32)
	_, _ = rand.Read(r)
	if bytes.Equal(fakeSalt(r, HashSHA256, "romeo"), s) {
		t.Fatal("fake salt ignores the key")
	}
}
