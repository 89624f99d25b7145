package xml

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// contentNSes are the content namespaces a fan-out copy may be written in.
var contentNSes = []string{"", "jabber:client", "jabber:server", "jabber:component:accept"}

// checkFanout requires that every copy of f made with WithAttr writes, in
// every content namespace and every form (stream, standalone, Size), the
// bytes the same copy of the plain element el writes.
func checkFanout(t *testing.T, el, f *Element) {
	t.Helper()
	if !f.Equal(el) {
		t.Fatalf("ForFanout changed the tree:\n%s\n%s", f, el)
	}
	for _, to := range []string{"", "a@b/c", "x'&<>\"y"} {
		plain, fan := el, f
		if to != "" {
			plain, fan = el.WithAttr("to", to), f.WithAttr("to", to)
		}
		for _, ns := range contentNSes {
			want := plain.AppendToNS(nil, ns)
			if got := fan.AppendToNS(nil, ns); !bytes.Equal(got, want) {
				t.Fatalf("AppendToNS(%q) to=%q:\ngot  %s\nwant %s", ns, to, got, want)
			}
			if got := fan.SizeNS(ns); got != len(want) {
				t.Fatalf("SizeNS(%q) = %d, want %d", ns, got, len(want))
			}
			want = plain.AppendStandalone(nil, ns)
			if got := fan.AppendStandalone(nil, ns); !bytes.Equal(got, want) {
				t.Fatalf("AppendStandalone(%q) to=%q:\ngot  %s\nwant %s", ns, to, got, want)
			}
			var b bytes.Buffer
			if _, err := fan.WriteToNS(&b, ns); err != nil || b.String() != string(plain.AppendToNS(nil, ns)) {
				t.Fatalf("WriteToNS(%q): %v %s", ns, err, b.String())
			}
		}
		if fan.String() != plain.String() || fan.Size() != plain.Size() {
			t.Fatalf("String/Size differ:\ngot  %s\nwant %s", fan, plain)
		}
	}
}

// fanoutShapes are trees built by code (not the decoder), including ones
// the decoder never produces.
func fanoutShapes() map[string]*Element {
	return map[string]*Element{
		"groupchat": New("", "message").SetAttr("from", "room@muc/nick").SetAttr("type", "groupchat").
			Append(New("", "body").AppendText("hi & <bye> ]]> \r\n\t'\""),
				New("urn:xmpp:sid:0", "stanza-id").SetAttr("by", "room@muc").SetAttr("id", "1")),
		"text only":       New("", "message").AppendText("plain \x00 text \xff"),
		"namespaced root": New("urn:a", "x").Append(New("urn:a", "y"), New("urn:b", "z").Append(New("urn:a", "y"))),
		"forwarded content": New("", "message").Append(New("urn:xmpp:forward:0", "forwarded").
			Append(New("", "message").SetAttr("from", "w@s").Append(New("", "body").AppendText("Hail")))),
		"content child of namespaced root": New("urn:fwd", "forwarded").Append(New("", "message")),
		"prefixed attrs": New("", "presence").Append(&Element{Space: "urn:c", Local: "c", Attrs: []Attr{
			{Space: NSXML, Local: "lang", Value: "en"},
			{Space: "urn:p", Local: "a", Value: "1"},
			{Local: "b", Value: "2'"},
			{Space: "urn:q", Local: "c", Value: "3"},
			{Space: "urn:p", Local: "d", Value: "4"},
			{Local: "xmlns", Value: "evil"},
		}}),
		"mixed and nil": &Element{Local: "message", Children: []Node{
			CharData("a"), (*Element)(nil), New("", "b").AppendText("bold"), CharData(" c\r")}},
		"muc presence": New("", "presence").SetAttr("from", "room@muc/n").Append(
			New("", "show").AppendText("away"),
			New("http://jabber.org/protocol/muc#user", "x").Append(
				New("http://jabber.org/protocol/muc#user", "item").SetAttr("affiliation", "none").SetAttr("role", "participant"),
				New("http://jabber.org/protocol/muc#user", "status").SetAttr("code", "110"))),
	}
}

func TestFanoutSameBytes(t *testing.T) {
	for name, el := range fanoutShapes() {
		t.Run(name, func(t *testing.T) {
			for _, ns := range contentNSes {
				f := el.ForFanout(ns)
				if f.fan == nil {
					t.Fatal("no serialisation cached")
				}
				checkFanout(t, el, f)
			}
		})
	}
	for i, s := range roundTripSeeds {
		el, err := ParseElement([]byte(s), Limits{}, "jabber:client")
		if err != nil {
			t.Fatal(err)
		}
		t.Run(fmt.Sprint("seed", i), func(t *testing.T) {
			for _, ns := range contentNSes {
				checkFanout(t, el, el.ForFanout(ns))
			}
		})
	}
}

// TestFanoutContentNS: bytes that depend on the content namespace are used
// only on a stream with that namespace; bytes that do not are used on any.
func TestFanoutContentNS(t *testing.T) {
	shapes := fanoutShapes()
	fwd := shapes["forwarded content"].ForFanout("jabber:client")
	if fwd.fan.anyNS {
		t.Fatal("a forwarded content-namespace stanza was judged independent of the content namespace")
	}
	if !fwd.fan.valid(fwd, "jabber:client") || fwd.fan.valid(fwd, "jabber:server") {
		t.Fatal("forwarded: cache valid in the wrong namespaces")
	}
	if got := string(fwd.AppendToNS(nil, "jabber:server")); !strings.Contains(got, "<message xmlns='jabber:server'") {
		t.Fatalf("forwarded on a server stream: %s", got)
	}
	gc := shapes["groupchat"].ForFanout("jabber:client")
	if !gc.fan.anyNS || !gc.fan.valid(gc, "jabber:server") {
		t.Fatal("a plain groupchat message was judged dependent on the content namespace")
	}
	// The cache is used, not just present: corrupting it shows in the output.
	gc.fan.b = []byte("<cached/>")
	if got := string(gc.WithAttr("to", "a@b").AppendToNS(nil, "jabber:server")); !strings.Contains(got, "<cached/>") {
		t.Fatalf("cached bytes not used: %s", got)
	}
}

// TestFanoutInvalidated: every way of getting an element with other
// children (or another namespace) from a fan-out element writes the tree.
func TestFanoutInvalidated(t *testing.T) {
	base := fanoutShapes()["groupchat"]
	fresh := func() *Element {
		f := base.ForFanout("jabber:client")
		f.fan.b = []byte("<stale/>") // shows if it is used
		return f
	}
	extra := New("urn:xmpp:delay", "delay").SetAttr("stamp", "2026-01-01T00:00:00Z")
	cases := map[string]func() *Element{
		"WithChildren":    func() *Element { return fresh().WithChildren(extra) },
		"WithoutChildren": func() *Element { return fresh().WithoutChildren(func(*Element) bool { return false }) },
		"Append in place": func() *Element { return fresh().WithAttr("to", "a@b").Append(extra) },
		"Clone":           func() *Element { return fresh().Clone() },
		"children replaced": func() *Element {
			c := *fresh()
			c.Children = append([]Node(nil), c.Children...)
			return &c
		},
		"children resliced": func() *Element {
			c := *fresh()
			c.Children = c.Children[1:]
			return &c
		},
		"namespace changed": func() *Element {
			c := *fresh()
			c.Space = "urn:other"
			return &c
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			el := mk()
			plain := el.Clone() // same tree, no cache
			for _, ns := range contentNSes {
				got, want := el.AppendToNS(nil, ns), plain.AppendToNS(nil, ns)
				if !bytes.Equal(got, want) || el.SizeNS(ns) != len(want) {
					t.Fatalf("%s:\ngot  %s\nwant %s", ns, got, want)
				}
			}
		})
	}
}

// TestFanoutTree: code that inspects a fan-out copy sees the tree.
func TestFanoutTree(t *testing.T) {
	f := fanoutShapes()["groupchat"].ForFanout("jabber:client").WithAttr("to", "a@b")
	if f.ChildText("", "body") != "hi & <bye> ]]> \r\n\t'\"" || f.Child("urn:xmpp:sid:0", "stanza-id") == nil || f.Attr("to") != "a@b" {
		t.Fatalf("tree not visible: %s", f)
	}
	if e := New("", "presence"); e.ForFanout("jabber:client") != e {
		t.Fatal("an element without children should be returned as is")
	}
	if f2 := f.ForFanout("jabber:server"); f2 != f {
		t.Fatal("ForFanout on an element with valid bytes should return it")
	}
}

func FuzzFanout(f *testing.F) {
	for _, s := range roundTripSeeds {
		f.Add([]byte(s), uint8(1), uint8(2))
	}
	f.Add([]byte(`<message xmlns:a='urn:a'><x xmlns='urn:f'><message xmlns='jabber:client' a:b='&apos;'/></x></message>`), uint8(1), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, made, written uint8) {
		el, err := ParseElement(data, fuzzLimits, "jabber:client")
		if err != nil {
			return
		}
		nsMade := contentNSes[int(made)%len(contentNSes)]
		nsWritten := contentNSes[int(written)%len(contentNSes)]
		fan := el.ForFanout(nsMade)
		for _, to := range []string{"", "r@h/\u00e9'"} {
			plain, cp := el, fan
			if to != "" {
				plain, cp = el.WithAttr("to", to), fan.WithAttr("to", to)
			}
			want := plain.AppendToNS(nil, nsWritten)
			if got := cp.AppendToNS(nil, nsWritten); !bytes.Equal(got, want) {
				t.Fatalf("made for %q, written in %q:\ngot  %s\nwant %s", nsMade, nsWritten, got, want)
			}
			if cp.SizeNS(nsWritten) != len(want) {
				t.Fatalf("SizeNS = %d, want %d", cp.SizeNS(nsWritten), len(want))
			}
			if got, want := cp.AppendStandalone(nil, nsWritten), plain.AppendStandalone(nil, nsWritten); !bytes.Equal(got, want) {
				t.Fatalf("standalone:\ngot  %s\nwant %s", got, want)
			}
		}
		// Nested fan-out elements inside a tree are written the same too.
		if len(el.Children) > 0 {
			if c, ok := el.Children[0].(*Element); ok && c != nil {
				nested := el.WithChildren()
				nested.Children[0] = c.ForFanout(nsMade)
				if got, want := nested.AppendToNS(nil, nsWritten), el.AppendToNS(nil, nsWritten); !bytes.Equal(got, want) {
					t.Fatalf("nested:\ngot  %s\nwant %s", got, want)
				}
			}
		}
	})
}

// BenchmarkRoomFanout is one groupchat message delivered to a room of 200
// occupants: per occupant a copy with its own "to" (WithAttr) serialised
// into that occupant's stream buffer (AppendToNS, as stream.Writer's drain
// does). path=tree is the serialisation from the tree for every copy;
// path=fanout prepares the message with ForFanout once per message.
func BenchmarkRoomFanout(b *testing.B) {
	const occupants = 200
	to := make([]string, occupants)
	for i := range to {
		to[i] = fmt.Sprintf("user%d@example.com/res-%d", i, i)
	}
	payloads := map[string]string{
		"small": "hello everyone",
		"2KB":   strings.Repeat("All the world's a stage, & all the men and women merely <players>. ", 29),
	}
	for _, size := range []string{"small", "2KB"} {
		msg := New("", "message").SetAttr("type", "groupchat").SetAttr("from", "room@conference.example.com/nick").
			SetAttr("id", "a1b2c3d4").Append(
			New("", "body").AppendText(payloads[size]),
			New("urn:xmpp:sid:0", "origin-id").SetAttr("id", "de305d54-75b4-431b-adb2-eb6b9e546014"),
			New("urn:xmpp:sid:0", "stanza-id").SetAttr("by", "room@conference.example.com").SetAttr("id", "0193a6b1-2f9c"),
			New("http://jabber.org/protocol/chatstates", "active"))
		for _, path := range []string{"tree", "fanout"} {
			b.Run("payload="+size+"/path="+path, func(b *testing.B) {
				buf := make([]byte, 0, 4096)
				b.SetBytes(int64(occupants * msg.SizeNS("jabber:client")))
				b.ReportAllocs()
				for b.Loop() {
					m := msg
					if path == "fanout" {
						m = msg.ForFanout("jabber:client")
					}
					for _, jid := range to {
						buf = m.WithAttr("to", jid).AppendToNS(buf[:0], "jabber:client")
					}
				}
			})
		}
	}
}
