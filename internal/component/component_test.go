package component_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"parley/internal/component"
	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const cfgText = `
[limits]
preauth_timeout = "1s"

[component]
listen = "127.0.0.1:0"

[[component.service]]
domain = "gw.localhost"
secret = "s3cret"
name = "Test gateway"

[[component.service]]
domain = "hidden.example.net"
secret = "other"
public = false
`

func header(ns, to string) string {
	return fmt.Sprintf("<?xml version='1.0'?><stream:stream xmlns='%s' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", ns, to)
}

// dialComponent opens a component stream to domain and reads the header.
func dialComponent(t *testing.T, ts *testserver.TS, domain string) *testserver.Client {
	t.Helper()
	c := testserver.Dial(t, ts.ComponentAddr().String())
	c.ReadHeaderOnly(header("jabber:component:accept", domain))
	return c
}

// connectComponent completes the handshake for domain.
func connectComponent(t *testing.T, ts *testserver.TS, domain, secret string) *testserver.Client {
	t.Helper()
	c := dialComponent(t, ts, domain)
	if c.Header.ID == "" || c.Header.From != domain || c.Header.DefaultNS != "jabber:component:accept" {
		t.Fatalf("header: %+v", c.Header)
	}
	c.Send("<handshake>%s</handshake>", component.Handshake(c.Header.ID, secret))
	c.ExpectStanza("handshake")
	return c
}

func TestHandshake(t *testing.T) {
	ts := testserver.Start(t, cfgText)
	t.Run("good secret", func(t *testing.T) {
		connectComponent(t, ts, "gw.localhost", "s3cret")
	})
	t.Run("uppercase hex accepted", func(t *testing.T) {
		c := dialComponent(t, ts, "hidden.example.net")
		c.Send("<handshake>%s</handshake>", strings.ToUpper(component.Handshake(c.Header.ID, "other")))
		c.ExpectStanza("handshake")
	})
	tests := []struct {
		name, header, then, cond string
	}{
		{"bad secret", header("jabber:component:accept", "gw.localhost"), "<handshake>%s</handshake>", "not-authorized"},
		{"secret of another component", header("jabber:component:accept", "gw.localhost"), "<handshake>other:%s</handshake>", "not-authorized"},
		{"unknown domain", header("jabber:component:accept", "nope.localhost"), "", "host-unknown"},
		{"a virtual host is not a component", header("jabber:component:accept", "localhost"), "", "host-unknown"},
		{"client namespace", header("jabber:client", "gw.localhost"), "", "invalid-namespace"},
		{"stanza before handshake", header("jabber:component:accept", "gw.localhost"), "<message from='gw.localhost' to='alice@localhost'><body>x</body></message>", "not-authorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := testserver.Dial(t, ts.ComponentAddr().String())
			c.ReadHeaderOnly(tc.header)
			switch tc.then {
			case "":
			case "<handshake>%s</handshake>":
				c.Send(tc.then, component.Handshake(c.Header.ID, "wrong"))
			case "<handshake>other:%s</handshake>":
				c.Send("<handshake>%s</handshake>", component.Handshake(c.Header.ID, "other"))
			default:
				c.Send("%s", tc.then)
			}
			c.ExpectStreamError(tc.cond)
			c.ExpectClosed()
		})
	}
	t.Run("pre-handshake timeout", func(t *testing.T) {
		c := dialComponent(t, ts, "gw.localhost")
		c.ExpectStreamError("connection-timeout")
		c.ExpectClosed()
	})
}

func TestRoutingBothWays(t *testing.T) {
	ts := testserver.Start(t, cfgText)
	ts.AddUser(t, "alice", "password1")
	comp := connectComponent(t, ts, "gw.localhost", "s3cret")
	alice := ts.Online(t, "alice", "password1", "phone")

	// client → component, and the component's reply back.
	alice.Send("<iq type='get' id='info1' to='gw.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	req := comp.ExpectStanza("iq", "id=info1", "type=get", "to=gw.localhost", "from="+alice.JID)
	comp.Send("<iq type='result' id='%s' from='gw.localhost' to='%s'><query xmlns='http://jabber.org/protocol/disco#info'><identity category='gateway' type='irc' name='x'/></query></iq>",
		req.Attr("id"), req.Attr("from"))
	res := alice.ExpectStanza("iq", "id=info1", "type=result", "from=gw.localhost")
	if res.FirstElement() == nil || res.FirstElement().Child("http://jabber.org/protocol/disco#info", "identity") == nil {
		t.Fatalf("reply lost its payload: %s", res)
	}

	// JIDs under the component's domain go to the component too.
	alice.Send("<message to='room@gw.localhost/nick' id='m1'><body>hi</body></message>")
	comp.ExpectStanza("message", "id=m1", "to=room@gw.localhost/nick", "from="+alice.JID)

	// component → a user's bare JID from any JID under its domain.
	comp.Send("<message from='bot@gw.localhost/x' to='alice@localhost' id='m2'><body>hello</body></message>")
	m := alice.ExpectStanza("message", "id=m2", "from=bot@gw.localhost/x")
	if m.ChildText("", "body") != "hello" {
		t.Fatalf("body: %s", m)
	}

	// An IQ from the component to a user nobody serves bounces back.
	comp.Send("<iq type='get' id='q1' from='gw.localhost' to='nobody@localhost'><query xmlns='jabber:iq:version'/></iq>")
	comp.ExpectStanza("iq", "id=q1", "type=error")

	// A malformed 'to' gets jid-malformed, the stream stays up.
	comp.Send("<message from='gw.localhost' to='@@bad' id='m3'><body>x</body></message>")
	e := comp.ExpectStanza("message", "id=m3", "type=error")
	if e.Child("", "error") == nil {
		t.Fatalf("no error element: %s", e)
	}
	comp.Send("<message from='gw.localhost' to='alice@localhost' id='m4'><body>still here</body></message>")
	alice.ExpectStanza("message", "id=m4")
}

func TestComponentMayNotSpoof(t *testing.T) {
	ts := testserver.Start(t, cfgText)
	ts.AddUser(t, "alice", "password1")
	alice := ts.Online(t, "alice", "password1", "phone")
	for _, tc := range []struct{ name, stanza, cond string }{
		{"user of a host", "<message from='alice@localhost/phone' to='alice@localhost'><body>spoof</body></message>", "invalid-from"},
		{"the host itself", "<message from='localhost' to='alice@localhost'><body>spoof</body></message>", "invalid-from"},
		{"another component", "<message from='hidden.example.net' to='alice@localhost'><body>spoof</body></message>", "invalid-from"},
		{"suffix trick", "<message from='evilgw.localhost' to='alice@localhost'><body>spoof</body></message>", "invalid-from"},
		{"missing from", "<message to='alice@localhost'><body>x</body></message>", "improper-addressing"},
		{"missing to", "<message from='gw.localhost'><body>x</body></message>", "improper-addressing"},
		{"not a stanza", "<foo xmlns='urn:x'/>", "unsupported-stanza-type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			comp := connectComponent(t, ts, "gw.localhost", "s3cret")
			comp.Send("%s", tc.stanza)
			comp.ExpectStreamError(tc.cond)
			comp.ExpectClosed()
		})
	}
	// None of the spoofed messages reached alice.
	alice.Send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	el := alice.Expect(func(el *xml.Element) bool { return el.Local == "message" || el.Attr("id") == "p1" })
	if el.Local == "message" {
		t.Fatalf("spoofed message delivered: %s", el)
	}
}

func TestReconnectReplaces(t *testing.T) {
	ts := testserver.Start(t, cfgText)
	ts.AddUser(t, "alice", "password1")
	alice := ts.Online(t, "alice", "password1", "phone")
	first := connectComponent(t, ts, "gw.localhost", "s3cret")
	second := connectComponent(t, ts, "gw.localhost", "s3cret")
	first.ExpectStreamError("conflict")
	first.ExpectClosed()
	alice.Send("<message to='gw.localhost' id='after'><body>x</body></message>")
	second.ExpectStanza("message", "id=after")
	if !ts.Components().Connected("gw.localhost") {
		t.Fatal("second connection not registered")
	}
}

func TestDisconnectedComponentAndDisco(t *testing.T) {
	ts := testserver.Start(t, cfgText)
	ts.AddUser(t, "alice", "password1")
	alice := ts.Online(t, "alice", "password1", "phone")

	alice.Send("<iq type='get' id='i1' to='gw.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	e := alice.ExpectStanza("iq", "id=i1", "type=error", "from=gw.localhost")
	if e.Child("", "error").Child("urn:ietf:params:xml:ns:xmpp-stanzas", "service-unavailable") == nil {
		t.Fatalf("want service-unavailable: %s", e)
	}

	// After the component connects and leaves, the placeholder answers again.
	comp := connectComponent(t, ts, "gw.localhost", "s3cret")
	comp.Close()
	comp.ExpectClosed()
	alice.Send("<iq type='get' id='i2' to='gw.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	alice.ExpectStanza("iq", "id=i2", "type=error")

	alice.Send("<iq type='get' id='items' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	items := alice.ExpectStanza("iq", "id=items", "type=result")
	var jids []string
	for _, it := range items.FirstElement().Elements() {
		jids = append(jids, it.Attr("jid"))
	}
	found, hidden := false, false
	for _, j := range jids {
		found = found || j == "gw.localhost"
		hidden = hidden || j == "hidden.example.net"
	}
	if !found || hidden {
		t.Fatalf("disco#items = %v: want gw.localhost listed and hidden.example.net not", jids)
	}
}

func TestNoListenerWithoutExternalComponents(t *testing.T) {
	ts := testserver.Start(t, "[component]\nlisten = \"127.0.0.1:0\"\n")
	if ts.ComponentAddr() != nil {
		t.Fatalf("listening on %s with no component configured", ts.ComponentAddr())
	}
}

// Connection flood on the component port: past limits.max_connections_per_ip
// connections from one address are closed at accept, before any handshake.
func TestComponentMaxConnectionsPerIP(t *testing.T) {
	ts := testserver.Start(t, strings.Replace(cfgText, "[limits]\n", "[limits]\nmax_connections_per_ip = 2\n", 1))
	a := dialComponent(t, ts, "gw.localhost")
	dialComponent(t, ts, "gw.localhost")
	nc, err := net.Dial("tcp", ts.ComponentAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := nc.Read(make([]byte, 64)); n != 0 || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third connection from one address served (n=%d, err=%v)", n, err)
	}
	// A legitimate component still gets in once a place is free.
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		nc, err := net.Dial("tcp", ts.ComponentAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		_, _ = nc.Write([]byte(header("jabber:component:accept", "gw.localhost")))
		_ = nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, _ := nc.Read(make([]byte, 64))
		_ = nc.Close()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no place freed after a connection closed")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
