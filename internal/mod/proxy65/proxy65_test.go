package proxy65_test

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"parley/internal/mod/proxy65"
	"parley/internal/testserver"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

const baseCfg = `
[proxy65]
enabled = true
listen = "127.0.0.1:0"
activation_timeout = "1s"
`

type env struct {
	ts               *testserver.TS
	alice, bob       *testserver.Client
	proxyAddr        string
	aliceJID, bobJID jid.JID
}

func setup(t *testing.T, extra string) *env {
	t.Helper()
	ts := testserver.Start(t, baseCfg+extra)
	ts.AddUser(t, "alice", "password1")
	ts.AddUser(t, "bob", "password2")
	e := &env{ts: ts, alice: ts.Online(t, "alice", "password1", "laptop"), bob: ts.Online(t, "bob", "password2", "desk")}
	e.aliceJID, _ = jid.Parse(e.alice.JID)
	e.bobJID, _ = jid.Parse(e.bob.JID)
	e.alice.Send("<iq type='get' id='sh' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams'/></iq>")
	res := e.alice.ExpectStanza("iq", "id=sh", "type=result", "from=proxy.localhost")
	sh := res.FirstElement().Child(proxy65.NS, "streamhost")
	if sh == nil || sh.Attr("jid") != "proxy.localhost" || sh.Attr("host") != "127.0.0.1" || sh.Attr("port") == "" || sh.Attr("port") == "0" {
		t.Fatalf("streamhost: %s", res)
	}
	e.proxyAddr = net.JoinHostPort(sh.Attr("host"), sh.Attr("port"))
	return e
}

// socks connects to the proxy as XEP-0065 asks: no authentication, CONNECT
// to DOMAINNAME hash, port 0. It returns the connection and the reply code.
func socks(t *testing.T, addr, hash string) (net.Conn, byte) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte{5, 1, 0}); err != nil {
		t.Fatal(err)
	}
	var m [2]byte
	if _, err := io.ReadFull(c, m[:]); err != nil || m != [2]byte{5, 0} {
		t.Fatalf("method selection: %v %v", m, err)
	}
	req := append([]byte{5, 1, 0, 3, byte(len(hash))}, hash...)
	if _, err := c.Write(append(req, 0, 0)); err != nil {
		t.Fatal(err)
	}
	rep := make([]byte, 5+len(hash)+2)
	if _, err := io.ReadFull(c, rep); err != nil {
		t.Fatalf("reply: %v", err)
	}
	if rep[1] == 0 && string(rep[5:5+len(hash)]) != hash {
		t.Fatalf("BND.ADDR %q, want the hash", rep[5:5+len(hash)])
	}
	_ = c.SetDeadline(time.Time{})
	return c, rep[1]
}

func mustSocks(t *testing.T, addr, hash string) net.Conn {
	t.Helper()
	c, rep := socks(t, addr, hash)
	if rep != 0 {
		t.Fatalf("SOCKS5 reply %d", rep)
	}
	return c
}

func activate(c *testserver.Client, id, sid, target string) *xml.Element {
	c.Send("<iq type='set' id='%s' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams' sid='%s'><activate>%s</activate></query></iq>", id, sid, target)
	return c.ExpectStanza("iq", "id="+id)
}

func errCond(el *xml.Element) string {
	if el.Attr("type") != "error" {
		return ""
	}
	for _, c := range el.Child("", "error").Elements() {
		if c.Space == "urn:ietf:params:xml:ns:xmpp-stanzas" && c.Local != "text" {
			return c.Local
		}
	}
	return "?"
}

func TestDisco(t *testing.T) {
	e := setup(t, "")
	e.alice.Send("<iq type='get' id='i' to='proxy.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	info := e.alice.ExpectStanza("iq", "id=i", "type=result").FirstElement()
	id := info.Child("http://jabber.org/protocol/disco#info", "identity")
	if id == nil || id.Attr("category") != "proxy" || id.Attr("type") != "bytestreams" {
		t.Fatalf("identity: %s", info)
	}
	found := false
	for _, f := range info.Elements() {
		found = found || (f.Local == "feature" && f.Attr("var") == proxy65.NS)
	}
	if !found {
		t.Fatalf("no bytestreams feature: %s", info)
	}
	e.alice.Send("<iq type='get' id='it' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	items := e.alice.ExpectStanza("iq", "id=it", "type=result").FirstElement()
	listed := false
	for _, it := range items.Elements() {
		listed = listed || it.Attr("jid") == "proxy.localhost"
	}
	if !listed {
		t.Fatalf("proxy not in the host's disco#items: %s", items)
	}
	// Unknown payloads and JIDs under the proxy domain.
	e.alice.Send("<iq type='get' id='v' to='proxy.localhost'><query xmlns='jabber:iq:version'/></iq>")
	if c := errCond(e.alice.ExpectStanza("iq", "id=v")); c != "service-unavailable" {
		t.Fatalf("unknown namespace: %s", c)
	}
	e.alice.Send("<iq type='get' id='u' to='someone@proxy.localhost'><query xmlns='http://jabber.org/protocol/bytestreams'/></iq>")
	if c := errCond(e.alice.ExpectStanza("iq", "id=u")); c != "service-unavailable" {
		t.Fatalf("user at proxy: %s", c)
	}
}

func TestRelay(t *testing.T) {
	e := setup(t, "")
	sid := "sid-relay"
	hash := proxy65.Hash(sid, e.aliceJID, e.bobJID)

	// Target first (XEP-0065 §6.2 order), then the initiator.
	target := mustSocks(t, e.proxyAddr, hash)
	// Activation with only one party connected is refused.
	if c := errCond(activate(e.alice, "a0", sid, e.bob.JID)); c != "not-allowed" {
		t.Fatalf("half-open activation: %q", c)
	}
	initiator := mustSocks(t, e.proxyAddr, hash)

	// A third connection with the same hash cannot join.
	if _, rep := socks(t, e.proxyAddr, hash); rep == 0 {
		t.Fatal("third connection accepted")
	}
	// Nobody but the initiator can activate: bob, or alice naming a
	// different target, compute another hash.
	if c := errCond(activate(e.bob, "a1", sid, e.alice.JID)); c != "item-not-found" {
		t.Fatalf("activation by the target: %q", c)
	}
	if c := errCond(activate(e.bob, "a2", sid, e.bob.JID)); c != "item-not-found" {
		t.Fatalf("activation by non-initiator: %q", c)
	}
	if c := errCond(activate(e.alice, "a3", "other-sid", e.bob.JID)); c != "item-not-found" {
		t.Fatalf("wrong sid: %q", c)
	}
	if c := errCond(activate(e.alice, "a4", sid, "not a jid@@")); c != "jid-malformed" {
		t.Fatalf("bad target: %q", c)
	}
	if res := activate(e.alice, "go", sid, e.bob.JID); res.Attr("type") != "result" {
		t.Fatalf("activation: %s", res)
	}
	if c := errCond(activate(e.alice, "again", sid, e.bob.JID)); c != "item-not-found" && c != "not-allowed" {
		t.Fatalf("second activation: %q", c)
	}

	payload := make([]byte, 3<<20+17)
	_, _ = rand.Read(payload)
	errc := make(chan error, 1)
	go func() {
		_, err := initiator.Write(payload)
		if err == nil {
			err = initiator.(*net.TCPConn).CloseWrite()
		}
		errc <- err
	}()
	_ = target.SetReadDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(target)
	if err != nil {
		t.Fatalf("target read: %v", err)
	}
	if werr := <-errc; werr != nil {
		t.Fatalf("initiator write: %v", werr)
	}
	if !bytes.Equal(got, payload) {
		t.Fatalf("received %d bytes, sent %d; equal=%v", len(got), len(payload), bytes.Equal(got, payload))
	}
	// The other direction still works after the first one closed.
	if _, err := target.Write([]byte("thanks")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 6)
	_ = initiator.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(initiator, buf); err != nil || string(buf) != "thanks" {
		t.Fatalf("reverse direction: %q %v", buf, err)
	}
}

func TestUnactivatedTimeout(t *testing.T) {
	e := setup(t, "")
	sid := "sid-late"
	hash := proxy65.Hash(sid, e.aliceJID, e.bobJID)
	a := mustSocks(t, e.proxyAddr, hash)
	b := mustSocks(t, e.proxyAddr, hash)
	for _, c := range []net.Conn{a, b} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(make([]byte, 1))
		var ne net.Error
		if n != 0 || err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Fatalf("connection not closed by the proxy: n=%d err=%v", n, err)
		}
	}
	if c := errCond(activate(e.alice, "late", sid, e.bob.JID)); c != "item-not-found" {
		t.Fatalf("activation after timeout: %q", c)
	}
}

func TestTransferLimit(t *testing.T) {
	e := setup(t, "max_transfer_bytes = 100000\n")
	sid := "sid-big"
	hash := proxy65.Hash(sid, e.aliceJID, e.bobJID)
	target := mustSocks(t, e.proxyAddr, hash)
	initiator := mustSocks(t, e.proxyAddr, hash)
	if res := activate(e.alice, "go", sid, e.bob.JID); res.Attr("type") != "result" {
		t.Fatalf("activation: %s", res)
	}
	go func() { _, _ = initiator.Write(make([]byte, 300000)) }()
	_ = target.SetReadDeadline(time.Now().Add(10 * time.Second))
	got, _ := io.ReadAll(target)
	if len(got) != 100000 {
		t.Fatalf("relayed %d bytes, limit is 100000", len(got))
	}
}

func TestSOCKSRefusals(t *testing.T) {
	e := setup(t, "")
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", e.proxyAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		return c
	}
	t.Run("username/password only", func(t *testing.T) {
		c := dial()
		_, _ = c.Write([]byte{5, 1, 2})
		var m [2]byte
		if _, err := io.ReadFull(c, m[:]); err != nil || m != [2]byte{5, 0xff} {
			t.Fatalf("method reply %v %v", m, err)
		}
	})
	for _, tc := range []struct {
		name string
		req  []byte
		rep  byte
	}{
		{"IPv4 address", []byte{5, 1, 0, 1, 127, 0, 0, 1, 0, 0}, 8},
		{"BIND command", append(append([]byte{5, 2, 0, 3, 40}, bytes.Repeat([]byte("a"), 40)...), 0, 0), 7},
		{"not a hash", append(append([]byte{5, 1, 0, 3, 11}, "example.com"...), 0, 80), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial()
			_, _ = c.Write([]byte{5, 1, 0})
			var m [2]byte
			_, _ = io.ReadFull(c, m[:])
			_, _ = c.Write(tc.req)
			var rep [2]byte
			if _, err := io.ReadFull(c, rep[:]); err != nil || rep[1] != tc.rep {
				t.Fatalf("reply %v %v, want code %d", rep, err, tc.rep)
			}
		})
	}
}

func TestPendingBound(t *testing.T) {
	e := setup(t, "max_pending = 2\n")
	mustSocks(t, e.proxyAddr, proxy65.Hash("p1", e.aliceJID, e.bobJID))
	mustSocks(t, e.proxyAddr, proxy65.Hash("p2", e.aliceJID, e.bobJID))
	c, err := net.DialTimeout("tcp", e.proxyAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte{5, 1, 0})
	n, err := c.Read(make([]byte, 2))
	if n != 0 || err == nil {
		t.Fatalf("third pending connection served: %d %v", n, err)
	}
}

// One source address cannot hold more than its share of connections, and a
// closed connection gives its slot back.
func TestConnectionsPerAddress(t *testing.T) {
	e := setup(t, "max_connections_per_ip = 2\n")
	first := mustSocks(t, e.proxyAddr, proxy65.Hash("p1", e.aliceJID, e.bobJID))
	mustSocks(t, e.proxyAddr, proxy65.Hash("p2", e.aliceJID, e.bobJID))
	refused := func() bool {
		c, err := net.DialTimeout("tcp", e.proxyAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = c.Write([]byte{5, 1, 0})
		n, err := c.Read(make([]byte, 2))
		return n == 0 && err != nil
	}
	if !refused() {
		t.Fatal("third connection from the same address served")
	}
	_ = first.Close()
	deadline := time.Now().Add(5 * time.Second)
	for refused() {
		if time.Now().After(deadline) {
			t.Fatal("slot not given back after close")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
