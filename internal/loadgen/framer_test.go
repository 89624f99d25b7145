package loadgen

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"
)

const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x>y' version='1.0'>`

// refFrames cuts a stream into its top-level elements with encoding/xml,
// the reference the framer must agree with. ok is false when encoding/xml
// rejects the input or the stream is not a single root element.
func refFrames(stream []byte) (frames []string, ok bool) {
	d := xml.NewDecoder(bytes.NewReader(stream))
	d.Strict = true
	depth := 0
	var start int64
	for {
		before := d.InputOffset()
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			return frames, depth == 0 && len(frames) > 0
		}
		if err != nil {
			return nil, false
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				start = before
			}
		case xml.EndElement:
			depth--
			if depth == 1 {
				frames = append(frames, string(stream[start:d.InputOffset()]))
			}
			if depth == 0 {
				frames = append(frames, "END")
			}
		}
	}
}

func frameAll(t testing.TB, r io.Reader, size int) ([]string, error) {
	f := NewFramer(r, size, 1<<16)
	var out []string
	for {
		kind, el, err := f.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		switch kind {
		case FrameHeader:
			if !bytes.HasPrefix(el, []byte("<stream:stream")) {
				t.Fatalf("header %q", el)
			}
		case FrameStanza:
			out = append(out, string(el))
		case FrameEnd:
			out = append(out, "END")
		}
	}
}

var tricky = []string{
	`<message to='a@b' type='chat'><body>s1.2.3.xxx</body></message>`,
	`<presence/>`,
	`<presence from="a@b/c" type='unavailable' />`,
	`<iq type='result' id='q>1' to="x/y>"><query xmlns='jabber:iq:roster'><item jid='c@d' name="a/>b"/></query></iq>`,
	`<message><body>1 &gt; 0 &amp; 2 &lt; 3 " ' / > //></body></message>`,
	`<message><body><![CDATA[ <not a tag> </message> ]]></body></message>`,
	`<message><!-- </message> --><body/></message>`,
	`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`,
	`<a:b xmlns:a='urn:x'><a:c a:d='1'/></a:b>`,
	`<message
  to='a@b'
  ><body>multi
line</body></message>`,
}

func TestFramerMatchesEncodingXML(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 200; round++ {
		var b bytes.Buffer
		b.WriteString(header)
		for i := 0; i < 20; i++ {
			if rng.IntN(3) == 0 {
				b.WriteString(" \n\t") // whitespace keepalives between stanzas
			}
			b.WriteString(tricky[rng.IntN(len(tricky))])
		}
		b.WriteString("</stream:stream>")
		want, ok := refFrames(b.Bytes())
		if !ok {
			t.Fatalf("reference rejects the test stream %q", b.String())
		}
		// Whole, one byte at a time, and in random chunks, with a small
		// initial buffer so that it grows and compacts.
		readers := []io.Reader{
			bytes.NewReader(b.Bytes()),
			iotest.OneByteReader(bytes.NewReader(b.Bytes())),
			&chunkReader{b: b.Bytes(), rng: rng},
		}
		for ri, r := range readers {
			got, err := frameAll(t, r, 16+rng.IntN(64))
			if err != nil {
				t.Fatalf("round %d reader %d: %v", round, ri, err)
			}
			if len(got) != len(want) {
				t.Fatalf("round %d reader %d: %d frames, want %d\ngot  %q\nwant %q", round, ri, len(got), len(want), got, want)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("round %d reader %d frame %d:\ngot  %q\nwant %q", round, ri, i, got[i], want[i])
				}
			}
		}
	}
}

type chunkReader struct {
	b   []byte
	rng *rand.Rand
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := 1 + c.rng.IntN(40)
	n = min(n, len(p), len(c.b))
	copy(p, c.b[:n])
	c.b = c.b[n:]
	return n, nil
}

func TestFramerLimit(t *testing.T) {
	s := header + `<message><body>` + string(bytes.Repeat([]byte("x"), 5000)) + `</body></message>`
	f := NewFramer(bytes.NewReader([]byte(s)), 64, 1024)
	var err error
	for err == nil {
		_, _, err = f.Next()
	}
	if !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("got %v, want ErrFrameTooLarge", err)
	}
}

// FuzzFramer: on every input that encoding/xml accepts as one stream, the
// framer finds the same top-level elements.
func FuzzFramer(f *testing.F) {
	for _, s := range tricky {
		f.Add(header + s + "</stream:stream>")
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, ok := refFrames([]byte(s))
		if !ok || !bytes.HasPrefix([]byte(s), []byte("<?xml")) && !bytes.HasPrefix([]byte(s), []byte("<")) {
			return
		}
		if bytes.Contains([]byte(s), []byte("<!DOCTYPE")) {
			return // not XMPP
		}
		got, err := frameAll(nopFatal{t}, iotest.HalfReader(bytes.NewReader([]byte(s))), 32)
		if err != nil {
			t.Fatalf("%v on %q", err, s)
		}
		if len(got) != len(want) {
			t.Fatalf("%q: got %q want %q", s, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%q: got %q want %q", s, got, want)
			}
		}
	})
}

// nopFatal keeps frameAll's header check from failing fuzz inputs whose
// root is not a stream header.
type nopFatal struct{ testing.TB }

func (nopFatal) Fatalf(string, ...any) {}
