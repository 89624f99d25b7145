package adhoc_test

import (
	"fmt"
	"strings"
	"testing"

	"parley/internal/mod/adhoc"
	"parley/internal/module"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const (
	domain   = "localhost"
	password = "password123"
	admin    = adhoc.NSAdmin + "#"
)

// twoHosts has an admin on each host, so that the admin of one can be
// shown to be nobody on the other.
const twoHosts = `
[[host]]
domain = "localhost"
admins = ["admin@localhost"]
[[host]]
domain = "other.test"
admins = ["boss@other.test"]
`

func start(t *testing.T, users ...string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, twoHosts)
	ts.AddUsers(t, password, users...)
	return ts
}

// module returns the adhoc module of the first host.
func adhocOf(t *testing.T, ts *testserver.TS) *adhoc.Adhoc {
	t.Helper()
	a, ok := module.Lookup(ts.Hosts()[0], adhoc.Key)
	if !ok {
		t.Fatal("adhoc module not provided")
	}
	return a
}

// cmd sends a command IQ to the host and returns the reply.
func cmd(c *testserver.Client, node, action, sessionid, form string) *xml.Element {
	attrs := fmt.Sprintf(" node='%s'", node)
	if action != "" {
		attrs += fmt.Sprintf(" action='%s'", action)
	}
	if sessionid != "" {
		attrs += fmt.Sprintf(" sessionid='%s'", sessionid)
	}
	return c.IQ("set", domain, fmt.Sprintf("<command xmlns='%s'%s>%s</command>", adhoc.NS, attrs, form))
}

// submit is a submitted XEP-0133 form: pairs of var and value (a var
// repeated gives several values).
func submit(pairs ...string) string {
	var b strings.Builder
	b.WriteString("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + adhoc.NSAdmin + "</value></field>")
	for i := 0; i+1 < len(pairs); i += 2 {
		fmt.Fprintf(&b, "<field var='%s'><value>%s</value></field>", pairs[i], pairs[i+1])
	}
	return b.String() + "</x>"
}

// command returns the <command/> of a result, failing the test otherwise.
func command(t *testing.T, res *xml.Element) *xml.Element {
	t.Helper()
	if res.Attr("type") != "result" {
		t.Fatalf("want a result, got %s", res)
	}
	c := res.Child(adhoc.NS, "command")
	if c == nil {
		t.Fatalf("no <command/> in %s", res)
	}
	return c
}

// run executes node and submits form in the session it opens; it
// returns the final <command/>.
func run(t *testing.T, c *testserver.Client, node, form string) *xml.Element {
	t.Helper()
	first := command(t, cmd(c, admin+node, "execute", "", ""))
	if first.Attr("status") != adhoc.StatusExecuting || first.Child("jabber:x:data", "x") == nil {
		t.Fatalf("%s: first stage: want executing with a form, got %s", node, first)
	}
	last := command(t, cmd(c, admin+node, "complete", first.Attr("sessionid"), form))
	if last.Attr("status") != adhoc.StatusCompleted {
		t.Fatalf("%s: want completed, got %s", node, last)
	}
	return last
}

// values returns the values of field v of the form in c.
func values(c *xml.Element, v string) []string {
	x := c.Child("jabber:x:data", "x")
	if x == nil {
		return nil
	}
	var out []string
	for _, f := range x.Elements() {
		if f.Local == "field" && f.Attr("var") == v {
			for _, val := range f.Elements() {
				if val.Local == "value" {
					out = append(out, val.Text())
				}
			}
		}
	}
	return out
}

// note returns the text of c's note.
func note(c *xml.Element) string { return c.ChildText(adhoc.NS, "note") }
