package c2s_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"parley/internal/module"
	"parley/internal/router"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// The holder's side of a cluster handover (c2s.Server.HandOver), on one
// server: the answer copies the session; a session the new node did not
// take stays, detached, and its client resumes it here as if nothing had
// been asked; one that another login replaced ends like a replaced
// session; one that moved is gone without a word to anyone.
func TestHandOverOutcomes(t *testing.T) {
	ts := testserver.Start(t, noArchive)
	ts.AddUsers(t, "password1", "alice", "bob")
	ts.GrantSubscription(t, "alice", "bob")
	ts.GrantSubscription(t, "bob", "alice")
	bob := ts.Online(t, "bob", "password1", "b")
	alice, previd := smClient(t, ts, "alice", "phone")
	bob.ExpectStanza("presence", "from=alice@localhost/phone")
	bob.Send("<message to='alice@localhost/phone' type='chat' id='m1'><body>one</body></message>")
	alice.ExpectStanza("message", "id=m1")

	ctx := context.Background()
	bare := jid.MustParse("alice@localhost")
	c2s := ts.C2S()
	if _, _, err := c2s.HandOver(ctx, bare, "nope", 0); !errors.Is(err, router.ErrNoHandover) {
		t.Fatalf("unknown previd: %v", err)
	}
	if _, _, err := c2s.HandOver(ctx, jid.MustParse("bob@localhost"), previd, 0); !errors.Is(err, router.ErrNoHandover) {
		t.Fatalf("another account's previd: %v", err)
	}
	var refused *router.HandoverRefused
	if _, _, err := c2s.HandOver(ctx, bare, previd, 99); !errors.As(err, &refused) {
		t.Fatalf("h too high: %v", err)
	}

	// handOver hands the session over while c, its client's connection,
	// is still attached: c ends with <conflict/>.
	handOver := func(previd string, c *testserver.Client) (*router.Handover, func(router.HandoverOutcome)) {
		t.Helper()
		ho, finish, err := c2s.HandOver(ctx, bare, previd, 0)
		if err != nil {
			t.Fatal(err)
		}
		c.ExpectStreamError("conflict")
		return ho, finish
	}

	// The copy has the message.
	ho, finish := handOver(previd, alice)
	if ho.JID != "alice@localhost/phone" || len(ho.Unacked) == 0 || ho.Presence == "" || ho.Values["presence.announced"] == "" {
		t.Fatalf("copy: %+v", ho)
	}
	if _, _, err := c2s.HandOver(ctx, bare, previd, 0); !errors.Is(err, router.ErrNoHandover) {
		t.Fatalf("a second handover while the first is open: %v", err)
	}
	// Stayed: the client resumes it here, and gets the message again.
	finish(router.HandoverStayed)
	again := ts.Authenticated(t, "alice", "password1")
	again.Send("<resume xmlns='%s' previd='%s' h='0'/>", nsSM, previd)
	if el := again.Expect(func(el *xml.Element) bool { return el.Space == nsSM && (el.Local == "resumed" || el.Local == "failed") }); el.Local != "resumed" {
		t.Fatalf("resumption after a handover that did not happen: %s", el)
	}
	again.ExpectStanza("message", "id=m1")

	// Replaced by another login: it ends as a replaced session does, the
	// message (not archived here) goes to offline storage.
	_, finish = handOver(previd, again)
	finish(router.HandoverReplaced)
	bob.Expect(func(el *xml.Element) bool {
		return el.Local == "presence" && el.Attr("from") == "alice@localhost/phone" && el.Attr("type") == "unavailable"
	})
	fresh := ts.Online(t, "alice", "password1", "desk")
	fresh.ExpectStanza("message", "id=m1")

	// Moved: gone, and nobody is told.
	phone, previd2 := smClient(t, ts, "alice", "phone")
	bob.ExpectStanza("presence", "from=alice@localhost/phone")
	_, finish = handOver(previd2, phone)
	finish(router.HandoverMoved)
	if s := ts.Router().Session(jid.MustParse("alice@localhost/phone")); s != nil {
		t.Fatalf("the moved session is still here: %v", s)
	}
	bob.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
	for _, el := range bob.Pending() {
		if el.Local == "presence" && el.Attr("from") == "alice@localhost/phone" && el.Attr("type") == "unavailable" {
			t.Fatalf("the move was announced: %s", el)
		}
	}
}

// moveFixture is one server with bob online and alice's resumable
// stream-managed session (resource "phone"), recording every "detached",
// "held" and "unbound" event of the host as "<event>[<message ids>]".
type moveFixture struct {
	ts         *testserver.TS
	alice, bob *testserver.Client
	previd     string
	events     chan string
}

func newMoveFixture(t *testing.T) *moveFixture {
	ts := testserver.Start(t, noArchive)
	ts.AddUsers(t, "password1", "alice", "bob")
	f := &moveFixture{ts: ts, bob: ts.Online(t, "bob", "password1", "b"), events: make(chan string, 64)}
	f.alice, f.previd = smClient(t, ts, "alice", "phone")
	h := ts.Hosts()[0]
	for _, name := range []string{module.EventSessionDetached, module.EventSessionHeld, module.EventSessionUnbound} {
		t.Cleanup(h.Sessions.On(name, 0, func(ev *module.SessionEvent) bool {
			var ids []string
			for _, el := range ev.Unacked {
				if el.Local == "message" {
					ids = append(ids, el.Attr("id"))
				}
			}
			f.events <- name + fmt.Sprint(ids)
			return false
		}))
	}
	return f
}

// routed has bob send message id to alice's session and returns once it
// has been queued there (bob's stanzas are handled in order).
func (f *moveFixture) routed(id string) {
	f.bob.Send("<message to='alice@localhost/phone' type='chat' id='%s'><body>%s</body></message>", id, id)
	f.bob.IQ("get", "localhost", "<ping xmlns='urn:xmpp:ping'/>")
}

// expect fails t unless the next events are want, in order.
func (f *moveFixture) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-f.events:
			if got != w {
				t.Fatalf("event %q, want %q", got, w)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %q", w)
		}
	}
}

// handOver starts handing alice's session over to another node.
func (f *moveFixture) handOver(t *testing.T) func(router.HandoverOutcome) {
	t.Helper()
	_, finish, err := f.ts.C2S().HandOver(context.Background(), jid.MustParse("alice@localhost"), f.previd, 0)
	if err != nil {
		t.Fatal(err)
	}
	return finish
}

// A session that was already detached when a handover began, and stays:
// what was queued while it moved is told of as "held" when it stays
// (nothing while it moves: its client was resuming elsewhere), and what
// was told of before the move is not told again.
func TestHandOverStayedTellsWhatCameDuringTheMove(t *testing.T) {
	f := newMoveFixture(t)
	f.routed("before")
	f.alice.ExpectStanza("message", "id=before")
	cut(f.alice)
	f.expect(t, "detached[before]")
	f.routed("detached")
	f.expect(t, "held[detached]")

	finish := f.handOver(t)
	f.routed("moving")
	finish(router.HandoverStayed)
	f.expect(t, "held[moving]")
	f.routed("stayed")
	f.expect(t, "held[stayed]")
	select {
	case got := <-f.events:
		t.Fatalf("told twice: %s", got)
	default:
	}
}

// A Close that comes while the session moves is done when it stays; what
// the session kept is told of first ("detached": its client's connection
// was attached when the move began), since the close routes it again as
// leftovers that push does not tell of.
func TestHandOverStayedThenClosedTellsFirst(t *testing.T) {
	f := newMoveFixture(t)
	f.routed("before")
	f.alice.ExpectStanza("message", "id=before")

	finish := f.handOver(t)
	f.alice.ExpectStreamError("conflict")
	f.routed("moving")
	f.ts.Router().Session(jid.MustParse("alice@localhost/phone")).Close(stanza.StreamPolicyViolation, "kicked")
	finish(router.HandoverStayed)
	f.expect(t, "detached[before moving]", "unbound[]")
}
