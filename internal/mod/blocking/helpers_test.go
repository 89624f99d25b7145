package blocking_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"parley/internal/storage"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

// password is every test account's password.
const password = "password123"

const (
	nsBlocking = "urn:xmpp:blocking"
	nsErrors   = "urn:xmpp:blocking:errors"
)

// start boots a server with the given extra config and accounts.
func start(t *testing.T, cfg string, users ...string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, cfg)
	ts.AddUsers(t, password, users...)
	return ts
}

// online logs user in with resource res and initial presence.
func online(t *testing.T, ts *testserver.TS, user, res string) *testserver.Client {
	t.Helper()
	return ts.Online(t, user, password, res)
}

// items renders <item jid='…'/> elements.
func items(jids ...string) string {
	var b strings.Builder
	for _, j := range jids {
		b.WriteString("<item jid='" + j + "'/>")
	}
	return b.String()
}

// block sends a block command and returns the reply.
func block(c *testserver.Client, jids ...string) *xml.Element {
	return c.IQ("set", "", "<block xmlns='"+nsBlocking+"'>"+items(jids...)+"</block>")
}

// unblock sends an unblock command (unblock-all without JIDs).
func unblock(c *testserver.Client, jids ...string) *xml.Element {
	return c.IQ("set", "", "<unblock xmlns='"+nsBlocking+"'>"+items(jids...)+"</unblock>")
}

// mustOK fails unless r is a result.
func mustOK(t *testing.T, r *xml.Element) {
	t.Helper()
	if r.Attr("type") != "result" {
		t.Fatalf("want a result, got %s", r)
	}
}

// blocklist retrieves the list (which makes c an interested resource) and
// returns its JIDs in the order given.
func blocklist(t *testing.T, c *testserver.Client) []string {
	t.Helper()
	r := c.IQ("get", "", "<blocklist xmlns='"+nsBlocking+"'/>")
	mustOK(t, r)
	l := r.Child(nsBlocking, "blocklist")
	if l == nil {
		t.Fatalf("result without <blocklist/>: %s", r)
	}
	out := []string{}
	for _, it := range l.Elements() {
		out = append(out, it.Attr("jid"))
	}
	return out
}

// stored returns the blocked JIDs storage holds for user@localhost.
func stored(t *testing.T, ts *testserver.TS, user string) []string {
	t.Helper()
	kv, err := ts.Store().KV().List(context.Background(), "blocking", user+"@localhost")
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for k := range kv {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// subscribeBoth makes a and b (localparts) subscribed to each other.
func subscribeBoth(t *testing.T, ts *testserver.TS, a, b string) {
	t.Helper()
	for _, p := range [][2]string{{a, b}, {b, a}} {
		_, err := ts.Store().Roster().Put(context.Background(), p[0]+"@localhost",
			storage.RosterItem{JID: p[1] + "@localhost", Subscription: storage.SubBoth})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// sync makes sure the server handled everything c sent before: a client's
// stanzas are processed in order, so the ping's answer comes after.
func sync(t *testing.T, c *testserver.Client) {
	t.Helper()
	if r := c.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>"); r.Attr("type") != "result" {
		t.Fatalf("ping: %s", r)
	}
}

// expectBlockedError checks el is the XEP-0191 §3.3 refusal.
func expectBlockedError(t *testing.T, el *xml.Element) {
	t.Helper()
	if testserver.ErrorCondition(el) != "not-acceptable" {
		t.Fatalf("want not-acceptable, got %s", el)
	}
	e := el.Child("", "error")
	if e == nil || e.Attr("type") != "cancel" || e.Child(nsErrors, "blocked") == nil {
		t.Fatalf("error without <blocked xmlns='%s'/> or type cancel: %s", nsErrors, el)
	}
}
