package loadgen

import (
	"bytes"
	"encoding/xml"
	"io"
	"testing"
)

// chatStream is a stream header followed by n chat messages as a server
// delivers them (stamped body, from/to/id attributes, a namespace).
func chatStream(n int) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	for i := 0; i < n; i++ {
		b.WriteString(`<message xmlns='jabber:client' from='bench17@bench.test/bench' to='bench4@bench.test' type='chat' id='a1b2c3d4'><body>`)
		b.Write(AppendStamp(nil, Stamp{Step: 2, Due: 12345678901, Sender: 17}, 64))
		b.WriteString(`</body></message>`)
	}
	return b.Bytes()
}

// loopReader serves the same messages forever after the header.
type loopReader struct {
	head, body []byte
	off        int
}

func (l *loopReader) Read(p []byte) (int, error) {
	if l.head != nil {
		n := copy(p, l.head)
		l.head = l.head[n:]
		if len(l.head) == 0 {
			l.head = nil
		}
		return n, nil
	}
	n := copy(p, l.body[l.off:])
	l.off = (l.off + n) % len(l.body)
	return n, nil
}

// BenchmarkReceiveMessage is the generator's receive-path cost per
// delivered chat message: framing, name, type, body, stamp.
func BenchmarkReceiveMessage(b *testing.B) {
	s := chatStream(64)
	h := bytes.Index(s, []byte("<message"))
	f := NewFramer(&loopReader{head: s[:h], body: s[h:]}, readSize, readMax)
	if k, _, err := f.Next(); err != nil || k != FrameHeader {
		b.Fatal(k, err)
	}
	b.SetBytes(int64((len(s) - h) / 64))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_, el, err := f.Next()
		if err != nil {
			b.Fatal(err)
		}
		if string(Name(el)) != "message" || string(Attr(el, "type")) != "chat" {
			b.Fatalf("%s", el)
		}
		if _, ok := ParseStamp(ChildText(el, "body")); !ok {
			b.Fatalf("%s", el)
		}
	}
}

// BenchmarkReceiveMessageEncodingXML is the same work with encoding/xml
// tokens, for comparison (why the framer exists).
func BenchmarkReceiveMessageEncodingXML(b *testing.B) {
	s := chatStream(64)
	h := bytes.Index(s, []byte("<message"))
	d := xml.NewDecoder(&loopReader{head: s[:h], body: s[h:]})
	for { // up to and including the stream header
		tok, err := d.Token()
		if err != nil {
			b.Fatal(err)
		}
		if _, ok := tok.(xml.StartElement); ok {
			break
		}
	}
	b.SetBytes(int64((len(s) - h) / 64))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var m struct {
			Type string `xml:"type,attr"`
			Body string `xml:"body"`
		}
		for {
			tok, err := d.Token()
			if err != nil {
				b.Fatal(err)
			}
			if se, ok := tok.(xml.StartElement); ok {
				if err := d.DecodeElement(&m, &se); err != nil {
					b.Fatal(err)
				}
				break
			}
		}
		if _, ok := ParseStamp([]byte(m.Body)); !ok || m.Type != "chat" {
			b.Fatal(m)
		}
	}
}

// BenchmarkSendMessage is the generator's cost to build one stamped chat
// message into a reused buffer.
func BenchmarkSendMessage(b *testing.B) {
	to := []byte("bench4@bench.test")
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p := append(buf[:0], "<message type='chat' to='"...)
		p = append(p, to...)
		p = append(p, "'><body>"...)
		p = AppendStamp(p, Stamp{Step: 1, Due: int64(i) * 1000, Sender: 17}, 64)
		buf = append(p, "</body></message>"...)
	}
}

// BenchmarkHistogramRecord is one latency observation.
func BenchmarkHistogramRecord(b *testing.B) {
	var h Histogram
	for i := 0; i < b.N; i++ {
		h.Record(1234567)
	}
}

var _ io.Reader = (*loopReader)(nil)
