package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKeysAreCaseSensitive(t *testing.T) {
	for _, text := range []string{
		"[LIMITS]\noffline_quota = 7\n",
		"[limits]\nOFFLINE_QUOTA = 7\n",
		"[limits]\nmax_per_iP = 2\n",
		"[[host]]\ndomain = \"a.test\"\n[host.Registration]\nenabled = true\n",
	} {
		_, err := Parse([]byte(text))
		if err == nil {
			t.Errorf("accepted:\n%s", text)
			continue
		}
		if !strings.Contains(err.Error(), "lower case") && !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("unhelpful error for %q: %v", text, err)
		}
	}
	if _, err := Parse([]byte("[limits]\noffline_quota = 7\n")); err != nil {
		t.Fatalf("exact spelling refused: %v", err)
	}
}

func TestCrossSectionProblems(t *testing.T) {
	cases := map[string]string{
		"proxy on the chat domain":             "[[host]]\ndomain = \"a.test\"\n[proxy65]\nenabled = true\ndomain = \"conference.a.test\"\n",
		"component on a host":                  "[[host]]\ndomain = \"a.test\"\n[[component.service]]\ndomain = \"a.test\"\nsecret = \"s\"\n",
		"plain without tls while tls required": "[c2s]\nrequire_tls = true\nallow_plain_without_tls = true\n",
		"admin is not a JID":                   "[[host]]\ndomain = \"a.test\"\nadmins = [\"notajid@@\"]\n",
		"registration on a directory host":     "[[host]]\ndomain = \"a.test\"\naccounts = \"directory\"\n[host.registration]\nenabled = true\n[directory]\nservers = [\"ldap://127.0.0.1:389\"]\nuser_base = \"dc=x\"\n",
		"legacy auth on a directory host":      "[[host]]\ndomain = \"a.test\"\naccounts = \"directory\"\n[host.legacy_auth]\nplaintext = true\n[directory]\nservers = [\"ldap://127.0.0.1:389\"]\nuser_base = \"dc=x\"\n",
	}
	for name, text := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse([]byte(text)); err == nil {
				t.Fatalf("accepted:\n%s", text)
			}
		})
	}
}

func TestLoadReportsEveryMissingFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "parley.toml")
	text := "[tls]\ncert_file = \"missing.crt\"\nkey_file = \"missing.key\"\n[c2s]\nclient_ca_file = \"/nonexistent/ca.pem\"\n"
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil {
		t.Fatal("missing files accepted")
	}
	for _, key := range []string{"tls.cert_file", "tls.key_file", "c2s.client_ca_file"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s: %v", key, err)
		}
	}
}

func TestRedactedHidesSecrets(t *testing.T) {
	c, err := Parse([]byte(`storage = "postgres"
postgres_dsn = "postgres://parley:hunter2@db/parley"
[[component.service]]
domain = "gw.localhost"
secret = "compsecret"
`))
	if err != nil {
		t.Fatal(err)
	}
	c.S2S.DialbackSecret = "dbsecret"
	c.Directory.BindPassword = "bindsecret"
	c.Cluster.NATSPassword = "natspass"
	c.Cluster.NATSToken = "natstoken"
	c.Cluster.NATSURLs = []string{"nats://natsuser:urlsecret@n1:4222", "tls://urltoken@n2:4222", "nats://n3:4222"}
	b, err := c.Redacted().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "nats://natsuser:(redacted)@n1:4222") || !strings.Contains(string(b), "nats://n3:4222") {
		t.Errorf("NATS URLs not kept apart from their credentials:\n%s", b)
	}
	if c.Cluster.NATSURLs[0] != "nats://natsuser:urlsecret@n1:4222" {
		t.Fatal("Redacted changed the original's NATS URLs")
	}
	for _, secret := range []string{"hunter2", "compsecret", "dbsecret", "bindsecret", "natspass", "natstoken", "urlsecret", "urltoken"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("effective config shows %q", secret)
		}
	}
	if c.Component.Services[0].Secret != "compsecret" {
		t.Fatal("Redacted changed the original")
	}
	if got := redactDSN("host=db user=parley password=hunter2"); strings.Contains(got, "hunter2") {
		t.Fatalf("key=value DSN not redacted: %s", got)
	}
}

// Host domains are prepared as addresses are: an internationalised domain
// in A-labels or mixed case is the same host as in U-labels.
func TestHostDomainsPrepared(t *testing.T) {
	c, err := Parse([]byte("[[host]]\ndomain = \"XN--Mller-kva.Test.\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Hosts[0].Domain != "müller.test" {
		t.Fatalf("domain %q", c.Hosts[0].Domain)
	}
	if _, err := Parse([]byte("[[host]]\ndomain = \"xn--mller-kva.test\"\n[[host]]\ndomain = \"Müller.test\"\n")); err == nil || !strings.Contains(err.Error(), "listed twice") {
		t.Fatalf("the same domain in two forms: %v", err)
	}
}
