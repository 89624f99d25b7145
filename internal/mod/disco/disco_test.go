package disco_test

import (
	"slices"
	"strings"
	"testing"

	"parley/internal/module"
	"parley/internal/testserver"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

const (
	nsInfo  = "http://jabber.org/protocol/disco#info"
	nsItems = "http://jabber.org/protocol/disco#items"
)

func features(q *xml.Element) []string {
	var out []string
	for _, f := range q.Elements() {
		if f.Local == "feature" {
			out = append(out, f.Attr("var"))
		}
	}
	return out
}

// TestHostInfo: XEP-0030 §3.1 on the domain. The features are whatever the
// host's modules registered: the test registers a handler of its own and
// sees its namespace appear.
func TestHostInfo(t *testing.T) {
	ts := start(t, "", "alice")
	h := ts.Hosts()[0]
	h.RegisterIQ(stanza.TypeGet, module.TargetHost, "urn:example:dummy", func(ev *module.StanzaEvent, _ *xml.Element) *xml.Element {
		return stanza.IQResult(ev.Stanza, nil)
	})
	h.AddIdentity(module.Identity{Category: "pubsub", Type: "pep"})
	c := ts.Login(t, "alice", password, "r")

	r := c.IQ("get", "localhost", "<query xmlns='"+nsInfo+"'/>")
	q := r.Child(nsInfo, "query")
	if testserver.ErrorCondition(r) != "" || q == nil || r.Attr("from") != "localhost" {
		t.Fatalf("reply %s", r)
	}
	id := q.Child(nsInfo, "identity")
	if id.Attr("category") != "server" || id.Attr("type") != "im" || id.Attr("name") != "Parley" {
		t.Errorf("first identity %s", id)
	}
	if n := len(q.Elements()) - len(features(q)); n != 2 {
		t.Errorf("%d identities, want server/im and the registered pubsub/pep: %s", n, q)
	}
	got := features(q)
	if !slices.Equal(got, h.Features()) {
		t.Errorf("features %v, host registry %v", got, h.Features())
	}
	for _, want := range []string{nsInfo, nsItems, "urn:example:dummy", "urn:xmpp:ping", "jabber:iq:version",
		"urn:xmpp:time", "jabber:iq:last", "vcard-temp", "msgoffline"} {
		if !slices.Contains(got, want) {
			t.Errorf("feature %s missing from %v", want, got)
		}
	}
}

// TestErrorsAndItems: nodes nobody serves, host items, and the §8 rules for
// bare JIDs (service-unavailable for info, empty items for anyone not
// allowed to see the account's presence).
func TestErrorsAndItems(t *testing.T) {
	ts := start(t, "", "alice", "bob", "carol")
	ts.Hosts()[0].AddItem(module.DiscoItem{JID: "conference.localhost", Name: "Rooms"})
	ts.GrantSubscription(t, "alice", "carol")
	alice := ts.Online(t, "alice", password, "r")
	bob := ts.Login(t, "bob", password, "r")
	carol := ts.Login(t, "carol", password, "r")
	clients := map[string]*testserver.Client{"alice": alice, "bob": bob, "carol": carol}

	info := "<query xmlns='" + nsInfo + "'/>"
	items := "<query xmlns='" + nsItems + "'/>"
	for _, tc := range []struct {
		name    string
		from    string
		to      string
		payload string
		cond    string
		items   []string // for disco#items results
	}{
		{"host info node", "bob", "localhost", "<query xmlns='" + nsInfo + "' node='x'/>", "item-not-found", nil},
		{"host items", "bob", "localhost", items, "", []string{"conference.localhost"}},
		{"host items node", "bob", "localhost", "<query xmlns='" + nsItems + "' node='x'/>", "item-not-found", nil},
		{"account info to stranger", "bob", "alice@localhost", info, "service-unavailable", nil},
		{"account info unknown account", "bob", "nobody@localhost", info, "service-unavailable", nil},
		{"account info to subscriber", "carol", "alice@localhost", info, "", nil},
		{"account info to self", "alice", "", info, "", nil},
		{"account info node", "alice", "", "<query xmlns='" + nsInfo + "' node='x'/>", "item-not-found", nil},
		{"account items to stranger", "bob", "alice@localhost", items, "", []string{}},
		{"account items to subscriber", "carol", "alice@localhost", items, "", []string{"alice@localhost/r"}},
		{"account items node to stranger", "bob", "alice@localhost", "<query xmlns='" + nsItems + "' node='x'/>", "", []string{}},
		// §8: an account that does not exist looks like one the requester
		// may not see: service-unavailable for info, empty items.
		{"account info node unknown account", "bob", "nobody@localhost", "<query xmlns='" + nsInfo + "' node='x'/>", "service-unavailable", nil},
		{"account items unknown account", "bob", "nobody@localhost", items, "", []string{}},
		{"account items node unknown account", "bob", "nobody@localhost", "<query xmlns='" + nsItems + "' node='x'/>", "", []string{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := clients[tc.from].IQ("get", tc.to, tc.payload)
			if got := testserver.ErrorCondition(r); got != tc.cond {
				t.Fatalf("reply %s: condition %q, want %q", r, got, tc.cond)
			}
			if tc.cond != "" {
				return
			}
			q := r.FirstElement()
			if q.Space == nsInfo {
				id := q.Child(nsInfo, "identity")
				if id == nil || id.Attr("category") != "account" || id.Attr("type") != "registered" {
					t.Fatalf("account identity in %s", q)
				}
				if got, want := features(q), ts.Hosts()[0].AccountFeatures(); !slices.Equal(got, want) {
					t.Fatalf("account features %v, want %v", got, want)
				}
				return
			}
			if strings.Contains(tc.payload, "node='x'") && q.Attr("node") != "x" {
				t.Fatalf("items result %s does not name the node asked for", q)
			}
			var jids []string
			for _, it := range q.Elements() {
				jids = append(jids, it.Attr("jid"))
			}
			if !slices.Equal(jids, tc.items) && (len(jids) != 0 || len(tc.items) != 0) {
				t.Fatalf("items %v, want %v", jids, tc.items)
			}
		})
	}
}
