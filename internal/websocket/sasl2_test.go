package websocket_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/coder/websocket"

	ws "parley/internal/websocket"
)

// TestSASL2AndFASTOverWebSocket: SASL2 with Bind 2 and a FAST token work
// over RFC 7395 framing exactly as over TCP (one c2s code path), without
// the <open/> restart that RFC 6120 SASL needs.
func TestSASL2AndFASTOverWebSocket(t *testing.T) {
	_, e := startTLS(t, ws.Config{})
	const ua = "1d2c3b4a-5f6e-4d7c-8b9a-0f1e2d3c4b5a"
	start := func() *wsClient {
		c, _, err := dial(t, e, nil)
		if err != nil {
			t.Fatal(err)
		}
		c.send(open)
		c.expect("open")
		if f := c.expect("features"); f.Child("urn:xmpp:sasl:2", "authentication") == nil {
			t.Fatalf("no SASL2 over WebSocket: %s", f)
		}
		return c
	}
	c := start()
	c.send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>" +
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00password1")) + "</initial-response>" +
		"<user-agent id='" + ua + "'><software>web</software></user-agent>" +
		"<bind xmlns='urn:xmpp:bind:0'><tag>web</tag></bind>" +
		"<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/></authenticate>")
	s := c.next()
	tok := s.Child("urn:xmpp:fast:0", "token")
	if s.Local != "success" || tok == nil || !strings.HasPrefix(s.ChildText("urn:xmpp:sasl:2", "authorization-identifier"), "alice@localhost/web/") {
		t.Fatalf("SASL2 over WebSocket: %s", s)
	}
	c.expect("features")
	c.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
	c.expect("close")
	_ = c.c.Close(websocket.StatusNormalClosure, "")

	m := hmac.New(sha256.New, []byte(tok.Attr("token")))
	m.Write([]byte("Initiator"))
	c = start()
	c.send("<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>" +
		base64.StdEncoding.EncodeToString(append([]byte("alice\x00"), m.Sum(nil)...)) + "</initial-response>" +
		"<user-agent id='" + ua + "'/><fast xmlns='urn:xmpp:fast:0'/><bind xmlns='urn:xmpp:bind:0'><tag>web</tag></bind></authenticate>")
	if s := c.next(); s.Local != "success" || s.Child("urn:xmpp:bind:0", "bound") == nil {
		t.Fatalf("FAST over WebSocket: %s", s)
	}
}
