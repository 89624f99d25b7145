package loadgen

import (
	"bytes"
	"errors"
	"io"
)

// Frame kinds returned by Framer.Next.
const (
	FrameHeader = iota + 1 // the <stream:stream ...> opening tag
	FrameStanza            // one complete top-level element (a stanza or a stream-level element)
	FrameEnd               // </stream:stream>
)

// ErrFrameTooLarge is returned when one top-level element does not fit in
// the framer's maximum buffer.
var ErrFrameTooLarge = errors.New("loadgen: stanza larger than the read buffer limit")

// scanner states
const (
	stText     = iota // character data: looking for '<'
	stMarkup          // just after '<': deciding what kind of markup
	stTag             // inside a start or end tag, outside quotes
	stQuote           // inside a quoted attribute value
	stSkip            // inside a comment, PI or CDATA section: looking for skipEnd
	stEndTag          // inside an end tag: looking for '>'
	stTagSlash        // inside a start tag, just after '/'
)

// Framer cuts an XMPP stream into its stream header, top-level elements and
// stream end without building a tree: the load generator reads tens of
// thousands of stanzas a second and only ever needs a few attributes and the
// body of each, so a byte scan (bytes.IndexByte for '<' in text, a small state
// machine inside tags, quote-aware so that '>' in attribute values does not
// cut an element) replaces encoding/xml on the receive path. It is a framer,
// not a validator: it trusts the server to send well-formed XML and only
// tracks what it needs to find element boundaries (tags, quotes, comments,
// processing instructions, CDATA sections).
//
// The slices Next returns alias the framer's buffer and are valid until the
// next call to Next.
type Framer struct {
	r     io.Reader
	buf   []byte
	max   int
	start int // first byte not yet returned
	end   int // bytes in buf
	pos   int // scan position
	state int
	quote byte
	depth int
	elem  int    // start of the current top-level element, -1 when none
	skip  []byte // terminator searched in stSkip
	tagAt int    // start of the tag being scanned
	reads int    // reads from r so far
}

// NewFramer reads from r with an initial buffer of size bytes, growing to
// max when one element needs it.
func NewFramer(r io.Reader, size, max int) *Framer {
	if max < size {
		max = size
	}
	return &Framer{r: r, buf: make([]byte, size), max: max, elem: -1}
}

// Reset starts a new stream on r (after STARTTLS or SASL success), keeping
// the buffer. Bytes already read but not returned are dropped: at a stream
// restart the server has sent nothing more.
func (f *Framer) Reset(r io.Reader) {
	f.r = r
	f.start, f.end, f.pos = 0, 0, 0
	f.state, f.depth, f.elem = stText, 0, -1
}

// Buffered reports whether unread bytes remain in the buffer, i.e. whether
// Next can make progress without reading.
func (f *Framer) Buffered() bool { return f.pos < f.end }

var (
	commentEnd = []byte("-->")
	piEnd      = []byte("?>")
	cdataEnd   = []byte("]]>")
	declEnd    = []byte(">")
)

// Next returns the next frame and its bytes. It reads from the underlying
// reader only when the buffer holds no complete frame.
func (f *Framer) Next() (int, []byte, error) {
	for {
		if kind, frame, ok := f.scan(); ok {
			return kind, frame, nil
		}
		if err := f.fill(); err != nil {
			return 0, nil, err
		}
	}
}

// fill reads more bytes, first compacting the buffer (dropping what has been
// returned) and growing it when the current element fills it.
func (f *Framer) fill() error {
	keep := f.start
	if f.elem >= 0 && f.elem < keep {
		keep = f.elem
	}
	if f.state != stText && f.tagAt < keep {
		keep = f.tagAt
	}
	if keep > 0 {
		n := copy(f.buf, f.buf[keep:f.end])
		f.start -= keep
		f.pos -= keep
		f.end = n
		f.tagAt -= keep
		if f.elem >= 0 {
			f.elem -= keep
		}
	}
	if f.end == len(f.buf) {
		if len(f.buf) >= f.max {
			return ErrFrameTooLarge
		}
		n := len(f.buf) * 2
		if n > f.max {
			n = f.max
		}
		nb := make([]byte, n)
		copy(nb, f.buf[:f.end])
		f.buf = nb
	}
	n, err := f.r.Read(f.buf[f.end:])
	f.reads++
	f.end += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// scan advances over buffered bytes until a frame is complete.
func (f *Framer) scan() (int, []byte, bool) {
	b := f.buf[:f.end]
	for f.pos < len(b) {
		switch f.state {
		case stText:
			i := bytes.IndexByte(b[f.pos:], '<')
			if i < 0 {
				f.pos = len(b)
				if f.elem < 0 {
					f.start = f.pos // whitespace between stanzas: drop it
				}
				return 0, nil, false
			}
			f.pos += i
			f.tagAt = f.pos
			f.pos++
			f.state = stMarkup
		case stMarkup:
			c := b[f.pos]
			switch c {
			case '/':
				f.pos++
				f.state = stEndTag
			case '?':
				f.pos++
				f.skip, f.state = piEnd, stSkip
			case '!':
				// comment or CDATA: both need a few more bytes to tell
				if len(b)-f.pos < 3 {
					return 0, nil, false
				}
				switch b[f.pos+1] {
				case '-':
					f.skip = commentEnd
				case '[':
					f.skip = cdataEnd
				default: // a declaration (<!DOCTYPE ...>): not XMPP, skipped whole
					f.skip = declEnd
				}
				f.pos++
				f.state = stSkip
			default:
				if f.depth == 1 && f.elem < 0 {
					f.elem = f.tagAt
				}
				f.state = stTag
			}
		case stSkip:
			i := bytes.Index(b[f.pos:], f.skip)
			if i < 0 {
				if n := len(b) - len(f.skip) + 1; n > f.pos {
					f.pos = n
				}
				return 0, nil, false
			}
			f.pos += i + len(f.skip)
			f.state = stText
			if f.elem < 0 {
				f.start = f.pos // the XML declaration before the header
			}
		case stTag:
			for f.pos < len(b) {
				c := b[f.pos]
				f.pos++
				switch c {
				case '"', '\'':
					f.quote = c
					f.state = stQuote
				case '/':
					f.state = stTagSlash
				case '>':
					f.state = stText
					f.depth++
					if f.depth == 1 {
						frame := b[f.tagAt:f.pos]
						f.start = f.pos
						return FrameHeader, frame, true
					}
				default:
					continue
				}
				break
			}
		case stTagSlash:
			c := b[f.pos]
			f.pos++
			switch c {
			case '>':
				f.state = stText
				if f.depth == 1 {
					return f.emit(b)
				}
			case '"', '\'':
				f.quote = c
				f.state = stQuote
			default:
				f.state = stTag
			}
		case stQuote:
			i := bytes.IndexByte(b[f.pos:], f.quote)
			if i < 0 {
				f.pos = len(b)
				return 0, nil, false
			}
			f.pos += i + 1
			f.state = stTag
		case stEndTag:
			i := bytes.IndexByte(b[f.pos:], '>')
			if i < 0 {
				f.pos = len(b)
				return 0, nil, false
			}
			f.pos += i + 1
			f.state = stText
			f.depth--
			switch f.depth {
			case 1:
				return f.emit(b)
			case 0:
				frame := b[f.tagAt:f.pos]
				f.start = f.pos
				return FrameEnd, frame, true
			}
		}
	}
	return 0, nil, false
}

func (f *Framer) emit(b []byte) (int, []byte, bool) {
	frame := b[f.elem:f.pos]
	f.elem = -1
	f.start = f.pos
	return FrameStanza, frame, true
}
