package xml

import (
	stdxml "encoding/xml"
	"errors"
	"io"
	"strconv"
)

// NSStream is the namespace of the <stream:stream> element (RFC 6120 §4.8.1).
const NSStream = "http://etherx.jabber.org/streams"

// nsXMLNS is the namespace reserved for namespace declarations; nothing may
// be bound to it.
const nsXMLNS = "http://www.w3.org/2000/xmlns/"

// Stream error conditions (RFC 6120 §4.9.3) this package reports.
const (
	CondBadFormat           = "bad-format"
	CondInvalidNamespace    = "invalid-namespace"
	CondNotWellFormed       = "not-well-formed"
	CondPolicyViolation     = "policy-violation"
	CondRestrictedXML       = "restricted-xml"
	CondUnsupportedEncoding = "unsupported-encoding"
)

// Error is a fatal stream-level problem with the input. Condition is the RFC
// 6120 §4.9.3 stream error condition to send to the peer before closing the
// stream; Text is a human-readable detail (safe to log, and safe to send as
// the stream error <text/>: it never echoes input bytes).
type Error struct {
	Condition string
	Text      string
}

func (e *Error) Error() string {
	if e.Text == "" {
		return "xml: " + e.Condition
	}
	return "xml: " + e.Condition + ": " + e.Text
}

// ErrStreamClosed is returned by Decoder.Next when the peer closed its
// stream with </stream:stream>.
var ErrStreamClosed = errors.New("xml: stream closed by peer")

// errHeaderState is returned for API misuse (Next before ReadHeader,
// ReadHeader twice). It is a programming error, not a peer error.
var errHeaderState = errors.New("xml: ReadHeader must be called exactly once, before Next")

// Limits bound what a peer can make the decoder hold in memory. A zero or
// negative field means "use the default".
type Limits struct {
	MaxStanzaBytes int // bytes of one top-level element incl. its children (default 256 KiB)
	MaxDepth       int // nesting depth inside a stanza; the stanza itself is depth 1 (default 32)
	MaxAttrs       int // attributes per element, namespace declarations included (default 64)
	MaxHeaderBytes int // bytes of the XML declaration plus stream header (default 8 KiB)
}

// DefaultLimits returns the limits Parley uses unless configured otherwise.
func DefaultLimits() Limits {
	return Limits{
		MaxStanzaBytes: 256 << 10,
		MaxDepth:       32,
		MaxAttrs:       64,
		MaxHeaderBytes: 8 << 10,
	}
}

func (l Limits) withDefaults() Limits {
	def := DefaultLimits()
	if l.MaxStanzaBytes <= 0 {
		l.MaxStanzaBytes = def.MaxStanzaBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = def.MaxDepth
	}
	if l.MaxAttrs <= 0 {
		l.MaxAttrs = def.MaxAttrs
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = def.MaxHeaderBytes
	}
	return l
}

// NSDecl is a prefixed namespace declaration (xmlns:prefix='uri').
type NSDecl struct {
	Prefix string
	URI    string
}

// StreamHeader is the opening <stream:stream> element.
type StreamHeader struct {
	Space, Local string // NSStream, "stream" once validated
	// Attrs are all attributes except namespace declarations, resolved like
	// element attributes (xml:lang has Space NSXML).
	Attrs []Attr
	// DefaultNS is the xmlns='...' declaration: the content namespace the
	// peer wants (jabber:client, jabber:server, ...). The stream layer must
	// check it (invalid-namespace if unsupported) and then call
	// Decoder.SetContentNamespace.
	DefaultNS string
	// Prefixes are the other prefixed declarations on the stream element,
	// such as xmlns:db='jabber:server:dialback' (XEP-0220 uses its presence
	// to advertise dialback). The declaration of the stream prefix itself is
	// not included.
	Prefixes []NSDecl

	To, From, ID, Version, Lang string
}

// Decoder reads an XMPP stream: ReadHeader once, then Next until it returns
// an error. Any error is final: every later call returns it again.
//
// Errors are *Error (send the stream error Condition and close),
// ErrStreamClosed (peer sent </stream:stream>), io.EOF (the transport
// ended outside of any element: a plain disconnect), or the transport's own
// read error, returned unchanged so that timeouts can be recognised.
//
// Transport switches: a Decoder never reads past the end of the element
// Next returns unless the bytes were already delivered by the same
// transport Read. After <starttls/> (or stream compression) the caller
// discards this Decoder and makes a NEW one on the new transport. Bytes this
// Decoder had already read but not parsed are deliberately dropped: they
// arrived in plaintext before the handshake and must never be interpreted as
// if they had been protected (the STARTTLS command injection attack,
// CVE-2011-0411 and friends). Buffered reports how many there were, so the
// stream layer can log the attempt or refuse the negotiation.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	lim Limits
	lr  limitReader
	x   *stdxml.Decoder
	// xBase is lr.handed when x was created: x.InputOffset counts from it.
	xBase int64

	contentNS  string
	streamName stdxml.Name // raw (prefixed) name of the stream element
	opened     bool        // ReadHeader succeeded
	err        error       // sticky terminal error

	// badEncoding is set by our CharsetReader hook: encoding/xml only wraps
	// that hook's error in a fmt error, so a flag is the robust signal.
	badEncoding bool

	ns    nsScope
	stack []frame
	text  []byte // character data pending for the innermost open element
}

type frame struct {
	el     *Element
	name   stdxml.Name // raw name, for end-tag matching
	nsMark int
}

// NewDecoder returns a Decoder reading from r. r is read in chunks of up to
// 4 KiB; nothing else is read ahead.
func NewDecoder(r io.Reader, lim Limits) *Decoder {
	d := &Decoder{lim: lim.withDefaults()}
	d.lr.init(r)
	d.lr.maxStanza = d.lim.MaxStanzaBytes
	d.lr.strayCond = CondBadFormat
	d.lr.setBudget("stream header", d.lim.MaxHeaderBytes)
	d.resetXML()
	return d
}

// resetXML (re)creates the encoding/xml decoder on our reader. Called at
// element boundaries after a large stanza, so that encoding/xml's internal
// token buffer, which keeps the capacity of the largest token it has seen,
// does not pin up to MaxStanzaBytes per idle connection. Nothing of
// encoding/xml's state is needed across top-level elements: we use RawToken
// and do namespace scoping and tag matching ourselves.
func (d *Decoder) resetXML() {
	x := stdxml.NewDecoder(&d.lr)
	x.Strict = true // unknown entities, unquoted attributes, etc. are errors
	x.CharsetReader = func(string, io.Reader) (io.Reader, error) {
		d.badEncoding = true
		return nil, errors.New("unsupported encoding")
	}
	d.x = x
	d.xBase = d.lr.handed
}

// SetContentNamespace makes elements in namespace ns be stored with Space ""
// (see Element). Call it after ReadHeader with the validated DefaultNS.
func (d *Decoder) SetContentNamespace(ns string) { d.contentNS = ns }

// Buffered reports how many bytes the Decoder has read from the transport
// but not yet consumed. Right after Next returned <starttls/> it is the
// number of bytes the peer pipelined in plaintext behind the command.
func (d *Decoder) Buffered() int {
	return d.lr.buffered() + int(d.lr.handed-d.xBase-d.x.InputOffset())
}

func (d *Decoder) setErr(err error) error {
	d.err = err
	return err
}

// ReadHeader reads the optional XML declaration and the opening stream
// element, and returns as soon as the stream element's '>' is read.
func (d *Decoder) ReadHeader() (StreamHeader, error) {
	if d.err != nil {
		return StreamHeader{}, d.err
	}
	if d.opened {
		return StreamHeader{}, errHeaderState
	}
	for first := true; ; first = false {
		tok, err := d.x.RawToken()
		if err != nil {
			if err == io.EOF && d.lr.fail == nil {
				// Nothing but whitespace or a declaration: a plain disconnect.
				return StreamHeader{}, d.setErr(io.EOF)
			}
			return StreamHeader{}, d.setErr(d.mapErr(err))
		}
		if d.lr.fail != nil {
			// encoding/xml can return the text it read before our reader
			// refused a byte; the refusal is the real reason.
			return StreamHeader{}, d.setErr(d.lr.fail)
		}
		switch t := tok.(type) {
		case stdxml.ProcInst:
			// encoding/xml has already refused any version but 1.0 and,
			// through our CharsetReader, any encoding but UTF-8.
			if !first || t.Target != "xml" {
				return StreamHeader{}, d.setErr(&Error{CondRestrictedXML, "processing instruction"})
			}
		case stdxml.CharData:
			if !isSpace(t) {
				return StreamHeader{}, d.setErr(&Error{CondNotWellFormed, "text before stream header"})
			}
		case stdxml.Comment:
			return StreamHeader{}, d.setErr(&Error{CondRestrictedXML, "comment"})
		case stdxml.Directive:
			return StreamHeader{}, d.setErr(&Error{CondRestrictedXML, "DTD or other directive"})
		case stdxml.EndElement:
			return StreamHeader{}, d.setErr(&Error{CondNotWellFormed, "end tag before stream header"})
		case stdxml.StartElement:
			h, err := d.openStream(t)
			if err != nil {
				return StreamHeader{}, d.setErr(err)
			}
			return h, nil
		}
	}
}

func (d *Decoder) openStream(t stdxml.StartElement) (StreamHeader, error) {
	el, err := d.startElement(t)
	if err != nil {
		return StreamHeader{}, err
	}
	if el.Space != NSStream || el.Local != "stream" {
		return StreamHeader{}, &Error{CondInvalidNamespace, "stream element must be <stream xmlns='" + NSStream + "'>"}
	}
	h := StreamHeader{Space: el.Space, Local: el.Local, Attrs: el.Attrs, DefaultNS: d.ns.def}
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" && a.Name.Local != t.Name.Space {
			h.Prefixes = append(h.Prefixes, NSDecl{Prefix: a.Name.Local, URI: a.Value})
		}
	}
	for _, a := range el.Attrs {
		switch {
		case a.Space == NSXML && a.Local == "lang":
			h.Lang = a.Value
		case a.Space != "":
		case a.Local == "to":
			h.To = a.Value
		case a.Local == "from":
			h.From = a.Value
		case a.Local == "id":
			h.ID = a.Value
		case a.Local == "version":
			h.Version = a.Value
		}
	}
	// The stream element stays open for the life of the stream. Its
	// namespace declarations remain in scope (d.ns is not unwound), and
	// stanzas are parsed with an empty element stack.
	d.streamName = t.Name
	d.opened = true
	d.lr.enterBetween()
	return h, nil
}

// Next returns the next complete top-level element of the stream. It reads
// only as far as that element's closing '>'.
func (d *Decoder) Next() (*Element, error) {
	if d.err != nil {
		return nil, d.err
	}
	if !d.opened {
		return nil, errHeaderState
	}
	el, err := d.readElement(true)
	if err != nil {
		return nil, d.setErr(err)
	}
	d.endOfElement()
	return el, nil
}

// endOfElement prepares for the next top-level element.
func (d *Decoder) endOfElement() {
	if d.lr.handed-d.xBase > 16<<10 {
		d.resetXML()
	}
	if cap(d.text) > 4<<10 {
		d.text = nil
	}
	d.lr.enterBetween()
}

// readElement reads one complete top-level element. In stream mode an end
// tag for the stream element yields ErrStreamClosed.
func (d *Decoder) readElement(stream bool) (*Element, error) {
	for {
		tok, err := d.x.RawToken()
		if err != nil {
			if err == io.EOF && len(d.stack) == 0 && d.lr.fail == nil {
				return nil, io.EOF
			}
			return nil, d.mapErr(err)
		}
		switch t := tok.(type) {
		case stdxml.StartElement:
			if len(d.stack) >= d.lim.MaxDepth {
				return nil, &Error{CondPolicyViolation, "element nesting deeper than " + strconv.Itoa(d.lim.MaxDepth)}
			}
			d.flushText()
			mark := d.ns.mark()
			el, err := d.startElement(t)
			if err != nil {
				return nil, err
			}
			if n := len(d.stack); n > 0 {
				p := d.stack[n-1].el
				p.Children = append(p.Children, el)
			}
			d.stack = append(d.stack, frame{el: el, name: t.Name, nsMark: mark})

		case stdxml.EndElement:
			n := len(d.stack)
			if n == 0 {
				if stream && t.Name == d.streamName {
					return nil, ErrStreamClosed
				}
				return nil, &Error{CondNotWellFormed, "unexpected end tag"}
			}
			top := d.stack[n-1]
			if t.Name != top.name {
				return nil, &Error{CondNotWellFormed, "mismatched end tag"}
			}
			d.flushText()
			d.ns.restore(top.nsMark)
			d.stack[n-1] = frame{}
			d.stack = d.stack[:n-1]
			if n == 1 {
				return top.el, nil
			}

		case stdxml.CharData:
			if len(d.stack) == 0 {
				// The reader swallows whitespace between elements and
				// refuses anything else, so this is unreachable; stay
				// safe if that ever changes.
				if isSpace(t) {
					continue
				}
				return nil, &Error{d.lr.strayCond, "character data at stream level"}
			}
			// Merge adjacent runs (text, CDATA sections) into one CharData
			// so trees are canonical; building one string per element
			// instead of concatenating per token keeps this linear.
			d.text = append(d.text, t...)

		case stdxml.Comment:
			return nil, &Error{CondRestrictedXML, "comment"}
		case stdxml.ProcInst:
			return nil, &Error{CondRestrictedXML, "processing instruction"}
		case stdxml.Directive:
			return nil, &Error{CondRestrictedXML, "DTD or other directive"}
		}
	}
}

func (d *Decoder) flushText() {
	if len(d.text) == 0 {
		return
	}
	p := d.stack[len(d.stack)-1].el
	p.Children = append(p.Children, CharData(d.text))
	d.text = d.text[:0]
}

// startElement validates a start tag, pushes its namespace declarations and
// returns the resolved element (without children).
func (d *Decoder) startElement(t stdxml.StartElement) (*Element, error) {
	if len(t.Attr) > d.lim.MaxAttrs {
		return nil, &Error{CondPolicyViolation, "more than " + strconv.Itoa(d.lim.MaxAttrs) + " attributes"}
	}
	// Declarations first: they apply to the element's own name and to
	// attributes written before them.
	nattr := 0
	for i, a := range t.Attr {
		for j := range i {
			if t.Attr[j].Name == a.Name {
				return nil, &Error{CondNotWellFormed, "duplicate attribute"}
			}
		}
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns":
			if err := d.ns.declareDefault(a.Value); err != nil {
				return nil, err
			}
		case a.Name.Space == "xmlns":
			if err := d.ns.declare(a.Name.Local, a.Value); err != nil {
				return nil, err
			}
		default:
			nattr++
		}
	}
	space, err := d.ns.resolve(t.Name, true)
	if err != nil {
		return nil, err
	}
	if space == d.contentNS {
		space = ""
	}
	el := &Element{Space: space, Local: t.Name.Local}
	if nattr == 0 {
		return el, nil
	}
	el.Attrs = make([]Attr, 0, nattr)
	for _, a := range t.Attr {
		if a.Name.Space == "xmlns" || a.Name.Space == "" && a.Name.Local == "xmlns" {
			continue
		}
		as, err := d.ns.resolve(a.Name, false)
		if err != nil {
			return nil, err
		}
		// Two prefixes bound to the same URI make a duplicate too
		// (Namespaces in XML 1.0 §6.3).
		if as != "" {
			for _, b := range el.Attrs {
				if b.Space == as && b.Local == a.Name.Local {
					return nil, &Error{CondNotWellFormed, "duplicate attribute"}
				}
			}
		}
		el.Attrs = append(el.Attrs, Attr{Space: as, Local: a.Name.Local, Value: a.Value})
	}
	return el, nil
}

// mapErr turns an error from encoding/xml into what we return.
func (d *Decoder) mapErr(err error) error {
	if d.lr.fail != nil {
		return d.lr.fail
	}
	if d.badEncoding {
		return &Error{CondUnsupportedEncoding, "only UTF-8 is supported"}
	}
	if ioErr := d.lr.ioErr; ioErr != nil && ioErr != io.EOF && errors.Is(err, ioErr) {
		// Transport failure (timeout, reset): not the peer's XML's fault.
		return ioErr
	}
	if err == io.EOF {
		return &Error{CondNotWellFormed, "unexpected EOF inside element"}
	}
	var se *stdxml.SyntaxError
	if errors.As(err, &se) {
		// Includes undeclared entity references such as &xxe;: without a
		// DTD they are a well-formedness error (XML 1.0 WFC: Entity
		// Declared), so we report not-well-formed rather than
		// restricted-xml. The message never contains input bytes beyond
		// the entity name, which is a valid XML name.
		return &Error{CondNotWellFormed, se.Msg}
	}
	// E.g. an XML declaration with version other than 1.0.
	return &Error{CondNotWellFormed, err.Error()}
}

// ParseElement parses exactly one element from b (surrounding whitespace is
// allowed) under the same limits and restrictions as a stream. Elements in
// contentNS, and elements in no namespace, get Space "".
func ParseElement(b []byte, lim Limits, contentNS string) (*Element, error) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxStanzaBytes+lim.MaxHeaderBytes {
		return nil, &Error{CondPolicyViolation, "stanza exceeds " + strconv.Itoa(lim.MaxStanzaBytes) + " bytes"}
	}
	d := NewDecoder(&sliceReader{b: b}, lim)
	d.lr.strayCond = CondNotWellFormed
	d.contentNS = contentNS
	d.lr.enterBetween()
	el, err := d.readElement(false)
	if err != nil {
		if err == io.EOF {
			return nil, &Error{CondNotWellFormed, "no element"}
		}
		return nil, err
	}
	d.lr.enterBetween()
	tok, err := d.x.RawToken()
	switch tok.(type) {
	case nil:
		if err == io.EOF && d.lr.fail == nil {
			return el, nil
		}
		return nil, d.mapErr(err)
	case stdxml.Comment, stdxml.ProcInst, stdxml.Directive:
		return nil, &Error{CondRestrictedXML, "markup after element"}
	}
	return nil, &Error{CondNotWellFormed, "data after element"}
}

// sliceReader is a minimal io.Reader over a byte slice. It deliberately
// does not implement io.ByteReader (unlike bytes.Reader), so that it is
// always driven through limitReader.
type sliceReader struct{ b []byte }

func (s *sliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// isSpace reports whether b is only XML whitespace (XML 1.0 production S).
func isSpace(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			return false
		}
	}
	return true
}

// nsScope tracks in-scope namespace bindings. The default namespace is a
// plain field, so the common case (unprefixed names) costs nothing; prefixed
// bindings live in a map with an undo log, so lookups stay O(1) however many
// declarations a hostile peer stacks up.
type nsScope struct {
	def  string
	m    map[string]string
	undo []nsUndo
}

type nsUndo struct {
	prefix string // "" for the default namespace
	old    string
	had    bool
}

func (s *nsScope) mark() int { return len(s.undo) }

func (s *nsScope) restore(mark int) {
	for i := len(s.undo) - 1; i >= mark; i-- {
		u := s.undo[i]
		switch {
		case u.prefix == "":
			s.def = u.old
		case u.had:
			s.m[u.prefix] = u.old
		default:
			delete(s.m, u.prefix)
		}
	}
	s.undo = s.undo[:mark]
}

func (s *nsScope) declareDefault(uri string) error {
	if uri == NSXML || uri == nsXMLNS {
		return &Error{CondNotWellFormed, "reserved namespace used as default"}
	}
	s.undo = append(s.undo, nsUndo{old: s.def, had: true})
	s.def = uri
	return nil
}

func (s *nsScope) declare(prefix, uri string) error {
	switch {
	case prefix == "xml":
		// Allowed only as a redundant restatement (Namespaces in XML §3).
		if uri != NSXML {
			return &Error{CondNotWellFormed, "xml prefix bound to wrong namespace"}
		}
		return nil
	case prefix == "xmlns":
		return &Error{CondNotWellFormed, "xmlns prefix must not be declared"}
	case !validLocalStart(prefix):
		return &Error{CondNotWellFormed, "prefix is not an NCName"}
	case uri == NSXML || uri == nsXMLNS:
		return &Error{CondNotWellFormed, "reserved namespace bound to a prefix"}
	case uri == "":
		// Namespaces in XML 1.0 has no prefix undeclaring.
		return &Error{CondNotWellFormed, "empty namespace for prefix"}
	}
	if s.m == nil {
		s.m = make(map[string]string)
	}
	old, had := s.m[prefix]
	s.undo = append(s.undo, nsUndo{prefix: prefix, old: old, had: had})
	s.m[prefix] = uri
	return nil
}

// resolve returns the namespace URI of a raw name. Unprefixed attributes
// are in no namespace; unprefixed elements are in the default namespace.
func (s *nsScope) resolve(n stdxml.Name, element bool) (string, error) {
	for i := 0; i < len(n.Local); i++ {
		if n.Local[i] == ':' {
			// encoding/xml leaves ":a" and "a:" unsplit.
			return "", &Error{CondNotWellFormed, "malformed qualified name"}
		}
	}
	if n.Space != "" && !validLocalStart(n.Local) {
		return "", &Error{CondNotWellFormed, "local part of qualified name is not an NCName"}
	}
	switch n.Space {
	case "":
		if element {
			return s.def, nil
		}
		return "", nil
	case "xml":
		return NSXML, nil
	case "xmlns":
		return "", &Error{CondNotWellFormed, "element in xmlns namespace"}
	}
	if uri, ok := s.m[n.Space]; ok {
		return uri, nil
	}
	return "", &Error{CondNotWellFormed, "undeclared namespace prefix"}
}
