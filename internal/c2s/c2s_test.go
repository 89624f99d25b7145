package c2s_test

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"parley/internal/testserver"
	"parley/internal/xmpp/xml"
)

const header = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"

func TestFeaturesBeforeTLSOfferOnlyRequiredStartTLS(t *testing.T) {
	ts := testserver.Start(t, "")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	st := c.Features.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls")
	if st == nil || st.Child("", "required") == nil {
		t.Fatalf("want <starttls><required/></starttls>, got %s", c.Features)
	}
	if c.Features.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms") != nil {
		t.Fatalf("mechanisms offered before TLS: %s", c.Features)
	}
	if c.Header.From != "localhost" || c.Header.ID == "" || c.Header.Version != "1.0" {
		t.Fatalf("bad stream header %+v", c.Header)
	}
	// Authenticating anyway is refused.
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGEAYg==</auth>")
	f := c.ExpectStanza("failure")
	if f.Child("", "encryption-required") == nil {
		t.Fatalf("want encryption-required, got %s", f)
	}
}

func TestStreamErrors(t *testing.T) {
	ts := testserver.Start(t, "")
	cases := []struct {
		name, header, after, cond string
	}{
		{"unknown host", strings.Replace(header, "to='localhost'", "to='elsewhere.example'", 1), "", "host-unknown"},
		{"server namespace on client port", strings.Replace(header, "jabber:client", "jabber:server", 1), "", "invalid-namespace"},
		{"pre-1.0 stream", strings.Replace(header, "to='localhost' version='1.0'>", "to='localhost'>", 1), "", "unsupported-version"},
		{"comment", header, "<!-- hi -->", "restricted-xml"},
		{"processing instruction", header, "<?foo bar?>", "restricted-xml"},
		{"malformed", header, "<message><body></message>", "not-well-formed"},
		{"stanza before auth", header, "<message to='a@localhost'><body>x</body></message>", "not-authorized"},
		{"unknown top-level element", header, "<foo xmlns='urn:example'/>", "unsupported-stanza-type"},
		// RFC 6120 §11.6: only UTF-8.
		{"UTF-16 with byte-order mark", utf16LE(header, true), "", "unsupported-encoding"},
		{"UTF-16 without byte-order mark", utf16LE(header, false), "", "unsupported-encoding"},
		{"declared UTF-16", strings.Replace(header, "version='1.0'?>", "version='1.0' encoding='UTF-16'?>", 1), "", "unsupported-encoding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testserver.Dial(t, ts.StartTLSAddr())
			c.ReadHeaderOnly(tc.header)
			if tc.after != "" {
				c.Send("%s", tc.after)
			}
			c.ExpectStreamError(tc.cond)
			c.ExpectClosed()
		})
	}
}

// utf16LE encodes s (ASCII) as UTF-16 little-endian, with a byte-order
// mark when bom is set.
func utf16LE(s string, bom bool) string {
	var b strings.Builder
	if bom {
		b.WriteString("\xff\xfe")
	}
	for i := 0; i < len(s); i++ {
		b.WriteByte(s[i])
		b.WriteByte(0)
	}
	return b.String()
}

func TestDoctypeIsRefused(t *testing.T) {
	ts := testserver.Start(t, "")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Send("%s", "<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 '&lol;&lol;&lol;'>]>"+header[len("<?xml version='1.0'?>"):])
	// The server may refuse before or after sending its header; either way
	// the connection ends without any expansion.
	buf := make([]byte, 4096)
	_ = c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got strings.Builder
	for {
		n, err := c.Conn.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(got.String(), "restricted-xml") {
		t.Fatalf("want restricted-xml stream error, got %q", got.String())
	}
}

func TestStanzaSizeLimit(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nmax_stanza_bytes = 8192\nrate_burst_bytes = 1000000\nrate_bytes_per_second = 1000000\n")
	ts.AddUser(t, "alice", "password1")
	c := ts.Login(t, "alice", "password1", "r")
	c.Send("<message to='bob@localhost'><body>%s</body></message>", strings.Repeat("x", 9000))
	c.ExpectStreamError("policy-violation")
	c.ExpectClosed()
}

func TestPreAuthTimeout(t *testing.T) {
	ts := testserver.Start(t, "[limits]\npreauth_timeout = \"1s\"\n")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	c.ExpectStreamError("connection-timeout")
}

// A client that never sends its header still gets a well-formed stream
// error: our header first, then <connection-timeout/> (RFC 6120 §4.9.1.2).
func TestPreAuthTimeoutBeforeHeaderOpensStream(t *testing.T) {
	ts := testserver.Start(t, "[limits]\npreauth_timeout = \"1s\"\n")
	nc, err := net.Dial("tcp", ts.StartTLSAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, _ := io.ReadAll(nc)
	dec := xml.NewDecoder(bytes.NewReader(got), xml.DefaultLimits())
	if _, err := dec.ReadHeader(); err != nil {
		t.Fatalf("no stream header before the error: %q (%v)", got, err)
	}
	el, err := dec.Next()
	if err != nil || el.Local != "error" || el.Child("urn:ietf:params:xml:ns:xmpp-streams", "connection-timeout") == nil {
		t.Fatalf("want <connection-timeout/>, got %q", got)
	}
}

func TestPlainLoginAndBind(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	c := ts.Login(t, "alice", "password1", "")
	if !strings.HasPrefix(c.JID, "alice@localhost/") || len(c.JID) <= len("alice@localhost/") {
		t.Fatalf("server-generated resource missing: %q", c.JID)
	}
	// RFC 3921 session establishment is accepted.
	c.Send("<iq type='set' id='s1'><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></iq>")
	c.ExpectStanza("iq", "id=s1", "type=result")
}

func TestDirectTLS(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	c := testserver.DialTLS(t, ts.DirectTLSAddr(), "localhost")
	c.Open("localhost")
	if c.Features.Child("urn:ietf:params:xml:ns:xmpp-tls", "starttls") != nil {
		t.Fatalf("starttls offered on a direct TLS stream: %s", c.Features)
	}
	c.AuthPlain("localhost", "alice", "password1")
	c.Bind("laptop")
	if c.JID != "alice@localhost/laptop" {
		t.Fatalf("jid %q", c.JID)
	}
}

func TestAuthFailuresLookTheSameAndEndTheStream(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nmax_auth_failures = 3\n")
	ts.AddUser(t, "alice", "password1")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	c.StartTLS("localhost")
	for i, creds := range []string{"\x00alice\x00wrong", "\x00nobody\x00password1", "\x00alice\x00wrong2"} {
		c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>", base64.StdEncoding.EncodeToString([]byte(creds)))
		f := c.ExpectStanza("failure")
		if f.Child("", "not-authorized") == nil && f.Child("", "malformed-request") == nil {
			t.Fatalf("attempt %d: %s", i, f)
		}
		if i < 2 && f.Child("", "not-authorized") == nil {
			t.Fatalf("attempt %d: unknown user and wrong password must both be not-authorized: %s", i, f)
		}
	}
	c.ExpectStreamError("policy-violation")
}

// scramLogin runs a SCRAM exchange with xdg-go/scram's client.
func scramLogin(t *testing.T, c *testserver.Client, mech, user, pass string, cb *scram.ChannelBinding) *xml.Element {
	t.Helper()
	var hg scram.HashGeneratorFcn
	switch strings.TrimSuffix(mech, "-PLUS") {
	case "SCRAM-SHA-1":
		hg = scram.SHA1
	case "SCRAM-SHA-256":
		hg = scram.SHA256
	case "SCRAM-SHA-512":
		hg = scram.SHA512
	}
	cl, err := hg.NewClient(user, pass, "")
	if err != nil {
		t.Fatal(err)
	}
	conv := cl.NewConversation()
	if cb != nil {
		conv = cl.NewConversationWithChannelBinding(*cb)
	}
	first, err := conv.Step("")
	if err != nil {
		t.Fatal(err)
	}
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>", mech, base64.StdEncoding.EncodeToString([]byte(first)))
	for {
		el := c.Expect(func(el *xml.Element) bool {
			return el.Local == "challenge" || el.Local == "success" || el.Local == "failure"
		})
		if el.Local != "challenge" {
			if el.Local == "success" {
				data, _ := base64.StdEncoding.DecodeString(el.Text())
				if _, err := conv.Step(string(data)); err != nil {
					t.Fatalf("server final message rejected: %v", err)
				}
			}
			return el
		}
		data, _ := base64.StdEncoding.DecodeString(el.Text())
		resp, err := conv.Step(string(data))
		if err != nil {
			t.Fatal(err)
		}
		c.Send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</response>", base64.StdEncoding.EncodeToString([]byte(resp)))
	}
}

func TestSCRAMMechanisms(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	for _, mech := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256", "SCRAM-SHA-512", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256-PLUS", "SCRAM-SHA-512-PLUS"} {
		for _, pass := range []string{"password1", "wrong"} {
			t.Run(mech+"/"+pass, func(t *testing.T) {
				c := testserver.Dial(t, ts.StartTLSAddr())
				c.Open("localhost")
				c.StartTLS("localhost")
				mechs := c.Features.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms")
				found := false
				for _, m := range mechs.Elements() {
					found = found || m.Text() == mech
				}
				if !found {
					t.Fatalf("%s not offered: %s", mech, mechs)
				}
				var cb *scram.ChannelBinding
				if strings.HasSuffix(mech, "-PLUS") {
					st := c.Conn.(*tls.Conn).ConnectionState()
					data, err := st.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
					if err != nil {
						t.Fatal(err)
					}
					cb = &scram.ChannelBinding{Type: scram.ChannelBindingTLSExporter, Data: data}
				}
				el := scramLogin(t, c, mech, "alice", pass, cb)
				if want := map[bool]string{true: "success", false: "failure"}[pass == "password1"]; el.Local != want {
					t.Fatalf("got %s, want %s", el, want)
				}
			})
		}
	}
}

func TestResourceConflictReplacesOldSession(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	old := ts.Login(t, "alice", "password1", "phone")
	_ = ts.Login(t, "alice", "password1", "phone")
	old.ExpectStreamError("conflict")
}

func TestMaxSessionsPerAccount(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nmax_sessions_per_account = 2\n")
	ts.AddUser(t, "alice", "password1")
	ts.Login(t, "alice", "password1", "a")
	ts.Login(t, "alice", "password1", "b")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	c.StartTLS("localhost")
	c.AuthPlain("localhost", "alice", "password1")
	c.Send("<iq type='set' id='b3'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>c</resource></bind></iq>")
	el := c.ExpectStanza("iq", "id=b3", "type=error")
	if el.Child("", "error").Child("", "resource-constraint") == nil {
		t.Fatalf("want resource-constraint, got %s", el)
	}
}

func TestForgedFromIsAStreamError(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	c := ts.Login(t, "alice", "password1", "r")
	c.Send("<message from='bob@localhost/x' to='alice@localhost'><body>spoof</body></message>")
	c.ExpectStreamError("invalid-from")
}

func TestFromIsStampedWithFullJID(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	ts.AddUser(t, "bob", "password1")
	a := ts.Login(t, "alice", "password1", "r")
	b := ts.Login(t, "bob", "password1", "r")
	// A bare-JID from is accepted and replaced by the full JID.
	a.Send("<message from='alice@localhost' to='bob@localhost/r' type='chat' id='m1'><body>hi</body></message>")
	el := b.ExpectStanza("message", "id=m1")
	if el.Attr("from") != "alice@localhost/r" {
		t.Fatalf("from not stamped: %s", el)
	}
}

func TestMalformedToGetsJIDMalformed(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	a := ts.Login(t, "alice", "password1", "r")
	a.Send("<message to='a@b@c/' id='m1'><body>x</body></message>")
	el := a.ExpectStanza("message", "id=m1", "type=error")
	if el.Child("", "error").Child("", "jid-malformed") == nil {
		t.Fatalf("want jid-malformed, got %s", el)
	}
}

func TestRemoteDomainWithoutFederation(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	a := ts.Login(t, "alice", "password1", "r")
	a.Send("<iq to='remote.example' type='get' id='v1'><query xmlns='jabber:iq:version'/></iq>")
	el := a.ExpectStanza("iq", "id=v1", "type=error")
	if el.Child("", "error").Child("", "remote-server-not-found") == nil {
		t.Fatalf("want remote-server-not-found, got %s", el)
	}
}

func TestUnknownIQNamespaceIsServiceUnavailable(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	a := ts.Login(t, "alice", "password1", "r")
	a.Send("<iq to='localhost' type='get' id='u1'><query xmlns='urn:example:nothing'/></iq>")
	el := a.ExpectStanza("iq", "id=u1", "type=error")
	if el.Child("", "error").Child("", "service-unavailable") == nil {
		t.Fatalf("want service-unavailable, got %s", el)
	}
	// An IQ get with two payloads is a bad request.
	a.Send("<iq to='localhost' type='get' id='u2'><a xmlns='urn:x'/><b xmlns='urn:x'/></iq>")
	el = a.ExpectStanza("iq", "id=u2", "type=error")
	if el.Child("", "error").Child("", "bad-request") == nil {
		t.Fatalf("want bad-request, got %s", el)
	}
}

// TestStartTLSInjection sends a stanza pipelined after <starttls/> in the
// same plaintext packet. Whatever happens, that stanza must never be
// processed as if it arrived over TLS.
func TestStartTLSInjection(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	injected := "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00password1")) + "</auth>"
	c.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>%s", injected)
	c.ExpectStanza("proceed")
	tc := tls.Client(c.Conn, &tls.Config{ServerName: "localhost", InsecureSkipVerify: true})
	_ = tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return // the server treated the injected bytes as a broken handshake: safe
	}
	c.Conn = tc
	c.Open("localhost")
	// Still unauthenticated: the features offer SASL, not bind.
	if c.Features.Child("urn:ietf:params:xml:ns:xmpp-sasl", "mechanisms") == nil {
		t.Fatalf("injected plaintext was processed: features %s", c.Features)
	}
	c.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>")
	c.ExpectStreamError("not-authorized")
}

func TestShutdownSendsSystemShutdown(t *testing.T) {
	ts := testserver.Start(t, "")
	ts.AddUser(t, "alice", "password1")
	a := ts.Login(t, "alice", "password1", "r")
	go ts.Shutdown(t.Context())
	a.ExpectStreamError("system-shutdown")
}

// TestSlowReaderIsDisconnected: a client that never reads its stream is
// closed when its output queue fills, instead of growing server memory.
func TestSlowReaderIsDisconnected(t *testing.T) {
	ts := testserver.Start(t, "[limits]\noutput_queue = 8\nwrite_timeout = \"1s\"\nrate_bytes_per_second = 100000000\nrate_burst_bytes = 1000000\n")
	ts.AddUser(t, "alice", "password1")
	ts.AddUser(t, "bob", "password1")
	a := ts.Login(t, "alice", "password1", "r")
	_ = ts.Login(t, "bob", "password1", "r") // never reads again
	body := strings.Repeat("x", 16*1024)
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		a.Send("<message to='bob@localhost/r' type='chat'><body>%s</body></message>", body)
		if i%50 == 49 && len(ts.Router().AllSessions()) == 1 {
			return
		}
	}
	t.Fatalf("slow reader still connected after 20s")
}

// TestStockSlixmppMechanismFallback replays what Debian's slixmpp 1.8.3 does
// by default: every -PLUS mechanism with tls-unique (which TLS 1.3 does not
// have), then SCRAM with the "y" flag (refused: the server does support
// channel binding, RFC 5802 §6), and only then PLAIN. None of the refused
// attempts checked a password, so they must not use up max_auth_failures.
func TestStockSlixmppMechanismFallback(t *testing.T) {
	ts := testserver.Start(t, "[limits]\nmax_auth_failures = 3\n")
	ts.AddUser(t, "alice", "password1")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Open("localhost")
	c.StartTLS("localhost")
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, a := range []struct{ mech, msg string }{
		{"SCRAM-SHA-512-PLUS", "p=tls-unique,,n=alice,r=abcdefgh"},
		{"SCRAM-SHA-256-PLUS", "p=tls-unique,,n=alice,r=abcdefgh"},
		{"SCRAM-SHA-1-PLUS", "p=tls-unique,,n=alice,r=abcdefgh"},
		{"SCRAM-SHA-512", "y,,n=alice,r=abcdefgh"},
		{"SCRAM-SHA-256", "y,,n=alice,r=abcdefgh"},
		{"SCRAM-SHA-1", "y,,n=alice,r=abcdefgh"},
	} {
		c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='%s'>%s</auth>", a.mech, b64(a.msg))
		c.ExpectStanza("failure")
	}
	c.AuthPlain("localhost", "alice", "password1")
	c.Bind("r")
}

// Stream-level elements go out with the stream: prefix the header declares
// (<stream:features>, <stream:error>): the form every RFC 6120 example uses
// and that clients matching by name expect.
func TestStreamElementsUseThePrefix(t *testing.T) {
	ts := testserver.Start(t, "")
	c := testserver.Dial(t, ts.StartTLSAddr())
	c.Send("%s", header)
	buf := make([]byte, 8192)
	got := ""
	_ = c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !strings.Contains(got, "</stream:features>") {
		n, err := c.Conn.Read(buf)
		if err != nil {
			t.Fatalf("%v after %q", err, got)
		}
		got += string(buf[:n])
	}
	if !strings.Contains(got, "<stream:features>") || strings.Contains(got, "<features") {
		t.Fatalf("features not prefixed: %q", got)
	}
	c.Send("<message/>") // before authentication: a stream error
	got = ""
	for !strings.Contains(got, "</stream:stream>") {
		n, err := c.Conn.Read(buf)
		if err != nil {
			break
		}
		got += string(buf[:n])
	}
	if !strings.Contains(got, "<stream:error>") {
		t.Fatalf("stream error not prefixed: %q", got)
	}
}
