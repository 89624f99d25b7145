package pep_test

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"parley/internal/pubsub"
	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// password is every test account's password.
const password = "password123"

const (
	nsCaps      = "http://jabber.org/protocol/caps"
	nsDiscoInfo = "http://jabber.org/protocol/disco#info"
	nsDelay     = "urn:xmpp:delay"
	capsNode    = "https://parley.example/test"
)

// start boots a server with the given extra config and accounts.
func start(t *testing.T, cfg string, users ...string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, cfg)
	ts.AddUsers(t, password, users...)
	return ts
}

// mutual gives a and b presence subscriptions to each other (localparts).
func mutual(t *testing.T, ts *testserver.TS, a, b string) {
	t.Helper()
	for _, pair := range [][2]string{{a, b}, {b, a}} {
		_, err := ts.Store().Roster().Put(context.Background(), pair[0]+"@localhost",
			storage.RosterItem{JID: pair[1] + "@localhost", Subscription: storage.SubBoth})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// capsVer computes the XEP-0115 verification string of a client with
// identity client/pc named "test" and the given features.
func capsVer(features []string) string {
	fs := slices.Clone(features)
	slices.Sort(fs)
	s := "client/pc//test<" + strings.Join(fs, "<") + "<"
	sum := sha1.Sum([]byte(s))
	return base64.StdEncoding.EncodeToString(sum[:])
}

// features is what a test client supports: disco#info plus +notify for
// each node.
func features(notify ...string) []string {
	out := []string{nsDiscoInfo, nsCaps}
	for _, n := range notify {
		out = append(out, n+"+notify")
	}
	return out
}

// online logs in and sends initial presence with caps for the given
// features (nil: presence without caps). When the server asks for the
// features (the first time it sees the verification string), the client
// answers with answer (nil: the advertised features, i.e. honestly).
// It returns when the presence was reflected.
func online(t *testing.T, ts *testserver.TS, user, resource string, feats, answer []string) *testserver.Client {
	t.Helper()
	c := ts.Login(t, user, password, resource)
	if feats == nil {
		c.Send("<presence/>")
		c.ExpectStanza("presence", "from="+c.JID)
		return c
	}
	if answer == nil {
		answer = feats
	}
	ver := capsVer(feats)
	c.Send("<presence><c xmlns='%s' hash='sha-1' node='%s' ver='%s'/></presence>", nsCaps, capsNode, ver)
	for {
		el := c.Expect(func(el *xml.Element) bool {
			return (el.Local == "presence" && el.Attr("from") == c.JID) ||
				(el.Local == "iq" && el.Attr("type") == "get" && el.Child(nsDiscoInfo, "query") != nil)
		})
		if el.Local == "presence" {
			return c
		}
		answerDisco(t, c, el, answer)
	}
}

// answerDisco answers the server's disco#info query q with features.
func answerDisco(t *testing.T, c *testserver.Client, q *xml.Element, feats []string) {
	t.Helper()
	var b strings.Builder
	for _, f := range feats {
		b.WriteString("<feature var='" + f + "'/>")
	}
	c.Send("<iq type='result' id='%s' to='%s'><query xmlns='%s' node='%s'><identity category='client' type='pc' name='test'/>%s</query></iq>",
		q.Attr("id"), q.Attr("from"), nsDiscoInfo, q.Child(nsDiscoInfo, "query").Attr("node"), b.String())
}

// pubsubIQ sends a pubsub (or, with owner, pubsub#owner) request.
func pubsubIQ(c *testserver.Client, typ, to string, owner bool, inner string) *xml.Element {
	ns := pubsub.NS
	if owner {
		ns = pubsub.NSOwner
	}
	return c.IQ(typ, to, "<pubsub xmlns='"+ns+"'>"+inner+"</pubsub>")
}

// publish publishes payload as item id to node of c's own account.
func publish(t *testing.T, c *testserver.Client, node, id, payload string) *xml.Element {
	t.Helper()
	r := pubsubIQ(c, "set", "", false, "<publish node='"+node+"'><item id='"+id+"'>"+payload+"</item></publish>")
	if r.Attr("type") != "result" {
		t.Fatalf("publish to %s: %s", node, r)
	}
	return r
}

// isEvent matches a pubsub event notification about node from 'from'.
func isEvent(from, node string) func(*xml.Element) bool {
	return func(el *xml.Element) bool {
		if el.Local != "message" || el.Attr("from") != from {
			return false
		}
		ev := el.Child(pubsub.NSEvent, "event")
		if ev == nil {
			return false
		}
		for _, c := range ev.Elements() {
			if c.Attr("node") == node {
				return true
			}
		}
		return false
	}
}

// expectNone checks that c has received no event about node: everything
// the server queued for c before a ping's answer arrives before it, so the
// event, had it been sent, would be matched first.
func expectNone(t *testing.T, c *testserver.Client, from, node string) {
	t.Helper()
	id := "none-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	c.Send("<iq type='get' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>", id)
	el := c.Expect(func(el *xml.Element) bool {
		return isEvent(from, node)(el) || (el.Local == "iq" && el.Attr("id") == id)
	})
	if el.Local == "message" {
		t.Fatalf("%s got an event it should not: %s", c.JID, el)
	}
}

// errorOf returns "condition/app-condition" of an IQ error reply ("" for a
// result).
func errorOf(r *xml.Element) string {
	cond := testserver.ErrorCondition(r)
	if cond == "" {
		return ""
	}
	for _, e := range r.Elements() {
		if e.Local == "error" {
			if app := e.ChildNS(pubsub.NSErrors); app != nil {
				return cond + "/" + app.Local
			}
		}
	}
	return cond
}
