package xml

import (
	"bytes"
	stdxml "encoding/xml"
	"errors"
	"io"
	"testing"
	"testing/iotest"
	"unicode/utf8"
)

// fuzzLimits are small so the fuzzer reaches every limit quickly.
var fuzzLimits = Limits{MaxStanzaBytes: 2048, MaxDepth: 8, MaxAttrs: 8, MaxHeaderBytes: 512}

// decodeStream parses testHeader+data and returns the serialised elements
// and the final error.
func decodeStream(t *testing.T, r io.Reader) ([]*Element, error) {
	d := NewDecoder(r, fuzzLimits)
	if _, err := d.ReadHeader(); err != nil {
		t.Fatalf("valid header refused: %v", err)
	}
	d.SetContentNamespace("jabber:client")
	var els []*Element
	for {
		el, err := d.Next()
		if err != nil {
			return els, err
		}
		if b := d.Buffered(); b < 0 || b > readBufSize {
			t.Fatalf("Buffered = %d", b)
		}
		els = append(els, el)
	}
}

func FuzzDecoder(f *testing.F) {
	for _, s := range roundTripSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte("<presence/> \n <presence/></stream:stream>"))
	f.Add([]byte("<a><a><a><a><a><a><a><a><a><a></a></a></a></a></a></a></a></a></a></a>"))
	f.Add([]byte("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>"))
	f.Add([]byte("<message><!-- c --><?pi x?></message>"))
	f.Add([]byte("<p:x xmlns:p='u' xmlns:q='u' p:a='1' q:a='2'/>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append([]byte(testHeader), data...)
		els, err := decodeStream(t, bytes.NewReader(in))
		var xe *Error
		switch {
		case err == io.EOF, err == ErrStreamClosed, errors.As(err, &xe):
		default:
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		for _, el := range els {
			checkLimits(t, el, 1)
		}
		// Input chunking must not change the outcome.
		els1, err1 := decodeStream(t, iotest.OneByteReader(bytes.NewReader(in)))
		if condition(err1) != condition(err) || len(els1) != len(els) {
			t.Fatalf("1-byte reads: %d, %v; one read: %d, %v", len(els1), err1, len(els), err)
		}
		for i := range els {
			if !els[i].Equal(els1[i]) {
				t.Fatalf("element %d differs with 1-byte reads", i)
			}
		}
	})
}

// checkLimits asserts a decoded tree obeys fuzzLimits and carries only
// text XML can represent.
func checkLimits(t *testing.T, el *Element, depth int) {
	t.Helper()
	if depth > fuzzLimits.MaxDepth {
		t.Fatalf("depth %d", depth)
	}
	if len(el.Attrs) > fuzzLimits.MaxAttrs {
		t.Fatalf("%d attrs", len(el.Attrs))
	}
	if el.Local == "" {
		t.Fatal("empty name")
	}
	checkString(t, el.Space)
	checkString(t, el.Local)
	for _, a := range el.Attrs {
		checkString(t, a.Local)
		checkString(t, a.Value)
		checkString(t, a.Space)
		if a.Local == "xmlns" && a.Space == "" || a.Space == "xmlns" {
			t.Fatal("namespace declaration kept as attribute")
		}
	}
	prevText := false
	for _, c := range el.Children {
		switch c := c.(type) {
		case *Element:
			checkLimits(t, c, depth+1)
			prevText = false
		case CharData:
			if c == "" || prevText {
				t.Fatal("empty or adjacent CharData")
			}
			checkString(t, string(c))
			prevText = true
		}
	}
}

func checkString(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("invalid UTF-8 in %q", s)
	}
	for _, r := range s {
		if !(r == 0x09 || r == 0x0A || r == 0x0D ||
			r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000) {
			t.Fatalf("invalid character %U in %q", r, s)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	for _, s := range roundTripSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		el, err := ParseElement(data, fuzzLimits, "jabber:client")
		if err != nil {
			var xe *Error
			if !errors.As(err, &xe) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		checkLimits(t, el, 1)
		checkRoundTrip(t, el)

		// Differential: whatever we accept, encoding/xml's own strict,
		// tag-matching Token reader must accept too.
		x := stdxml.NewDecoder(bytes.NewReader(data))
		for {
			_, err := x.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("we accepted what encoding/xml rejects (%v): %q", err, data)
			}
		}
		// And the stdlib must read our output as the same tree.
		checkAgainstStd(t, el)
	})
}

// checkAgainstStd parses our serialisation with encoding/xml's namespace
// resolver and compares names, attributes and text.
func checkAgainstStd(t *testing.T, el *Element) {
	t.Helper()
	b := el.AppendToNS(nil, "jabber:client")
	x := stdxml.NewDecoder(bytes.NewReader(b))
	x.DefaultSpace = "jabber:client"
	var walk func(e *Element, start stdxml.StartElement)
	next := func() stdxml.Token {
		tok, err := x.Token()
		if err != nil {
			t.Fatalf("encoding/xml rejects our output (%v): %s", err, b)
		}
		return stdxml.CopyToken(tok)
	}
	walk = func(e *Element, start stdxml.StartElement) {
		space := e.Space
		if space == "" {
			space = "jabber:client"
		}
		if start.Name.Space != space || start.Name.Local != e.Local {
			t.Fatalf("name %v, want {%s %s}: %s", start.Name, space, e.Local, b)
		}
		i := 0
		for _, a := range start.Attr {
			if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
				continue
			}
			want := e.Attrs[i]
			i++
			if a.Name.Space != want.Space || a.Name.Local != want.Local || a.Value != want.Value {
				t.Fatalf("attr %v=%q, want %+v: %s", a.Name, a.Value, want, b)
			}
		}
		if i != len(e.Attrs) {
			t.Fatalf("attr count: %s", b)
		}
		for _, c := range e.Children {
			tok := next()
			switch c := c.(type) {
			case CharData:
				if cd, ok := tok.(stdxml.CharData); !ok || string(cd) != string(c) {
					t.Fatalf("text %#v, want %q: %s", tok, c, b)
				}
			case *Element:
				s, ok := tok.(stdxml.StartElement)
				if !ok {
					t.Fatalf("got %#v, want element: %s", tok, b)
				}
				walk(c, s)
			}
		}
		if _, ok := next().(stdxml.EndElement); !ok {
			t.Fatalf("missing end: %s", b)
		}
	}
	s, ok := next().(stdxml.StartElement)
	if !ok {
		t.Fatalf("no start: %s", b)
	}
	walk(el, s)
}
