package offline_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"parley/internal/testserver"
)

const nsDelay = "urn:xmpp:delay"

// sync makes sure the server processed everything c sent before: stanzas of
// one session are handled in order, so the answer to a ping comes after.
func sync(t *testing.T, c *testserver.Client) {
	t.Helper()
	if r := c.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>"); testserver.ErrorCondition(r) != "" {
		t.Fatalf("ping: %s", r)
	}
}

func stored(t *testing.T, ts *testserver.TS, user string) int {
	t.Helper()
	n, err := ts.Store().Offline().Count(context.Background(), user+"@localhost")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStoreAndDeliver: a message to an account without an available
// resource is stored, and delivered on the next initial presence with a
// XEP-0203 <delay/> from the host with a UTC stamp of when it was stored,
// and its original 'to' (XEP-0160 §2).
func TestStoreAndDeliver(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice", "r")
	before := time.Now().Add(-time.Second)
	a.Send("<message to='bob@localhost' type='chat' id='m1'><body>hello</body></message>")
	sync(t, a)
	if n := stored(t, ts, "bob"); n != 1 {
		t.Fatalf("stored %d, want 1", n)
	}
	time.Sleep(20 * time.Millisecond) // the stamp must be the storing time, not the delivery time
	deliveredAfter := time.Now()

	b := online(t, ts, "bob", "r")
	m := b.ExpectStanza("message", "id=m1")
	if m.Attr("from") != a.JID || m.Attr("to") != "bob@localhost" || m.ChildText("", "body") != "hello" {
		t.Fatalf("delivered %s", m)
	}
	d := m.Child(nsDelay, "delay")
	if d == nil || d.Attr("from") != "localhost" {
		t.Fatalf("delay %v in %s", d, m)
	}
	stamp := d.Attr("stamp")
	st, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil || !strings.HasSuffix(stamp, "Z") {
		t.Fatalf("stamp %q is not UTC XEP-0082: %v", stamp, err)
	}
	if st.Before(before) || !st.Before(deliveredAfter) {
		t.Fatalf("stamp %s not between %s and %s", st, before, deliveredAfter)
	}
	if n := stored(t, ts, "bob"); n != 0 {
		t.Fatalf("%d left in storage after delivery", n)
	}
}

// TestWhatIsStored walks the XEP-0160 §3 type rules and the XEP-0334 hints.
func TestWhatIsStored(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice", "r")
	for _, tc := range []struct {
		name, msg string
		stored    bool
		bounce    string // expected error condition back to the sender, "" for none
	}{
		{"normal", "<message to='bob@localhost'><body>x</body></message>", true, ""},
		{"chat", "<message to='bob@localhost' type='chat'><body>x</body></message>", true, ""},
		{"to unavailable full JID", "<message to='bob@localhost/gone' type='chat'><body>x</body></message>", true, ""},
		{"receipt without body", "<message to='bob@localhost' type='chat'><received xmlns='urn:xmpp:receipts' id='x'/></message>", true, ""},
		{"store hint on chat state", "<message to='bob@localhost' type='chat'><composing xmlns='http://jabber.org/protocol/chatstates'/><store xmlns='urn:xmpp:hints'/></message>", true, ""},
		{"no-permanent-store still stored", "<message to='bob@localhost' type='chat'><body>x</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>", true, ""},
		{"headline", "<message to='bob@localhost' type='headline'><body>x</body></message>", false, ""},
		{"groupchat", "<message to='bob@localhost' type='groupchat'><body>x</body></message>", false, "service-unavailable"},
		{"no-store hint", "<message to='bob@localhost' type='chat'><body>x</body><no-store xmlns='urn:xmpp:hints'/></message>", false, ""},
		{"chat state only", "<message to='bob@localhost' type='chat'><thread>t</thread><composing xmlns='http://jabber.org/protocol/chatstates'/></message>", false, ""},
		{"empty", "<message to='bob@localhost' type='chat'/>", false, ""},
		{"unknown account", "<message to='nobody@localhost' type='chat'><body>x</body></message>", false, "service-unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := strings.Replace(tc.msg, "<message ", "<message id='"+t.Name()+"' ", 1)
			a.Send("%s", msg)
			sync(t, a)
			n := stored(t, ts, "bob")
			if got := n == 1; got != tc.stored {
				t.Fatalf("stored = %v (%d), want %v", got, n, tc.stored)
			}
			if tc.bounce != "" {
				e := a.ExpectStanza("message", "id="+t.Name(), "type=error")
				if testserver.ErrorCondition(e) != tc.bounce {
					t.Fatalf("bounce %s, want %s", e, tc.bounce)
				}
			}
			if _, err := ts.Store().Offline().Pop(context.Background(), "bob@localhost"); err != nil {
				t.Fatal(err)
			}
		})
	}
	// No unexpected bounces: the next stanza alice gets is the ping result.
	sync(t, a)
	for _, el := range a.Drain() {
		t.Errorf("unexpected stanza: %s", el)
	}
}

// TestQuota: with a full queue the sender gets service-unavailable
// (XEP-0160 §2 step 3) and the stored messages are kept.
func TestQuota(t *testing.T) {
	ts := start(t, "[limits]\noffline_quota = 2\n", "alice", "bob")
	a := online(t, ts, "alice", "r")
	for _, id := range []string{"q1", "q2", "q3"} {
		a.Send("<message to='bob@localhost' type='chat' id='%s'><body>%s</body></message>", id, id)
	}
	e := a.ExpectStanza("message", "id=q3", "type=error")
	if testserver.ErrorCondition(e) != "service-unavailable" {
		t.Fatalf("bounce %s", e)
	}
	if n := stored(t, ts, "bob"); n != 2 {
		t.Fatalf("stored %d, want 2", n)
	}
}

// TestOrderAndOnce: messages come out oldest first, and only once even when
// the account logs in again (Pop deletes what it delivers).
func TestOrderAndOnce(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice", "r")
	ids := []string{"o1", "o2", "o3", "o4", "o5"}
	for _, id := range ids {
		a.Send("<message to='bob@localhost' type='chat' id='%s'><body>%s</body></message>", id, id)
	}
	sync(t, a)

	b := online(t, ts, "bob", "first")
	for _, id := range ids {
		m := b.ExpectStanza("message")
		if m.Attr("id") != id {
			t.Fatalf("got %s, want id %s", m, id)
		}
	}
	b2 := online(t, ts, "bob", "second")
	for _, el := range b2.Drain() {
		if el.Local == "message" {
			t.Fatalf("delivered twice: %s", el)
		}
	}
	if n := stored(t, ts, "bob"); n != 0 {
		t.Fatalf("%d left in storage", n)
	}
}

// TestNotStoredWhenAvailable: with an available resource the message is
// delivered live and nothing is stored; a connected resource that has not
// sent presence does not count (RFC 6121 §8.5.2.1.1).
func TestNotStoredWhenAvailable(t *testing.T) {
	ts := start(t, "", "alice", "bob")
	a := online(t, ts, "alice", "r")
	b := ts.Login(t, "bob", password, "quiet")
	a.Send("<message to='bob@localhost' type='chat' id='n1'><body>1</body></message>")
	sync(t, a)
	if n := stored(t, ts, "bob"); n != 1 {
		t.Fatalf("message to a connected but unavailable account: stored %d, want 1", n)
	}
	b.Send("<presence/>")
	if m := b.ExpectStanza("message", "id=n1"); m.Child(nsDelay, "delay") == nil {
		t.Fatalf("no delay on %s", m)
	}
	a.Send("<message to='bob@localhost' type='chat' id='n2'><body>2</body></message>")
	if m := b.ExpectStanza("message", "id=n2"); m.Child(nsDelay, "delay") != nil {
		t.Fatalf("live message stamped: %s", m)
	}
	if n := stored(t, ts, "bob"); n != 0 {
		t.Fatalf("stored %d while available", n)
	}
}

// TestDisco: msgoffline is announced on the host (XEP-0160 §4).
func TestDisco(t *testing.T) {
	ts := start(t, "", "alice")
	a := ts.Login(t, "alice", password, "r")
	r := a.IQ("get", "localhost", "<query xmlns='http://jabber.org/protocol/disco#info'/>")
	for _, f := range r.Child("http://jabber.org/protocol/disco#info", "query").Elements() {
		if f.Local == "feature" && f.Attr("var") == "msgoffline" {
			return
		}
	}
	t.Fatalf("no msgoffline in %s", r)
}
