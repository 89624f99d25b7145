package sasl

import (
	"errors"
	"testing"
)

// Failures that never reached a credential check are marked, so the server
// does not count them as password guesses; a wrong password is not marked.
func TestNegotiationFailuresAreMarked(t *testing.T) {
	cases := []struct {
		name string
		mech string
		msg  string
		want bool
	}{
		{"scram malformed", SCRAMSHA256, "garbage", true},
		{"scram p flag on non-PLUS", SCRAMSHA256, "p=tls-unique,,n=alice,r=abc", true},
		{"plain malformed", Plain, "no-nul-bytes", true},
		{"plain wrong password", Plain, "\x00alice\x00wrong", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := testEnv(t)
			env.AllowPlainWithoutTLS = true
			s, err := Start(tc.mech, env)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = s.Next([]byte(tc.msg))
			var f *Failure
			if !errors.As(err, &f) {
				t.Fatalf("want a *Failure, got %v", err)
			}
			if f.Negotiation != tc.want {
				t.Fatalf("Negotiation = %v, want %v (%v)", f.Negotiation, tc.want, f)
			}
		})
	}
}
