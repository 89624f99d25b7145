package xml

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestEncode(t *testing.T) {
	tests := []struct {
		name string
		el   *Element
		want string
		ns   string // WriteToNS content namespace
	}{
		{"empty", New("", "presence"), `<presence/>`, ""},
		{"namespaced top", New("urn:ietf:params:xml:ns:xmpp-tls", "starttls"), `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`, ""},
		{"attrs and text",
			New("", "message").SetAttr("to", "a@b").SetAttr("type", "chat").
				Append(New("", "body").AppendText("hi & <bye> ]]> \r\n\t")),
			`<message to='a@b' type='chat'><body>hi &amp; &lt;bye&gt; ]]&gt; &#xD;` + "\n\t" + `</body></message>`, ""},
		{"attr escaping",
			New("", "x").SetAttr("a", "'\"<>&\t\n\r"),
			`<x a='&apos;&quot;&lt;>&amp;&#x9;&#xA;&#xD;'/>`, ""},
		{"invalid characters replaced",
			New("", "x").SetAttr("a", "\x00\xff").AppendText("\x01a\xed\xa0\x80b\uFFFE\uFFFD"),
			"<x a='\uFFFD\uFFFD'>\uFFFDa\uFFFD\uFFFD\uFFFDb\uFFFD\uFFFD</x>", ""},
		{"child in same namespace",
			New("urn:a", "x").Append(New("urn:a", "y")),
			`<x xmlns='urn:a'><y/></x>`, ""},
		{"child in other namespace",
			New("", "iq").Append(New("urn:a", "q").Append(New("urn:b", "r"), New("urn:a", "s"))),
			`<iq><q xmlns='urn:a'><r xmlns='urn:b'/><s/></q></iq>`, ""},
		{"content child without contentNS",
			New("urn:fwd", "forwarded").Append(New("", "message")),
			`<forwarded xmlns='urn:fwd'><message xmlns=''/></forwarded>`, ""},
		{"content child with contentNS",
			New("urn:fwd", "forwarded").Append(New("", "message").Append(New("", "body"))),
			`<forwarded xmlns='urn:fwd'><message xmlns='jabber:client'><body/></message></forwarded>`, "jabber:client"},
		{"xml:lang and namespaced attrs",
			&Element{Local: "x", Attrs: []Attr{
				{Space: NSXML, Local: "lang", Value: "en"},
				{Space: "urn:p", Local: "a", Value: "1"},
				{Local: "b", Value: "2"},
				{Space: "urn:q", Local: "c", Value: "3"},
				{Space: "urn:p", Local: "d", Value: "4"},
			}},
			`<x xml:lang='en' xmlns:ns1='urn:p' ns1:a='1' b='2' xmlns:ns3='urn:q' ns3:c='3' ns1:d='4'/>`, ""},
		{"declarations are not copied",
			&Element{Space: "urn:a", Local: "x", Attrs: []Attr{{Local: "xmlns", Value: "evil"}, {Space: "xmlns", Local: "p", Value: "evil"}, {Local: "k", Value: "v"}}},
			`<x xmlns='urn:a' k='v'/>`, ""},
		{"nil child skipped",
			&Element{Local: "x", Children: []Node{(*Element)(nil), CharData("t")}},
			`<x>t</x>`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got string
			if tc.ns == "" {
				got = tc.el.String()
				if n := tc.el.Size(); n != len(got) {
					t.Errorf("Size = %d, len = %d", n, len(got))
				}
			} else {
				var b bytes.Buffer
				n, err := tc.el.WriteToNS(&b, tc.ns)
				if err != nil || int(n) != b.Len() {
					t.Fatal(n, err)
				}
				got = b.String()
				if n := tc.el.SizeNS(tc.ns); n != len(got) {
					t.Errorf("SizeNS = %d, len = %d", n, len(got))
				}
			}
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
			// What we write must parse back to what we wrote.
			back, err := ParseElement([]byte(got), Limits{}, tc.ns)
			if err != nil {
				t.Fatalf("reparse: %v", err)
			}
			if s := string(back.AppendToNS(nil, tc.ns)); s != got {
				t.Fatalf("reserialised %s", s)
			}
		})
	}
}

func TestWriteToWriters(t *testing.T) {
	el := New("", "message").SetAttr("to", "a@b").Append(New("", "body").AppendText(strings.Repeat("x", 10000)))
	want := el.String()
	var buf bytes.Buffer
	buf.WriteString("prefix")
	if n, err := el.WriteTo(&buf); err != nil || int(n) != len(want) || buf.String() != "prefix"+want {
		t.Fatalf("bytes.Buffer: %d %v", n, err)
	}
	var out bytes.Buffer
	bw := bufio.NewWriterSize(&out, 64)
	if n, err := el.WriteTo(bw); err != nil || int(n) != len(want) {
		t.Fatalf("bufio: %d %v", n, err)
	}
	bw.Flush()
	if out.String() != want {
		t.Fatal("bufio output differs")
	}
	var sb strings.Builder
	if n, err := el.WriteTo(&sb); err != nil || int(n) != len(want) || sb.String() != want {
		t.Fatalf("strings.Builder: %d %v", n, err)
	}
	if !bytes.Equal(el.AppendTo([]byte("p")), []byte("p"+want)) {
		t.Fatal("AppendTo")
	}
}

func TestRoundTrip(t *testing.T) {
	for _, in := range roundTripSeeds {
		el, err := ParseElement([]byte(in), Limits{}, "jabber:client")
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		checkRoundTrip(t, el)
	}
}

// checkRoundTrip: serialise → parse → serialise is byte-identical and the
// trees are equal, with and without a content namespace.
func checkRoundTrip(t *testing.T, el *Element) {
	t.Helper()
	for _, ns := range []string{"", "jabber:client"} {
		b1 := el.AppendToNS(nil, ns)
		if n := el.SizeNS(ns); n != len(b1) {
			t.Fatalf("SizeNS(%q) = %d, serialised %d bytes: %s", ns, n, len(b1), b1)
		}
		el2, err := ParseElement(b1, Limits{MaxStanzaBytes: 1 << 30, MaxAttrs: 1 << 20, MaxDepth: 1 << 20}, ns)
		if err != nil {
			t.Fatalf("reparse with ns %q: %v\n%s", ns, err, b1)
		}
		if !el.Equal(el2) {
			t.Fatalf("trees differ with ns %q:\n%#v\n%#v\n%s", ns, el, el2, b1)
		}
		if b2 := el2.AppendToNS(nil, ns); !bytes.Equal(b1, b2) {
			t.Fatalf("not byte-identical with ns %q:\n%s\n%s", ns, b1, b2)
		}
	}
}

var roundTripSeeds = []string{
	`<message from='juliet@example.com/balcony' to='romeo@example.net' type='chat' id='ktx72v49' xml:lang='en'><body>Art thou not Romeo, and a Montague?</body><thread>e0ffe42b28561960c6b12b944a092794b9683a38</thread><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
	`<presence from='juliet@example.com/balcony'><show>away</show><status>be right back</status><priority>0</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>`,
	`<iq type='set' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>balcony</resource></bind></iq>`,
	`<iq type='result' id='roster_1' to='juliet@example.com/balcony'><query xmlns='jabber:iq:roster' ver='ver7'><item jid='nurse@example.com'/><item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group></item></query></iq>`,
	`<message to='juliet@capulet.lit'><result xmlns='urn:xmpp:mam:2' queryid='f27' id='28482-98726-73623'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='2010-07-10T23:08:25Z'/><message xmlns='jabber:client' from='witch@shakespeare.lit' to='macbeth@shakespeare.lit'><body>Hail to thee</body></message></forwarded></result></message>`,
	`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1qdWxpZXQscj1vTXNUQUF3QUFBQU1BQUFBTlAwVEFBQUFBQUJQVTBBQQ==</auth>`,
	`<stream:features xmlns:stream='http://etherx.jabber.org/streams'><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms></stream:features>`,
	`<stream:error xmlns:stream='http://etherx.jabber.org/streams'><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>oops</text></stream:error>`,
	`<message><body>a &amp; b &lt; c &gt; d ' " &#x1F600; &#9;&#xA;&#xD; <![CDATA[<raw> & ]]]]></body></message>`,
	`<x xmlns:a='urn:a' xmlns:b='urn:b' a:one='1' b:two='2' a:three='3' xml:space='preserve'><a:y b:z=''/><z xmlns=''/></x>`,
	`<iq type='set'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:avatar:metadata'><item id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f'><metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='12345' height='64' id='111f4b3c50d7b0df729d299bc6f8e9ef9066971f' type='image/png' width='64'/></metadata></item></publish></pubsub></iq>`,
	`<message>  mixed <b>bold</b> text
 with newlines	and tabs </message>`,
}

func BenchmarkEncodeMessage(b *testing.B) {
	el, err := ParseElement([]byte(roundTripSeeds[0]), Limits{}, "jabber:client")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("WriteTo-bytes.Buffer", func(b *testing.B) {
		var buf bytes.Buffer
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if _, err := el.WriteToNS(&buf, "jabber:client"); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(buf.Len()))
	})
	b.Run("WriteTo-bufio", func(b *testing.B) {
		bw := bufio.NewWriterSize(discard{}, 4096)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := el.WriteTo(bw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendTo", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			buf = el.AppendTo(buf[:0])
		}
	})
	b.Run("Bytes", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = el.Bytes()
		}
	})
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
