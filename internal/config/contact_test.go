package config

import (
	"slices"
	"strings"
	"testing"
)

// TestContactAddresses: XEP-0157 addresses are read per host, in order,
// empty by default (no fields, so no form), and shown by config check.
func TestContactAddresses(t *testing.T) {
	c, err := Parse([]byte(`[[host]]
domain = "localhost"
[host.contact_addresses]
abuse = ["mailto:abuse@example.com", "xmpp:abuse@example.com"]
security = ["https://example.com/security.txt"]
status = ["https://status.example.com"]
[[host]]
domain = "example.org"
`))
	if err != nil {
		t.Fatal(err)
	}
	f := c.Hosts[0].ContactAddresses.Fields()
	if len(f) != 3 || f[0].Var != "abuse-addresses" || !slices.Equal(f[0].Values, []string{"mailto:abuse@example.com", "xmpp:abuse@example.com"}) ||
		f[1].Var != "security-addresses" || f[2].Var != "status-addresses" {
		t.Fatalf("fields: %+v", f)
	}
	if f := c.Hosts[1].ContactAddresses.Fields(); len(f) != 0 {
		t.Fatalf("default fields: %+v", f)
	}
	if c.Hosts[0].Reporting.ForwardToAdmins {
		t.Fatal("reports are forwarded to admins by default")
	}
	b, err := c.Redacted().Encode()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "[host.contact_addresses]") || !strings.Contains(string(b), `"xmpp:abuse@example.com"`) ||
		!strings.Contains(string(b), "forward_to_admins = false") {
		t.Fatalf("effective config:\n%s", b)
	}
}

// TestContactAddressValidation: only URIs a reader can act on are
// published; anything else stops the start with the key named.
func TestContactAddressValidation(t *testing.T) {
	for _, ok := range []string{
		"xmpp:abuse@example.com", "xmpp:admins@example.com?message", "xmpp:example.com",
		"mailto:abuse@example.com", "mailto:a@example.com,b@example.com?subject=abuse",
		"https://example.com/abuse", "HTTPS://example.com",
	} {
		if err := checkContactURI(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, tc := range []struct{ text, want string }{
		{`abuse = ["abuse@example.com"]`, "host[0].contact_addresses.abuse"},
		{`admin = ["http://example.com/contact"]`, "host[0].contact_addresses.admin"},
		{`feedback = ["ftp://example.com"]`, "host[0].contact_addresses.feedback"},
		{`sales = ["mailto:"]`, "host[0].contact_addresses.sales"},
		{`sales = ["mailto:Sales <sales@example.com>"]`, "host[0].contact_addresses.sales"},
		{`security = ["xmpp:"]`, "host[0].contact_addresses.security"},
		{`security = ["xmpp://admin@example.com"]`, "host[0].contact_addresses.security"},
		{`security = ["xmpp:a@b@c"]`, "host[0].contact_addresses.security"},
		{`status = ["https:///path"]`, "host[0].contact_addresses.status"},
		{`support = [" xmpp:support@example.com"]`, "host[0].contact_addresses.support"},
		{`support = ["%zz"]`, "host[0].contact_addresses.support"},
		{`supprt = ["xmpp:support@example.com"]`, "supprt"},
	} {
		_, err := Parse([]byte("[[host]]\ndomain = \"localhost\"\n[host.contact_addresses]\n" + tc.text + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a problem with %s", tc.text, err, tc.want)
		}
	}
	many := `abuse = ["xmpp:a@example.com"` + strings.Repeat(`, "xmpp:a@example.com"`, maxContactAddresses) + "]"
	if _, err := Parse([]byte("[[host]]\ndomain = \"localhost\"\n[host.contact_addresses]\n" + many + "\n")); err == nil ||
		!strings.Contains(err.Error(), "at most") {
		t.Errorf("%d addresses: %v", maxContactAddresses+1, err)
	}
}
