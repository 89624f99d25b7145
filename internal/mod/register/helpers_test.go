package register_test

import (
	"testing"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const (
	domain   = "localhost"
	password = "password123"
	ns       = "jabber:iq:register"
)

// enabled is a host with registration on and the seed's fields.
const enabled = `
[[host]]
domain = "localhost"
admins = ["admin@localhost"]
[host.registration]
enabled = true
fields = ["email", "name"]
notify_admins = true
`

// code returns the legacy code attribute of a reply's <error/>.
func code(el *xml.Element) string {
	for _, n := range el.Elements() {
		if n.Space == "" && n.Local == "error" {
			return n.Attr("code")
		}
	}
	return ""
}

// preauth dials and negotiates TLS without authenticating.
func preauth(t *testing.T, ts *testserver.TS) *testserver.Client {
	t.Helper()
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open(domain)
	c.StartTLS(domain)
	return c
}

// registerQuery is the legacy set payload.
func registerQuery(fields ...string) string {
	s := "<query xmlns='" + ns + "'>"
	for i := 0; i+1 < len(fields); i += 2 {
		s += "<" + fields[i] + ">" + fields[i+1] + "</" + fields[i] + ">"
	}
	return s + "</query>"
}

// names lists the local names of the jabber:iq:register children of q.
func names(q *xml.Element) []string {
	var out []string
	for _, el := range q.Elements() {
		if el.Space == ns {
			out = append(out, el.Local)
		}
	}
	return out
}

// hasFeature reports whether the stream features offer registration.
func hasFeature(f *xml.Element) bool {
	return f != nil && f.Child("http://jabber.org/features/iq-register", "register") != nil
}
