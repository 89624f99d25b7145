package config

import (
	"strings"
	"testing"
	"time"
)

func TestMechanismsAndKerberosDefaults(t *testing.T) {
	c, err := Parse([]byte("[[host]]\ndomain = \"Example.TEST\"\nmechanisms = [\"GSSAPI\", \"PLAIN\"]\n[host.kerberos]\nkeytab = \"/etc/parley/xmpp.keytab\"\nrealms = [\"EXAMPLE.TEST\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Hosts[0].Kerberos
	if !k.Enabled() || k.ServicePrincipal() != "xmpp/example.test" || k.MaxTokenBytes != 65536 ||
		k.MaxClockSkew.Duration != 5*time.Minute || k.ReplayCacheSize != 100000 {
		t.Fatalf("defaults: %+v (principal %s)", k, k.ServicePrincipal())
	}
	// Without the section GSSAPI is off and nothing is required.
	c, err = Parse([]byte("[[host]]\ndomain = \"localhost\"\n"))
	if err != nil || c.Hosts[0].Kerberos.Enabled() || len(c.Hosts[0].Mechanisms) != 0 {
		t.Fatalf("no kerberos section: %v %+v", err, c.Hosts[0])
	}
}

func TestMechanismsValidation(t *testing.T) {
	kt := "[host.kerberos]\nkeytab = \"/k\"\nrealms = [\"EXAMPLE.TEST\"]\n"
	for _, tc := range []struct{ text, want string }{
		{"mechanisms = [\"CRAM-MD5\"]", "host[0].mechanisms: \"CRAM-MD5\" is not a mechanism"},
		{"mechanisms = [\"plain\"]", "host[0].mechanisms: \"plain\""},
		{"mechanisms = [\"PLAIN\", \"PLAIN\"]", "listed twice"},
		{"mechanisms = [\"GSSAPI\"]", "GSSAPI needs kerberos.keytab"},
		{"mechanisms = [\"EXTERNAL\", \"PLAIN\"]", "EXTERNAL needs c2s.client_ca_file"},
		{"mechanisms = [\"GSSAPI\"]\n[host.legacy_auth]\nplaintext = true\n" + kt, "offers no password mechanism"},
		{"[host.kerberos]\nkeytab = \"/k\"", "kerberos.realms: required"},
		{"[host.kerberos]\nrealms = [\"EXAMPLE.TEST\"]", "need kerberos.keytab"},
		{"[host.kerberos]\nkeytab = \"/k\"\nrealms = [\"alice@EXAMPLE.TEST\"]", "is not a realm name"},
		{kt + "max_token_bytes = 10", "kerberos.max_token_bytes"},
		{kt + "max_token_bytes = 300000", "exceeds limits.max_stanza_bytes"},
		{kt + "max_clock_skew = \"2h\"", "kerberos.max_clock_skew"},
		{kt + "replay_cache_size = 3", "kerberos.replay_cache_size"},
		{kt + "service = \"xmpp/x\"", "must not contain"},
		{kt + "directory_attribute = \"krbPrincipalName\"", "only for accounts = \"directory\""},
	} {
		_, err := Parse([]byte("[[host]]\ndomain = \"localhost\"\n" + tc.text + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a problem with %s", tc.text, err, tc.want)
		}
	}
	// Legacy auth alongside a password mechanism is fine.
	if _, err := Parse([]byte("[[host]]\ndomain = \"localhost\"\nmechanisms = [\"GSSAPI\", \"SCRAM-SHA-256\"]\n[host.legacy_auth]\nplaintext = true\n" + kt)); err != nil {
		t.Fatal(err)
	}
}
