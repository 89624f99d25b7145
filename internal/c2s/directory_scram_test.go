package c2s_test

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"slices"
	"testing"

	"github.com/xdg-go/scram"

	"parley/internal/directory"
	"parley/internal/directory/ldaptest"
	"parley/internal/sasl"
	"parley/internal/testserver"
)

func scramSecretsLDIF(t *testing.T, uid, password string, extra ...string) string {
	t.Helper()
	creds, err := sasl.DeriveCredentials(password, 4096)
	if err != nil {
		t.Fatal(err)
	}
	ldif := "dn: uid=" + uid + "," + ldaptest.PeopleBase + "\nchangetype: modify\nadd: objectClass\nobjectClass: authPasswordObject\n-\nadd: authPassword\n"
	for _, fam := range []string{"SHA-1", "SHA-256"} {
		v, _ := directory.FormatAuthPassword(fam, creds.Keys[fam])
		ldif += "authPassword: " + v + "\n"
	}
	for _, e := range extra {
		ldif += "authPassword: " + e + "\n"
	}
	return ldif + "-\n"
}

// On a directory host, SCRAM is offered once some entry holds RFC 5803
// secrets: alice (who has them) logs in with SCRAM-SHA-1, -256 and -PLUS;
// bob (who has none) and carol (whose only value is malformed) fail SCRAM
// like a wrong password and still log in with PLAIN.
func TestDirectorySCRAM(t *testing.T) {
	srv := ldaptest.Start(t, "")
	srv.Modify(t, scramSecretsLDIF(t, "alice", "alice-pass"))
	srv.Modify(t, "dn: uid=carol,"+ldaptest.PeopleBase+"\nchangetype: modify\nadd: objectClass\nobjectClass: authPasswordObject\n-\nadd: authPassword\nauthPassword: SCRAM-SHA-256$4096:c2FsdA==$bm90IGEga2V5:bm90IGEga2V5\n-\n")
	ts := testserver.Start(t, fmt.Sprintf(`[[host]]
domain = "example.test"
accounts = "directory"
[directory]
servers = [%q]
tls = "none"
bind_dn = %q
bind_password = %q
user_base = %q
dial_timeout = "2s"
retry_delay = "10ms"
`, srv.Addr, ldaptest.ServiceDN, ldaptest.ServicePassword, ldaptest.PeopleBase))
	dial := func() *testserver.Client {
		c := testserver.Dial(t, ts.StartTLSAddr())
		c.Open("example.test")
		c.StartTLS("example.test")
		return c
	}
	c := dial()
	if got := offeredMechanisms(c); !slices.Equal(got, []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}) {
		t.Fatalf("offered %q", got)
	}
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "SCRAM-SHA-256-PLUS"} {
		c := dial()
		var cb *scram.ChannelBinding
		if mech == "SCRAM-SHA-256-PLUS" {
			st := c.Conn.(*tls.Conn).ConnectionState()
			data, err := st.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
			if err != nil {
				t.Fatal(err)
			}
			cb = &scram.ChannelBinding{Type: scram.ChannelBindingTLSExporter, Data: data}
		}
		if el := scramLogin(t, c, mech, "alice", "alice-pass", cb); el.Local != "success" {
			t.Fatalf("alice %s: %s", mech, el)
		}
		c = dial()
		if el := scramLogin(t, c, mech, "alice", "wrong-pass", cb); el.Local != "failure" || el.Child("", "not-authorized") == nil {
			t.Fatalf("alice %s with a wrong password: %s", mech, el)
		}
	}
	for _, user := range []string{"bob", "carol", "nobody"} {
		c := dial()
		if el := scramLogin(t, c, "SCRAM-SHA-256", user, user+"-pass", nil); el.Local != "failure" || el.Child("", "not-authorized") == nil {
			t.Fatalf("%s without usable secrets: %s", user, el)
		}
		if user == "nobody" {
			continue
		}
		c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+user+"-pass")))
		if el := c.ExpectStanza("success"); el == nil {
			t.Fatalf("%s PLAIN", user)
		}
	}
}
