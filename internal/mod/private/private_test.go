package private_test

import (
	"fmt"
	"strings"
	"testing"

	"parley/internal/testserver"
)

func query(inner string) string { return "<query xmlns='jabber:iq:private'>" + inner + "</query>" }

// TestPrivate walks XEP-0049 §2.3: storing and retrieving, the empty answer
// for nothing stored, other users' data, and the error conditions.
func TestPrivate(t *testing.T) {
	ts := start(t, "[limits]\nmax_private_bytes = 512\n", "alice", "bob")
	alice := ts.Login(t, "alice", password, "r")
	bob := ts.Login(t, "bob", password, "r")
	clients := map[string]*testserver.Client{"alice": alice, "bob": bob}
	prefs := "<exodus xmlns='exodus:prefs'><defaultnick>Hamlet</defaultnick></exodus>"
	marks := "<storage xmlns='storage:bookmarks'><conference jid='a@b' autojoin='true'/></storage>"

	for _, tc := range []struct {
		name, from, typ, to, payload string
		cond                         string
		want                         string // serialized <query/> of a result, "" for none
	}{
		{"get, nothing stored", "alice", "get", "", query("<exodus xmlns='exodus:prefs'/>"), "", query("<exodus xmlns='exodus:prefs'/>")},
		{"set two", "alice", "set", "", query(prefs + marks), "", ""},
		{"get one", "alice", "get", "", query("<exodus xmlns='exodus:prefs'/>"), "", query(prefs)},
		{"get other", "alice", "get", "alice@localhost", query("<storage xmlns='storage:bookmarks'/>"), "", query(marks)},
		{"other user's get", "bob", "get", "alice@localhost", query("<exodus xmlns='exodus:prefs'/>"), "forbidden", ""},
		{"other user's set", "bob", "set", "alice@localhost", query(prefs), "forbidden", ""},
		{"own data is own", "bob", "get", "", query("<exodus xmlns='exodus:prefs'/>"), "", query("<exodus xmlns='exodus:prefs'/>")},
		{"get without child", "alice", "get", "", query(""), "bad-request", ""},
		{"get two", "alice", "get", "", query("<a xmlns='x:a'/><b xmlns='x:b'/>"), "bad-request", ""},
		{"set without child", "alice", "set", "", query(""), "not-acceptable", ""},
		{"set jabber:client", "alice", "set", "", query("<x xmlns='jabber:client'/>"), "not-acceptable", ""},
		{"set no namespace", "alice", "set", "", "<query xmlns='jabber:iq:private'><x xmlns=''/></query>", "not-acceptable", ""},
		{"set jabber:iq:private", "alice", "set", "", query("<query xmlns='jabber:iq:private'/>"), "not-acceptable", ""},
		{"get jabber:server", "alice", "get", "", query("<x xmlns='jabber:server'/>"), "not-acceptable", ""},
		{"too big", "alice", "set", "", query("<big xmlns='x:big'>" + strings.Repeat("x", 600) + "</big>"), "not-acceptable", ""},
		{"bad set stores nothing", "alice", "set", "", query("<exodus xmlns='exodus:prefs'/><x xmlns='jabber:client'/>"), "not-acceptable", ""},
		{"unchanged", "alice", "get", "", query("<exodus xmlns='exodus:prefs'/>"), "", query(prefs)},
		{"replace", "alice", "set", "", query("<exodus xmlns='exodus:prefs'/>"), "", ""},
		{"replaced", "alice", "get", "", query("<exodus xmlns='exodus:prefs'/>"), "", query("<exodus xmlns='exodus:prefs'/>")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := clients[tc.from].IQ(tc.typ, tc.to, tc.payload)
			if got := testserver.ErrorCondition(r); got != tc.cond {
				t.Fatalf("reply %s: condition %q, want %q", r, got, tc.cond)
			}
			if tc.cond != "" {
				return
			}
			got := ""
			if q := r.FirstElement(); q != nil {
				got = q.String()
			}
			if got != tc.want {
				t.Fatalf("result %s, want %s", got, tc.want)
			}
		})
	}
}

// TestNamespaceBound: an account cannot store more than a bounded number of
// distinct fragments; replacing existing ones still works at the bound.
func TestNamespaceBound(t *testing.T) {
	ts := start(t, "", "alice")
	c := ts.Login(t, "alice", password, "r")
	var b strings.Builder
	for i := range 64 {
		fmt.Fprintf(&b, "<x xmlns='urn:test:%d'/>", i)
	}
	if r := c.IQ("set", "", query(b.String())); testserver.ErrorCondition(r) != "" {
		t.Fatalf("64 fragments: %s", r)
	}
	if r := c.IQ("set", "", query("<x xmlns='urn:test:64'/>")); testserver.ErrorCondition(r) != "not-acceptable" {
		t.Fatalf("65th fragment: %s", r)
	}
	if r := c.IQ("set", "", query("<x xmlns='urn:test:0'>v</x>")); testserver.ErrorCondition(r) != "" {
		t.Fatalf("replacing at the bound: %s", r)
	}
}
