package mam_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"parley/internal/mod/mam"
	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const (
	password  = "password123"
	nsMAM     = "urn:xmpp:mam:2"
	nsRSM     = "http://jabber.org/protocol/rsm"
	nsForward = "urn:xmpp:forward:0"
	nsSID     = "urn:xmpp:sid:0"
	nsDelay   = "urn:xmpp:delay"
	nsData    = "jabber:x:data"
	nsMUC     = "http://jabber.org/protocol/muc"
	nsUser    = nsMUC + "#user"
	nsOwner   = nsMUC + "#owner"
	svc       = "conference.localhost"
)

// start boots a server with the given extra config and accounts.
func start(t *testing.T, cfg string, users ...string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, cfg)
	ts.AddUsers(t, password, users...)
	return ts
}

// online logs user in with resource "r" and initial presence.
func online(t *testing.T, ts *testserver.TS, user string) *testserver.Client {
	t.Helper()
	return ts.Online(t, user, password, "r")
}

// sync makes sure the server processed everything c sent before.
func sync(t *testing.T, c *testserver.Client) {
	t.Helper()
	if r := c.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>"); testserver.ErrorCondition(r) != "" {
		t.Fatalf("ping: %s", r)
	}
}

// form builds a submitted query form from var/value pairs; a var given
// several times becomes one field with several values.
func form(pairs ...string) string {
	var (
		b      strings.Builder
		order  []string
		values = map[string][]string{}
	)
	for i := 0; i+1 < len(pairs); i += 2 {
		if _, ok := values[pairs[i]]; !ok {
			order = append(order, pairs[i])
		}
		values[pairs[i]] = append(values[pairs[i]], pairs[i+1])
	}
	b.WriteString("<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>")
	for _, v := range order {
		fmt.Fprintf(&b, "<field var='%s'>", v)
		for _, val := range values[v] {
			fmt.Fprintf(&b, "<value>%s</value>", val)
		}
		b.WriteString("</field>")
	}
	b.WriteString("</x>")
	return b.String()
}

// rsm builds an RSM <set/> from its inner XML.
func rsm(inner string) string { return "<set xmlns='" + nsRSM + "'>" + inner + "</set>" }

// answer is what a query got back.
type answer struct {
	results []*xml.Element // the <message/>s, in the order received
	iq      *xml.Element   // the final reply
}

// ids returns the archive ids of the results.
func (a answer) ids() []string {
	var out []string
	for _, r := range a.results {
		out = append(out, r.Child(nsMAM, "result").Attr("id"))
	}
	return out
}

// forwarded returns the archived message of result i.
func (a answer) forwarded(i int) *xml.Element {
	return a.results[i].Child(nsMAM, "result").Child(nsForward, "forwarded").Child("", "message")
}

// stamp returns the delay stamp of result i.
func (a answer) stamp(i int) string {
	return a.results[i].Child(nsMAM, "result").Child(nsForward, "forwarded").Child(nsDelay, "delay").Attr("stamp")
}

// set returns the RSM set of the <fin/>.
func (a answer) set() *xml.Element {
	fin := a.iq.Child(nsMAM, "fin")
	if fin == nil {
		return nil
	}
	return fin.Child(nsRSM, "set")
}

func (a answer) complete() bool { return a.iq.Child(nsMAM, "fin").Attr("complete") == "true" }

func (a answer) count() string { return a.set().ChildText(nsRSM, "count") }

func (a answer) index() string {
	if f := a.set().Child(nsRSM, "first"); f != nil {
		return f.Attr("index")
	}
	return ""
}

// query sends a MAM query to (own archive when "") and collects the
// results and the reply.
func query(t *testing.T, c *testserver.Client, to, inner string) answer {
	t.Helper()
	qid := fmt.Sprintf("q%d", time.Now().UnixNano())
	id := "iq-" + qid
	toAttr := ""
	if to != "" {
		toAttr = " to='" + to + "'"
	}
	c.Send("<iq type='set' id='%s'%s><query xmlns='%s' queryid='%s'>%s</query></iq>", id, toAttr, nsMAM, qid, inner)
	var a answer
	for {
		el := c.Expect(func(el *xml.Element) bool {
			if el.Local == "iq" && el.Attr("id") == id {
				return true
			}
			r := el.Child(nsMAM, "result")
			return el.Local == "message" && r != nil && r.Attr("queryid") == qid
		})
		if el.Local == "iq" {
			a.iq = el
			return a
		}
		a.results = append(a.results, el)
	}
}

// mustQuery is query that fails the test on an error reply.
func mustQuery(t *testing.T, c *testserver.Client, to, inner string) answer {
	t.Helper()
	a := query(t, c, to, inner)
	if a.iq.Attr("type") != "result" {
		t.Fatalf("query %s: %s", inner, a.iq)
	}
	return a
}

// flush waits until the archive writer of every host has stored what it
// was given.
func flush(t *testing.T, ts *testserver.TS) {
	t.Helper()
	for _, h := range ts.Hosts() {
		if m, ok := module.Lookup(h, mam.Key); ok {
			if err := m.Flush(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// archived returns the number of messages in owner's archive (storage),
// once the writer has caught up.
func archived(t *testing.T, ts *testserver.TS, owner string) int {
	t.Helper()
	flush(t, ts)
	p, err := ts.Store().Archive().Query(context.Background(), owner, storage.ArchiveQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return p.Count
}

// stanzaIDs returns the <stanza-id/> elements of a message by their 'by'.
func stanzaIDs(el *xml.Element) map[string][]string {
	out := map[string][]string{}
	for _, c := range el.Elements() {
		if c.Space == nsSID && c.Local == "stanza-id" {
			out[c.Attr("by")] = append(out[c.Attr("by")], c.Attr("id"))
		}
	}
	return out
}
