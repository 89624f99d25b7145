package server_test

import (
	"crypto/tls"
	"fmt"
	"testing"

	"parley/internal/clientcert/clientcerttest"
	"parley/internal/directory/ldaptest"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// TestDirectoryExternal: on a host whose accounts live in the directory,
// SASL EXTERNAL with a client certificate admits exactly the users present
// (and enabled) in the directory — the directory's implicit authorization.
func TestDirectoryExternal(t *testing.T) {
	srv := ldaptest.Start(t, "")
	dir := t.TempDir()
	ca, caFile := clientcerttest.NewCA(t, dir, "ca")
	extra := fmt.Sprintf("[c2s]\nlisten = [\"127.0.0.1:0\"]\ndirect_tls_listen = [\"127.0.0.1:0\"]\nclient_ca_file = %q\n", caFile)
	ts := testserver.Start(t, extra+directoryConfig(srv.Addr, ""))

	cases := []struct {
		name string
		jid  string
		want string
	}{
		{"directory user", "alice@example.test", "success"},
		{"disabled directory user", "dave@example.test", "not-authorized"},
		{"not in the directory", "mallory@example.test", "not-authorized"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cert := ca.Client(t, tc.jid, []string{tc.jid}, nil)
			c := testserver.Dial(t, ts.StartTLSAddr())
			c.Open("example.test")
			c.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
			c.ExpectStanza("proceed")
			tc2 := tls.Client(c.Conn, &tls.Config{ServerName: "example.test", InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
			if err := tc2.Handshake(); err != nil {
				t.Fatal(err)
			}
			c.Conn = tc2
			c.Open("example.test")
			offered := false
			for _, m := range c.Features.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms").Elements() {
				offered = offered || m.Text() == "EXTERNAL"
			}
			if !offered {
				t.Fatalf("EXTERNAL not offered: %s", c.Features)
			}
			c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='EXTERNAL'>=</auth>")
			el := c.Expect(func(el *xml.Element) bool { return el.Local == "success" || el.Local == "failure" })
			if got := failureCond(el); got != tc.want {
				t.Fatalf("got %s, want %s", el, tc.want)
			}
		})
	}
}
