package config

import (
	"strings"
	"testing"
)

// TestExternalServiceSecretRedacted: a TURN shared secret never reaches the
// printed effective config (`parley config check`), and the original keeps it.
func TestExternalServiceSecretRedacted(t *testing.T) {
	c, err := Parse([]byte(`[[host]]
domain = "localhost"
[[host.external_service]]
type = "turn"
host = "turn.localhost"
secret = "turnsecret"
`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Redacted().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "turnsecret") {
		t.Errorf("effective config shows the TURN secret:\n%s", b)
	}
	if c.Hosts[0].ExternalServices[0].Secret != "turnsecret" {
		t.Fatal("Redacted changed the original")
	}
	if c.Hosts[0].Push.Summary != "minimal" || c.Hosts[0].ExternalServices[0].TTL.Hours() != 24 {
		t.Fatalf("defaults: %+v %+v", c.Hosts[0].Push, c.Hosts[0].ExternalServices[0])
	}
}

func TestPushAndExternalServiceValidation(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"[host.push]\nsummary = \"everything\"", "host[0].push.summary"},
		{"[host.push]\nmax_registrations = 5000", "host[0].push.max_registrations"},
		{"[[host.external_service]]\ntype = \"ftp\"\nhost = \"x\"", "host[0].external_service[0].type"},
		{"[[host.external_service]]\ntype = \"stun\"\nhost = \"x\"\nsecret = \"s\"", "host[0].external_service[0].secret"},
		{"[[host.external_service]]\ntype = \"turn\"\nhost = \"\"", "host[0].external_service[0].host"},
		{"[[host.external_service]]\ntype = \"turn\"\nhost = \"x\"\ntransport = \"sctp\"", "host[0].external_service[0].transport"},
	} {
		_, err := Parse([]byte("[[host]]\ndomain = \"localhost\"\n" + tc.text + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want a problem with %s", tc.text, err, tc.want)
		}
	}
}
