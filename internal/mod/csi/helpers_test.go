package csi_test

import (
	"testing"
	"time"

	"parley/internal/mod/csi"
	"parley/internal/module"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// password is every test account's password.
const password = "password123"

const nsChatStates = "http://jabber.org/protocol/chatstates"

// start boots a server with the given extra config and accounts.
func start(t *testing.T, cfg string, users ...string) *testserver.TS {
	t.Helper()
	ts := testserver.Start(t, cfg)
	ts.AddUsers(t, password, users...)
	return ts
}

// session returns the server's session of a client.
func session(t *testing.T, ts *testserver.TS, c *testserver.Client) module.Session {
	t.Helper()
	j, err := jid.Parse(c.JID)
	if err != nil {
		t.Fatal(err)
	}
	s := ts.Router().Session(j)
	if s == nil {
		t.Fatalf("no session for %s", c.JID)
	}
	return s
}

// setState sends <inactive/> or <active/> and waits until the server has
// processed it: the answer to a ping sent after it comes after the nonza
// was handled (XEP-0352 §5.1). It returns what arrived before the pong.
func setState(t *testing.T, c *testserver.Client, state string) []*xml.Element {
	t.Helper()
	c.Send("<%s xmlns='urn:xmpp:csi:0'/>", state)
	return ping(t, c)
}

// ping sends an IQ ping to the server and returns, in order, every
// element that arrived before its result.
func ping(t *testing.T, c *testserver.Client) []*xml.Element {
	t.Helper()
	id := "ping-" + time.Now().Format("150405.000000000")
	c.Send("<iq type='get' id='%s' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>", id)
	var before []*xml.Element
	for {
		el, err := c.Next()
		if err != nil {
			t.Fatalf("%s: waiting for the pong: %v (got %v)", c.JID, err, strs(before))
		}
		if el.Local == "iq" && el.Attr("id") == id {
			if el.Attr("type") != "result" {
				t.Fatalf("ping: %s", el)
			}
			return before
		}
		before = append(before, el)
	}
}

// until reads c's stream in order up to and including the first element
// match accepts, and returns everything read.
func until(t *testing.T, c *testserver.Client, match func(*xml.Element) bool) []*xml.Element {
	t.Helper()
	var got []*xml.Element
	for {
		el, err := c.Next()
		if err != nil {
			t.Fatalf("%s: %v (got %v)", c.JID, err, strs(got))
		}
		got = append(got, el)
		if match(el) {
			return got
		}
	}
}

// waitHeld waits until the server holds n stanzas for s.
func waitHeld(t *testing.T, s module.Session, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := csi.Held(s)
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d stanzas held, want %d", s.JID(), got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func strs(els []*xml.Element) []string {
	var out []string
	for _, el := range els {
		out = append(out, el.String())
	}
	return out
}

// describe names each element for comparisons: "presence bob@localhost/r
// show=away", "message bob@localhost/r composing", "message ... body=hi".
func describe(els []*xml.Element) []string {
	var out []string
	for _, el := range els {
		d := el.Local + " " + el.Attr("from")
		if typ := el.Attr("type"); typ != "" && el.Local != "message" {
			d += " type=" + typ
		}
		if s := el.ChildText("", "show"); s != "" {
			d += " show=" + s
		}
		if cs := el.ChildNS(nsChatStates); cs != nil {
			d += " " + cs.Local
		}
		if th := el.ChildText("", "thread"); th != "" {
			d += " thread=" + th
		}
		if b := el.Child("", "body"); b != nil {
			d += " body=" + b.Text()
		}
		out = append(out, d)
	}
	return out
}
