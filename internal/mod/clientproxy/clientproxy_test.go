package clientproxy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"parley/internal/mod/clientproxy"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

const cfg = `
[[component.service]]
domain = "svc.localhost"
type = "client_proxy"
target_address = "impl@localhost"
timeout = "1s"
max_pending = 3
`

// approve logs the implementing client in, accepts the service's
// subscription request and waits until that has been processed.
func approve(t *testing.T, ts *testserver.TS, res string) *testserver.Client {
	t.Helper()
	c := ts.Online(t, "impl", "password0", res)
	c.ExpectStanza("presence", "type=subscribe", "from=svc.localhost")
	c.Send("<presence type='subscribed' to='svc.localhost'/>")
	sync(c)
	return c
}

// sync round-trips a ping: everything c sent before has been processed.
func sync(c *testserver.Client) {
	c.Send("<iq type='get' id='sync' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	c.ExpectStanza("iq", "id=sync", "type=result")
}

// online logs in another resource of the implementing client (already
// subscribed) and waits until its presence was broadcast.
func online(t *testing.T, ts *testserver.TS, res string) *testserver.Client {
	t.Helper()
	c := ts.Online(t, "impl", "password0", res)
	sync(c)
	return c
}

func start(t *testing.T) (*testserver.TS, *testserver.Client) {
	ts := testserver.Start(t, cfg)
	ts.AddUser(t, "impl", "password0")
	ts.AddUser(t, "alice", "password1")
	ts.AddUser(t, "mallory", "password2")
	return ts, ts.Online(t, "alice", "password1", "phone")
}

func query(c *testserver.Client, id string) {
	c.Send("<iq type='get' id='%s' to='svc.localhost'><query xmlns='urn:example:calc'>6*7</query></iq>", id)
}

func errCond(el *xml.Element) string {
	if el.Attr("type") != "error" {
		return ""
	}
	for _, c := range el.Child("", "error").Elements() {
		if c.Space == "urn:ietf:params:xml:ns:xmpp-stanzas" {
			return c.Local
		}
	}
	return "?"
}

func TestSubscriptionAndTranslation(t *testing.T) {
	ts, alice := start(t)

	// Nobody implements the service yet.
	query(alice, "early")
	if c := errCond(alice.ExpectStanza("iq", "id=early")); c != "service-unavailable" {
		t.Fatalf("no resource: %q", c)
	}

	impl := approve(t, ts, "a")
	query(alice, "q1")
	fwd := impl.ExpectStanza("iq", "id=q1", "type=get", "to=impl@localhost/a")
	from, err := jid.Parse(fwd.Attr("from"))
	if err != nil || from.Domain() != "svc.localhost" || from.Resource() == "" {
		t.Fatalf("translated from: %q", fwd.Attr("from"))
	}
	if got := clientproxy.Unescape(from.Local()); got != alice.JID {
		t.Fatalf("requester in localpart: %q, want %q", got, alice.JID)
	}
	if fwd.FirstElement() == nil || fwd.FirstElement().Text() != "6*7" {
		t.Fatalf("payload not forwarded: %s", fwd)
	}
	impl.Send("<iq type='result' id='q1' to='%s'><query xmlns='urn:example:calc'>42</query></iq>", fwd.Attr("from"))
	res := alice.ExpectStanza("iq", "id=q1", "type=result", "from=svc.localhost", "to="+alice.JID)
	if res.FirstElement() == nil || res.FirstElement().Text() != "42" {
		t.Fatalf("answer: %s", res)
	}

	// Errors are translated back too.
	query(alice, "q2")
	fwd = impl.ExpectStanza("iq", "id=q2")
	impl.Send("<iq type='error' id='q2' to='%s'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", fwd.Attr("from"))
	if c := errCond(alice.ExpectStanza("iq", "id=q2", "from=svc.localhost")); c != "item-not-found" {
		t.Fatalf("translated error: %q", c)
	}

	// The implementing client going offline leaves no resource.
	impl.Send("<presence type='unavailable'/>")
	sync(impl)
	query(alice, "q3")
	if c := errCond(alice.ExpectStanza("iq", "id=q3")); c != "service-unavailable" {
		t.Fatalf("after unavailable: %q", c)
	}
}

func TestRandomResource(t *testing.T) {
	ts, alice := start(t)
	a := approve(t, ts, "a")
	b := online(t, ts, "b")
	// Each resource answers whatever reaches it, on its own goroutine
	// (a client is read by one goroutine only).
	served := make(chan string, 64)
	for _, c := range []*testserver.Client{a, b} {
		go func() {
			for {
				el, err := c.Next()
				if err != nil {
					return
				}
				if el.Local == "iq" && el.Attr("type") == "get" {
					served <- el.Attr("to")
					c.Send("<iq type='result' id='%s' to='%s'/>", el.Attr("id"), el.Attr("from"))
				}
			}
		}()
	}
	got := map[string]int{}
	const n = 24
	for i := range n {
		id := fmt.Sprintf("r%d", i)
		query(alice, id)
		alice.ExpectStanza("iq", "id="+id, "type=result")
		got[<-served]++
	}
	if got["impl@localhost/a"] == 0 || got["impl@localhost/b"] == 0 || got["impl@localhost/a"]+got["impl@localhost/b"] != n {
		t.Fatalf("distribution over resources: %v", got)
	}
}

func TestOnlyForwardedRequestsAreAnswered(t *testing.T) {
	ts, alice := start(t)
	impl := approve(t, ts, "a")
	mallory := ts.Online(t, "mallory", "password2", "m")

	query(alice, "q1")
	fwd := impl.ExpectStanza("iq", "id=q1")
	translated := fwd.Attr("from")

	// Another user answering the translated address is ignored, and so is
	// the target answering an id or a token that was never issued.
	mallory.Send("<iq type='result' id='q1' to='%s'><query xmlns='urn:example:calc'>666</query></iq>", translated)
	sync(mallory)
	fake, _ := jid.Parse(translated)
	forged, _ := fake.Bare().WithResource("forged-token")
	impl.Send("<iq type='result' id='q1' to='%s'/>", forged)
	impl.Send("<iq type='result' id='other' to='%s'/>", translated)
	impl.Send("<iq type='result' id='q1' to='svc.localhost'/>")
	sync(impl)

	// The genuine answer gets through once; a replay does not.
	impl.Send("<iq type='result' id='q1' to='%s'><query xmlns='urn:example:calc'>42</query></iq>", translated)
	impl.Send("<iq type='result' id='q1' to='%s'><query xmlns='urn:example:calc'>43</query></iq>", translated)
	sync(impl)
	res := alice.ExpectStanza("iq", "id=q1")
	if res.FirstElement() == nil || res.FirstElement().Text() != "42" {
		t.Fatalf("wrong answer delivered: %s", res)
	}
	sync(alice)
	alice.Send("<iq type='get' id='last' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
	if el := alice.Expect(func(el *xml.Element) bool { return el.Local == "iq" }); el.Attr("id") != "last" {
		t.Fatalf("extra stanza delivered: %s", el)
	}
	// Requests to translated addresses are not forwarded.
	mallory.Send("<iq type='get' id='x' to='%s'><query xmlns='urn:example:calc'/></iq>", translated)
	if c := errCond(mallory.ExpectStanza("iq", "id=x")); c != "service-unavailable" {
		t.Fatalf("request to a translated address: %q", c)
	}
	// Messages are not proxied (seed 003 limitation) and say so.
	alice.Send("<message to='svc.localhost' id='m'><body>hi</body></message>")
	if c := errCond(alice.ExpectStanza("message", "id=m")); c != "service-unavailable" {
		t.Fatalf("message: %q", c)
	}
}

func TestTimeoutAndBound(t *testing.T) {
	ts, alice := start(t)
	impl := approve(t, ts, "a")
	for i := range 4 {
		query(alice, fmt.Sprintf("t%d", i))
	}
	// max_pending = 3: the fourth is refused at once.
	if c := errCond(alice.ExpectStanza("iq", "id=t3")); c != "resource-constraint" {
		t.Fatalf("over the bound: %q", c)
	}
	for i := range 3 {
		impl.ExpectStanza("iq", fmt.Sprintf("id=t%d", i))
	}
	// Unanswered requests time out (timeout = 1s) with an error.
	for i := range 3 {
		if c := errCond(alice.ExpectStanza("iq", fmt.Sprintf("id=t%d", i))); c != "remote-server-timeout" {
			t.Fatalf("timeout: %q", c)
		}
	}
}

func TestRestartKeepsSubscription(t *testing.T) {
	dir := t.TempDir()
	text := fmt.Sprintf("data_dir = %q\n", dir) + cfg
	ts1 := testserver.Start(t, text)
	ts1.AddUser(t, "impl", "password0")
	ts1.AddUser(t, "alice", "password1")
	approve(t, ts1, "a")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ts1.Shutdown(ctx)

	ts2 := testserver.Start(t, text)
	impl := ts2.Online(t, "impl", "password0", "a")
	sync(impl)
	alice := ts2.Online(t, "alice", "password1", "phone")
	query(alice, "after")
	// No new approval needed: the subscription survived the restart and
	// the service learned of the resource from its presence.
	fwd := impl.Expect(func(el *xml.Element) bool {
		if el.Local == "presence" && el.Attr("type") == "subscribe" {
			t.Fatalf("asked to approve again: %s", el)
		}
		return el.Local == "iq" && el.Attr("id") == "after"
	})
	impl.Send("<iq type='result' id='after' to='%s'/>", fwd.Attr("from"))
	alice.ExpectStanza("iq", "id=after", "type=result")
}

func TestEscape(t *testing.T) {
	for _, s := range []string{"alice@localhost/phone", `we ird"&'/:<>@\x@example.com/r/s`, "plain"} {
		esc := clientproxy.Escape(s)
		if got := clientproxy.Unescape(esc); got != s {
			t.Fatalf("round trip %q -> %q -> %q", s, esc, got)
		}
	}
}
