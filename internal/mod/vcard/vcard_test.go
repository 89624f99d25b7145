package vcard_test

import (
	"strings"
	"testing"

	"parley/internal/testserver"
)

const card = "<vCard xmlns='vcard-temp'><FN>Alice</FN><N><FAMILY>A</FAMILY><GIVEN>Alice</GIVEN></N></vCard>"

// TestVCard walks XEP-0054 §3: retrieving one's own vCard (empty before
// anything is set), updating it, viewing another user's, and the errors.
// §3.3 (v1.3): another user's missing vCard and a missing user give the
// same error, service-unavailable, so nobody can harvest accounts; a
// cleared vCard is a missing one.
func TestVCard(t *testing.T) {
	ts := start(t, "[limits]\nmax_vcard_bytes = 1024\n", "alice", "bob", "carol")
	alice := ts.Login(t, "alice", password, "r")
	bob := ts.Login(t, "bob", password, "r")
	clients := map[string]*testserver.Client{"alice": alice, "bob": bob}
	get := "<vCard xmlns='vcard-temp'/>"
	big := "<vCard xmlns='vcard-temp'><DESC>" + strings.Repeat("x", 2000) + "</DESC></vCard>"

	for _, tc := range []struct {
		name, from, typ, to, payload string
		cond                         string
		want                         string // serialized vCard of a result, "" for none
	}{
		{"own, none yet", "alice", "get", "", get, "", "<vCard xmlns='vcard-temp'/>"},
		{"other's, none", "bob", "get", "alice@localhost", get, "service-unavailable", ""},
		{"other's, none, account never logged in", "bob", "get", "carol@localhost", get, "service-unavailable", ""},
		{"set own", "alice", "set", "", card, "", ""},
		{"get own", "alice", "get", "", get, "", card},
		{"get own by bare JID", "alice", "get", "alice@localhost", get, "", card},
		{"other's", "bob", "get", "alice@localhost", get, "", card},
		{"set other's", "bob", "set", "alice@localhost", card, "forbidden", ""},
		{"unknown account", "bob", "get", "nobody@localhost", get, "service-unavailable", ""},
		{"too big", "alice", "set", "", big, "not-acceptable", ""},
		{"wrong element", "alice", "get", "", "<card xmlns='vcard-temp'/>", "bad-request", ""},
		{"unchanged after errors", "alice", "get", "", get, "", card},
		{"host", "bob", "get", "localhost", get, "", "<vCard xmlns='vcard-temp'/>"},
		{"clear", "alice", "set", "", "<vCard xmlns='vcard-temp'/>", "", ""},
		{"cleared", "bob", "get", "alice@localhost", get, "service-unavailable", ""},
		{"own, cleared", "alice", "get", "", get, "", "<vCard xmlns='vcard-temp'/>"},
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
			if v := r.FirstElement(); v != nil {
				got = v.String()
			}
			if got != tc.want {
				t.Fatalf("result %s, want %s", got, tc.want)
			}
		})
	}
}
