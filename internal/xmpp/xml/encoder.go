package xml

import (
	"io"
	"strconv"
	"unicode/utf8"
)

// StreamClose closes a stream opened with StreamHeaderBytes.
const StreamClose = "</stream:stream>"

// Serialisation rules (the decoder's inverse, so that parse → serialise →
// parse is the identity on trees):
//
//   - Elements never get prefixes. An element whose Space differs from its
//     parent's gets xmlns='Space'. At the top, the parent's Space is "": a
//     stanza with Space "" inherits the stream's default namespace.
//   - An element with Space "" under a parent in another namespace gets
//     xmlns='contentNS' (WriteToNS), or xmlns='' (no namespace) with the
//     plain methods, so its meaning never silently changes to the parent's.
//   - Attributes in NSXML are written xml:local. Other namespaced
//     attributes get a prefix nsN, N being the index of the first attribute
//     in that namespace, declared on the same element.
//   - Attributes that are themselves namespace declarations (Local "xmlns"
//     with Space "", or Space "xmlns") are skipped: declarations are
//     generated, never copied.
//   - Text escapes & < > and \r; attribute values (single-quoted) escape
//     & < ' " and \t \n \r, so that attribute-value normalisation cannot
//     change them. Bytes that XML cannot carry at all (invalid UTF-8,
//     control characters, U+FFFE/U+FFFF) are written as U+FFFD rather than
//     producing a document the peer must reject.
//
// Element and attribute names are written as they are: they come from the
// decoder (validated) or from Parley's own code, never from free-form
// input, so they are not checked on this hot path.

// String returns the serialised element.
func (e *Element) String() string { return string(e.Bytes()) }

// Bytes returns the serialised element in a newly allocated slice.
func (e *Element) Bytes() []byte {
	return e.AppendTo(make([]byte, 0, e.Size()))
}

// Size returns the length of the serialisation written by WriteTo, Bytes
// and AppendTo.
func (e *Element) Size() int { return sizeElement(e, "", "") }

// SizeNS returns the length of the serialisation written by WriteToNS.
func (e *Element) SizeNS(contentNS string) int { return sizeElement(e, "", contentNS) }

// AppendTo appends the serialised element to dst.
func (e *Element) AppendTo(dst []byte) []byte { return appendElement(dst, e, "", "") }

// AppendToNS appends the serialisation WriteToNS would write to dst.
func (e *Element) AppendToNS(dst []byte, contentNS string) []byte {
	return appendElement(dst, e, "", contentNS)
}

// WriteTo writes the serialised element to w. It implements io.WriterTo.
func (e *Element) WriteTo(w io.Writer) (int64, error) { return e.WriteToNS(w, "") }

// WriteToNS is WriteTo for a stream whose content namespace is contentNS:
// an element with Space "" below an element in another namespace is written
// with xmlns='contentNS', keeping its meaning.
//
// Writing into a *bytes.Buffer or *bufio.Writer appends into the writer's
// own free space, so in steady state it does not allocate.
func (e *Element) WriteToNS(w io.Writer, contentNS string) (int64, error) {
	var b []byte
	switch w := w.(type) {
	case interface{ AvailableBuffer() []byte }: // *bytes.Buffer, *bufio.Writer
		// Append into the writer's free space; if the element does not
		// fit, append allocates and Write copies, once, after which a
		// reused buffer has the room. No sizing pass on the hot path.
		b = w.AvailableBuffer()
	default:
		b = make([]byte, 0, sizeElement(e, "", contentNS))
	}
	b = appendElement(b, e, "", contentNS)
	n, err := w.Write(b)
	return int64(n), err
}

func isDecl(a *Attr) bool {
	return a.Space == "xmlns" || a.Space == nsXMLNS || a.Space == "" && a.Local == "xmlns"
}

// firstInSpace returns the index of the first attribute in attrs[:i+1]
// with the same namespace as attrs[i]. Elements have few attributes, so a
// scan beats a map and does not allocate.
func firstInSpace(attrs []Attr, i int) int {
	for j := range i {
		if attrs[j].Space == attrs[i].Space {
			return j
		}
	}
	return i
}

func appendElement(dst []byte, e *Element, parentSpace, contentNS string) []byte {
	dst = append(dst, '<')
	dst = append(dst, e.Local...)
	if e.Space != parentSpace {
		ns := e.Space
		if ns == "" {
			ns = contentNS
		}
		dst = append(dst, " xmlns='"...)
		dst = appendEscaped(dst, ns, true)
		dst = append(dst, '\'')
	}
	for i := range e.Attrs {
		a := &e.Attrs[i]
		if isDecl(a) {
			continue
		}
		dst = append(dst, ' ')
		switch a.Space {
		case "":
		case NSXML:
			dst = append(dst, "xml:"...)
		default:
			j := firstInSpace(e.Attrs, i)
			if j == i {
				dst = append(dst, "xmlns:ns"...)
				dst = strconv.AppendInt(dst, int64(i), 10)
				dst = append(dst, "='"...)
				dst = appendEscaped(dst, a.Space, true)
				dst = append(dst, "' "...)
			}
			dst = append(dst, "ns"...)
			dst = strconv.AppendInt(dst, int64(j), 10)
			dst = append(dst, ':')
		}
		dst = append(dst, a.Local...)
		dst = append(dst, "='"...)
		dst = appendEscaped(dst, a.Value, true)
		dst = append(dst, '\'')
	}
	if len(e.Children) == 0 {
		return append(dst, "/>"...)
	}
	dst = append(dst, '>')
	if e.fan.valid(e, contentNS) {
		dst = append(dst, e.fan.b...) // ForFanout: written once for all copies
	} else {
		for _, c := range e.Children {
			dst = appendChild(dst, c, e.Space, contentNS)
		}
	}
	dst = append(dst, "</"...)
	dst = append(dst, e.Local...)
	return append(dst, '>')
}

// appendChild appends one child node of an element in namespace
// parentSpace.
func appendChild(dst []byte, c Node, parentSpace, contentNS string) []byte {
	switch c := c.(type) {
	case *Element:
		if c != nil {
			dst = appendElement(dst, c, parentSpace, contentNS)
		}
	case CharData:
		dst = appendEscaped(dst, string(c), false)
	}
	return dst
}

// sizeElement mirrors appendElement exactly (FuzzRoundTrip checks).
func sizeElement(e *Element, parentSpace, contentNS string) int {
	n := 1 + len(e.Local)
	if e.Space != parentSpace {
		ns := e.Space
		if ns == "" {
			ns = contentNS
		}
		n += len(" xmlns='") + escapedLen(ns, true) + 1
	}
	for i := range e.Attrs {
		a := &e.Attrs[i]
		if isDecl(a) {
			continue
		}
		n++
		switch a.Space {
		case "":
		case NSXML:
			n += len("xml:")
		default:
			j := firstInSpace(e.Attrs, i)
			if j == i {
				n += len("xmlns:ns") + decimalLen(i) + len("='") + escapedLen(a.Space, true) + len("' ")
			}
			n += len("ns") + decimalLen(j) + 1
		}
		n += len(a.Local) + len("='") + escapedLen(a.Value, true) + 1
	}
	if len(e.Children) == 0 {
		return n + 2
	}
	n++
	if e.fan.valid(e, contentNS) {
		return n + len(e.fan.b) + 2 + len(e.Local) + 1
	}
	for _, c := range e.Children {
		switch c := c.(type) {
		case *Element:
			if c != nil {
				n += sizeElement(c, e.Space, contentNS)
			}
		case CharData:
			n += escapedLen(string(c), false)
		}
	}
	return n + 2 + len(e.Local) + 1
}

func decimalLen(i int) int {
	n := 1
	for i >= 10 {
		i /= 10
		n++
	}
	return n
}

const replacementChar = "\uFFFD"

// escape returns the replacement for byte c (an ASCII byte) in text or an
// attribute value, or "" if c is written as is.
func escape(c byte, attr bool) string {
	switch c {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		if !attr {
			return "&gt;" // also keeps "]]>" out of text
		}
	case '\'':
		if attr {
			return "&apos;"
		}
	case '"':
		if attr {
			return "&quot;"
		}
	case '\r':
		return "&#xD;" // a literal CR would be normalised to LF
	case '\n':
		if attr {
			return "&#xA;"
		}
	case '\t':
		if attr {
			return "&#x9;"
		}
	default:
		if c < 0x20 {
			return replacementChar
		}
	}
	return ""
}

// needsCheck reports whether byte c may need escaping or validation; the
// loops below skip everything else without a call.
func needsCheck(c byte) bool { return checkTable[c] }

var checkTable = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c < 0x20 || c >= utf8.RuneSelf || c == '&' || c == '<' || c == '>' || c == '\'' || c == '"'
	}
	return t
}()

// badRune reports whether the rune starting s (non-ASCII) is something XML
// cannot carry, and its length.
func badRune(s string) (bool, int) {
	r, n := utf8.DecodeRuneInString(s)
	return r == utf8.RuneError && n == 1 || r == 0xFFFE || r == 0xFFFF, n
}

func appendEscaped(dst []byte, s string, attr bool) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if !needsCheck(c) {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			bad, n := badRune(s[i:])
			if bad {
				dst = append(dst, s[start:i]...)
				dst = append(dst, replacementChar...)
				start = i + n
			}
			i += n
			continue
		}
		if esc := escape(c, attr); esc != "" {
			dst = append(dst, s[start:i]...)
			dst = append(dst, esc...)
			start = i + 1
		}
		i++
	}
	return append(dst, s[start:]...)
}

func escapedLen(s string, attr bool) int {
	n := len(s)
	for i := 0; i < len(s); {
		c := s[i]
		if !needsCheck(c) {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			bad, w := badRune(s[i:])
			if bad {
				n += len(replacementChar) - w
			}
			i += w
			continue
		}
		if esc := escape(c, attr); esc != "" {
			n += len(esc) - 1
		}
		i++
	}
	return n
}

// StreamHeaderBytes returns the XML declaration and opening stream element
// for h:
//
//	<?xml version='1.0'?><stream:stream xmlns='jabber:client'
//	xmlns:stream='http://etherx.jabber.org/streams' to='example.com'
//	id='...' version='1.0' xml:lang='en'>
//
// Empty fields are omitted. h.Prefixes are declared (except "stream"), and
// unnamespaced h.Attrs other than to/from/id/version are appended; the
// element is always written as stream:stream in NSStream, whatever h.Space
// and h.Local say.
func StreamHeaderBytes(h StreamHeader) []byte {
	b := make([]byte, 0, 256)
	b = append(b, "<?xml version='1.0'?><stream:stream"...)
	attr := func(name, v string) {
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, "='"...)
		b = appendEscaped(b, v, true)
		b = append(b, '\'')
	}
	if h.DefaultNS != "" {
		attr("xmlns", h.DefaultNS)
	}
	attr("xmlns:stream", NSStream)
	for _, p := range h.Prefixes {
		if p.Prefix != "stream" && p.Prefix != "" && p.URI != "" {
			attr("xmlns:"+p.Prefix, p.URI)
		}
	}
	for _, f := range [...]struct{ name, v string }{
		{"to", h.To}, {"from", h.From}, {"id", h.ID}, {"version", h.Version}, {"xml:lang", h.Lang},
	} {
		if f.v != "" {
			attr(f.name, f.v)
		}
	}
	for _, a := range h.Attrs {
		if a.Space != "" || a.Local == "xmlns" {
			continue
		}
		switch a.Local {
		case "to", "from", "id", "version":
			continue
		}
		attr(a.Local, a.Value)
	}
	return append(b, '>')
}

// AppendStandalone appends el as an XML document of its own: the top
// element declares its namespace even when it is the content namespace
// (Space ""), since no enclosing stream element declares it. RFC 7395
// frames every stanza this way, one per WebSocket message.
func (e *Element) AppendStandalone(dst []byte, contentNS string) []byte {
	return appendElement(dst, e, standaloneParent, contentNS)
}

// standaloneParent is a parent namespace no element has, so the top
// element always writes its xmlns.
const standaloneParent = "\x00"
