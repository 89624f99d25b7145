package dialback_test

import (
	"strings"
	"testing"

	"parley/internal/s2s/dialback"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// TestWireUsesThePrefix checks the on-the-wire form of every dialback
// element: <db:...> relying on the stream's xmlns:db (ejabberd drops the
// unprefixed form), and that a decoder reading it under a real stream
// header gets back the dialback namespace, attributes, key and error.
func TestWireUsesThePrefix(t *testing.T) {
	tests := []struct {
		name string
		el   *xml.Element
		want string
	}{
		{"result request", dialback.Result("a.test", "b.test", "", "k3y"),
			"<db:result from='a.test' to='b.test'>k3y</db:result>"},
		{"result answer", dialback.Result("b.test", "a.test", "valid", ""),
			"<db:result from='b.test' to='a.test' type='valid'/>"},
		{"verify request", dialback.Verify("b.test", "a.test", "id1", "", "k3y"),
			"<db:verify from='b.test' to='a.test' id='id1'>k3y</db:verify>"},
		{"error", dialback.Error("result", "b.test", "a.test", "", stanza.ItemNotFound),
			"<db:result from='b.test' to='a.test' type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></db:result>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := dialback.Wire(tc.el).AppendToNS(nil, stanza.NSServer)
			if string(got) != tc.want {
				t.Fatalf("wire form\n got %s\nwant %s", got, tc.want)
			}
			in := "<stream:stream xmlns='jabber:server' xmlns:db='jabber:server:dialback' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>" + string(got)
			d := xml.NewDecoder(strings.NewReader(in), xml.DefaultLimits())
			d.SetContentNamespace(stanza.NSServer)
			if _, err := d.ReadHeader(); err != nil {
				t.Fatal(err)
			}
			el, err := d.Next()
			if err != nil {
				t.Fatal(err)
			}
			if el.Space != dialback.NS || el.Local != tc.el.Local || el.Attr("from") != tc.el.Attr("from") ||
				el.Attr("type") != tc.el.Attr("type") || el.Text() != tc.el.Text() {
				t.Fatalf("decoded %s, want %s", el, tc.el)
			}
			if e := el.Child("", "error"); tc.el.Attr("type") == "error" && (e == nil || e.Child(stanza.NSStanzas, "item-not-found") == nil) {
				t.Fatalf("decoded error %s", el)
			}
		})
	}
	if el := xml.New(stanza.NSStanzas, "x"); dialback.Wire(el) != el {
		t.Fatal("Wire changed a non-dialback element")
	}
}

func TestKeys(t *testing.T) {
	k := dialback.NewKeys([]byte("s3cr3t"))
	key := k.Key("b.test", "a.test", "id1")
	if !k.Valid("b.test", "a.test", "id1", key) {
		t.Fatal("own key not valid")
	}
	for _, bad := range [][4]string{
		{"b.test", "a.test", "id2", key}, {"a.test", "b.test", "id1", key},
		{"b.test", "a.test", "", key}, {"b.test", "a.test", "id1", ""},
	} {
		if k.Valid(bad[0], bad[1], bad[2], bad[3]) {
			t.Fatalf("%v accepted", bad)
		}
	}
	if dialback.NewKeys([]byte("other")).Valid("b.test", "a.test", "id1", key) {
		t.Fatal("a key from another secret is valid")
	}
}
