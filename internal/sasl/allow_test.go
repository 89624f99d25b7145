package sasl

import (
	"crypto/elliptic"
	"crypto/tls"
	"slices"
	"testing"

	"parley/internal/config"
)

func TestAllow(t *testing.T) {
	offered := []string{SCRAMSHA256Plus, SCRAMSHA256, SCRAMSHA1, Plain}
	tests := []struct {
		allowed, want []string
	}{
		{nil, offered},
		{[]string{}, offered},
		{[]string{Plain}, []string{Plain}},
		// The offered order (strongest first) wins over the policy's.
		{[]string{Plain, SCRAMSHA1, SCRAMSHA256Plus}, []string{SCRAMSHA256Plus, SCRAMSHA1, Plain}},
		{[]string{GSSAPI}, []string{}},
	}
	for _, tc := range tests {
		if got := Allow(tc.allowed, offered); !slices.Equal(got, tc.want) {
			t.Errorf("Allow(%q) = %q, want %q", tc.allowed, got, tc.want)
		}
	}
}

// The config package validates `mechanisms` against its own list, which
// must be exactly what this package implements.
func TestConfigKnowsEveryMechanism(t *testing.T) {
	ours := []string{External, GSSAPI, SCRAMSHA512Plus, SCRAMSHA256Plus, SCRAMSHA1Plus, SCRAMSHA512, SCRAMSHA256, SCRAMSHA1, Plain}
	if got := config.MechanismNames(); !slices.Equal(got, ours) {
		t.Fatalf("config.MechanismNames() = %q, want %q", got, ours)
	}
}

// A mechanism the policy leaves out cannot be started even when the
// client names it, and a SCRAM client's "y" flag is believed when the
// policy hid every -PLUS mechanism (nothing was stripped on the way).
func TestStartHonoursPolicy(t *testing.T) {
	cert := ecdsaCert(t, elliptic.P256())
	st, _ := tlsPair(t, tls.VersionTLS13, cert)
	env := testEnv(t)
	env.TLS, env.ServerCert = &st, cert.Leaf
	env.Allowed = []string{SCRAMSHA256}
	for _, m := range []string{Plain, SCRAMSHA1, SCRAMSHA256Plus, External, GSSAPI} {
		if _, err := Start(m, env); condition(err) != CondInvalidMechanism {
			t.Errorf("Start(%s) with policy %q: %v, want invalid-mechanism", m, env.Allowed, err)
		}
	}
	sess := mustStart(t, SCRAMSHA256, env)
	if _, _, err := sess.Next([]byte("y,,n=alice,r=abcdefghijklmnop")); err != nil {
		t.Fatalf("y flag with every -PLUS hidden by policy: %v", err)
	}
	env.Allowed = []string{SCRAMSHA256, SCRAMSHA1Plus}
	sess = mustStart(t, SCRAMSHA256, env)
	if _, _, err := sess.Next([]byte("y,,n=alice,r=abcdefghijklmnop")); condition(err) != CondNotAuthorized {
		t.Fatalf("y flag while a -PLUS mechanism was offered: %v, want not-authorized (downgrade)", err)
	}
}
