package disco_test

import (
	"slices"
	"testing"

	"parley/internal/xmpp/xml"
)

// loopback puts the client listeners of the tests of this file on
// 127.0.10.2.
const loopback = "[c2s]\nlisten = [\"127.0.10.2:0\"]\ndirect_tls_listen = [\"127.0.10.2:0\"]\n"

// TestContactAddresses: XEP-0157. A host with [host.contact_addresses]
// answers disco#info with the XEP-0128 form of FORM_TYPE
// http://jabber.org/network/serverinfo, one list-multi field per
// configured list, in order; a host without any has no form.
func TestContactAddresses(t *testing.T) {
	ts := start(t, loopback+`[[host]]
domain = "localhost"
[host.contact_addresses]
abuse = ["mailto:abuse@localhost", "xmpp:abuse@localhost"]
security = ["https://localhost/.well-known/security.txt"]
status = ["https://status.localhost"]
[[host]]
domain = "other.localhost"
`, "alice")
	ts.AddUser(t, "bob@other.localhost", password)
	c := ts.Login(t, "alice", password, "r")

	q := c.IQ("get", "localhost", "<query xmlns='"+nsInfo+"'/>").Child(nsInfo, "query")
	var forms []*xml.Element
	for _, el := range q.Elements() {
		if el.Space == "jabber:x:data" && el.Local == "x" {
			forms = append(forms, el)
		}
	}
	if len(forms) != 1 || forms[0].Attr("type") != "result" {
		t.Fatalf("want one result form: %s", q)
	}
	got := map[string][]string{}
	var order []string
	for _, f := range forms[0].Elements() {
		var vals []string
		for _, v := range f.Elements() {
			vals = append(vals, v.Text())
		}
		got[f.Attr("var")] = vals
		order = append(order, f.Attr("var"))
		if f.Attr("var") != "FORM_TYPE" && f.Attr("type") != "list-multi" {
			t.Errorf("field %s of type %q, want list-multi", f.Attr("var"), f.Attr("type"))
		}
	}
	if !slices.Equal(order, []string{"FORM_TYPE", "abuse-addresses", "security-addresses", "status-addresses"}) {
		t.Fatalf("fields %v", order)
	}
	if !slices.Equal(got["FORM_TYPE"], []string{"http://jabber.org/network/serverinfo"}) ||
		!slices.Equal(got["abuse-addresses"], []string{"mailto:abuse@localhost", "xmpp:abuse@localhost"}) ||
		!slices.Equal(got["security-addresses"], []string{"https://localhost/.well-known/security.txt"}) ||
		!slices.Equal(got["status-addresses"], []string{"https://status.localhost"}) {
		t.Fatalf("form %s", forms[0])
	}

	b := ts.Login(t, "bob@other.localhost", password, "r")
	q = b.IQ("get", "other.localhost", "<query xmlns='"+nsInfo+"'/>").Child(nsInfo, "query")
	if q == nil || q.Child("jabber:x:data", "x") != nil {
		t.Fatalf("a host without contact addresses has a form: %s", q)
	}
}
