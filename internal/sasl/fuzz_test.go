package sasl

import (
	"errors"
	"testing"
	"time"

	"parley/internal/storage"
)

// FuzzSCRAMClientFirst feeds arbitrary client-first and client-final
// messages to a SCRAM-SHA-256 session. It must never panic, only ever
// return *Failure errors, and never succeed (the fuzzer cannot produce a
// valid proof for a random nonce).
func FuzzSCRAMClientFirst(f *testing.F) {
	f.Add([]byte("n,,n=juliet,r=abc"), []byte("c=biws,r=abc,p=AAAA"))
	f.Add([]byte("y,a=juliet@capulet.lit,n=juliet,r=x"), []byte("c=eSws,r=x,p="))
	f.Add([]byte("p=tls-exporter,,n=juliet,r=abc"), []byte(""))
	f.Add([]byte("n,,n=romeo,r=abc,ext=1"), []byte("c=biws,r=abc,x=1,p=AAAA"))
	env := testEnv(f)
	f.Fuzz(func(t *testing.T, first, final []byte) {
		sess, err := Start(SCRAMSHA256, env)
		if err != nil {
			t.Fatal(err)
		}
		out, done, err := sess.Next(first)
		checkFailure(t, err)
		if err != nil || done {
			if done {
				t.Fatal("done after one message")
			}
			return
		}
		if first == nil && len(out) != 0 {
			t.Fatalf("nil initial response answered with %q", out)
		}
		_, done, err = sess.Next(final)
		checkFailure(t, err)
		if done && first != nil {
			t.Fatalf("fuzzer authenticated: %q / %q", first, final)
		}
	})
}

// FuzzPLAIN feeds arbitrary PLAIN messages. Success is only possible with
// the test account's exact credentials.
func FuzzPLAIN(f *testing.F) {
	f.Add([]byte("\x00juliet\x00r0m3o!pencil"))
	f.Add([]byte("juliet@capulet.lit\x00juliet\x00wrong"))
	f.Add([]byte("\x00\x00"))
	f.Add([]byte("no nul at all"))
	env := testEnv(f)
	env.AllowPlainWithoutTLS = true
	f.Fuzz(func(t *testing.T, msg []byte) {
		sess, err := Start(Plain, env)
		if err != nil {
			t.Fatal(err)
		}
		_, done, err := sess.Next(msg)
		checkFailure(t, err)
		if done && (sess.Username() != testUser || err != nil) {
			t.Fatalf("authenticated %q from %q", sess.Username(), msg)
		}
	})
}

func checkFailure(t *testing.T, err error) {
	t.Helper()
	var f *Failure
	if err != nil && (!errors.As(err, &f) || f.Condition == "") {
		t.Fatalf("error is not a *Failure with a condition: %v", err)
	}
}

// FuzzHT feeds arbitrary HT messages to a session whose user holds one
// token: nothing the fuzzer makes may log in.
func FuzzHT(f *testing.F) {
	f.Add([]byte("juliet\x00" + string(make([]byte, 32))))
	f.Add([]byte("\x00"))
	f.Add([]byte("juliet"))
	tok, hash := NewFASTToken()
	_ = tok
	fast := FASTEnv{Tokens: func(string) ([]storage.FASTToken, error) {
		return []storage.FASTToken{{ID: "t", Mechanism: HTSHA256None, Hash: hash, ExpiresAt: time.Now().Add(time.Hour)}}, nil
	}}
	env := Env{AllowPlainWithoutTLS: true}
	f.Fuzz(func(t *testing.T, msg []byte) {
		sess, err := StartFAST(HTSHA256None, env, fast)
		if err != nil {
			t.Fatal(err)
		}
		_, done, err := sess.Next(msg)
		checkFailure(t, err)
		if done {
			t.Fatalf("fuzzer authenticated with %q", msg)
		}
	})
}
