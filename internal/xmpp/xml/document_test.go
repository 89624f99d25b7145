package xml

import (
	"errors"
	"strings"
	"testing"
)

func TestParseDocument(t *testing.T) {
	el, err := ParseDocument([]byte(`<message xmlns='jabber:client' to='a@b'><body>hi</body></message>`), DefaultLimits(), "jabber:client")
	if err != nil || el.Space != "" || el.Local != "message" || el.ChildText("", "body") != "hi" {
		t.Fatalf("stanza: %v %v", el, err)
	}
	el, err = ParseDocument([]byte(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>`), DefaultLimits(), "jabber:client")
	if err != nil || el.Space != "urn:ietf:params:xml:ns:xmpp-framing" || el.Attr("to") != "example.com" {
		t.Fatalf("open: %v %v", el, err)
	}
	el, err = ParseDocument([]byte(`<stream:features xmlns:stream='http://etherx.jabber.org/streams'/>`), DefaultLimits(), "jabber:client")
	if err != nil || el.Space != NSStream {
		t.Fatalf("prefixed: %v %v", el, err)
	}
	bad := map[string]string{
		"":                                      CondNotWellFormed,
		"   ":                                   CondNotWellFormed,
		"<a/><b/>":                              CondNotWellFormed,
		"<a>":                                   CondNotWellFormed,
		"</stream:stream>":                      CondNotWellFormed,
		"text":                                  CondBadFormat,
		`<!DOCTYPE x [<!ENTITY a 'a'>]><open/>`: CondRestrictedXML,
		"<message><!-- c --></message>":         CondRestrictedXML,
		"<?xml version='1.0'?><open/>":          CondRestrictedXML,
		"<m>" + strings.Repeat("<a>", 40) + strings.Repeat("</a>", 40) + "</m>": CondPolicyViolation,
	}
	for in, cond := range bad {
		_, err := ParseDocument([]byte(in), DefaultLimits(), "jabber:client")
		var xe *Error
		if !errors.As(err, &xe) || xe.Condition != cond {
			t.Errorf("%q: %v, want %s", in, err, cond)
		}
	}
	lim := DefaultLimits()
	lim.MaxStanzaBytes = 100
	if _, err := ParseDocument([]byte("<message><body>"+strings.Repeat("x", 200)+"</body></message>"), lim, "jabber:client"); err == nil {
		t.Error("oversized message accepted")
	}
}
