package presence_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"parley/internal/component"
	"parley/internal/testserver"
)

// Subscription-request flood: a component (like a remote server) may send
// from any JID at its domain, so it can invent requesters without end.
// RFC 6121 §3.1.3 keeps unanswered requests until the user answers; they
// are bounded by limits.max_pending_subscriptions, the rest are refused with
// resource-constraint, and an oversized request is not stored whole.
func TestSubscriptionRequestFloodIsBounded(t *testing.T) {
	ts := testserver.Start(t, `
[limits]
max_pending_subscriptions = 5
[component]
listen = "127.0.0.1:0"
rate_bytes_per_second = 10000000
[[component.service]]
domain = "gw.localhost"
secret = "s3cret"
`)
	ts.AddUser(t, "bob", password)
	gw := testserver.Dial(t, ts.ComponentAddr().String())
	gw.ReadHeaderOnly("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='gw.localhost'>")
	gw.Send("<handshake>%s</handshake>", component.Handshake(gw.Header.ID, "s3cret"))
	gw.ExpectStanza("handshake")

	big := strings.Repeat("x", 100000)
	for i := range 8 {
		status := "hi"
		if i == 0 {
			status = big
		}
		gw.Send("<presence type='subscribe' from='u%d@gw.localhost' to='bob@localhost'><status>%s</status></presence>", i, status)
	}
	for i := 5; i < 8; i++ {
		el := gw.ExpectStanza("presence", "type=error", fmt.Sprintf("to=u%d@gw.localhost", i))
		if !strings.Contains(el.String(), "<resource-constraint ") {
			t.Fatalf("want resource-constraint, got %s", el)
		}
	}
	stored, err := ts.Store().KV().List(context.Background(), "roster.pending-in", "bob@localhost")
	if err != nil {
		t.Fatal(err)
	}
	if len(stored) != 5 {
		t.Fatalf("%d pending requests stored, want 5", len(stored))
	}
	for k, v := range stored {
		if len(v) > 4096 {
			t.Fatalf("request from %s stored with %d bytes", k, len(v))
		}
	}

	// Bob still gets the five he can answer when he comes online; answering
	// one frees a place for a new requester.
	bob := ts.Login(t, "bob", password, "r")
	bob.Send("<presence/>")
	for i := range 5 {
		bob.ExpectStanza("presence", "type=subscribe", fmt.Sprintf("from=u%d@gw.localhost", i))
	}
	bob.Send("<presence type='unsubscribed' to='u1@gw.localhost'/>")
	gw.ExpectStanza("presence", "type=unsubscribed", "to=u1@gw.localhost")
	gw.Send("<presence type='subscribe' from='u9@gw.localhost' to='bob@localhost'/>")
	bob.ExpectStanza("presence", "type=subscribe", "from=u9@gw.localhost")
}
