package xml

// This file keeps the decoder Parley used before it had its own tokenizer:
// the same restricted-XML rules and limits on top of encoding/xml's
// RawToken. It is the reference FuzzDifferential compares the tokenizer
// against, input for input: same verdict, same condition, same trees.

import (
	stdxml "encoding/xml"
	"errors"
	"io"
	"strconv"
)

// refMaxEmptyReads mirrors maxEmptyReads for the reference reader.
const refMaxEmptyReads = 100

// refDecoder reads an XMPP stream: ReadHeader once, then Next until it returns
// an error. Any error is final: every later call returns it again.
//
// Errors are *Error (send the stream error Condition and close),
// ErrStreamClosed (peer sent </stream:stream>), io.EOF (the transport
// ended outside of any element: a plain disconnect), or the transport's own
// read error, returned unchanged so that timeouts can be recognised.
//
// Transport switches: a refDecoder never reads past the end of the element
// Next returns unless the bytes were already delivered by the same
// transport Read. After <starttls/> (or stream compression) the caller
// discards this refDecoder and makes a NEW one on the new transport. Bytes this
// refDecoder had already read but not parsed are deliberately dropped: they
// arrived in plaintext before the handshake and must never be interpreted as
// if they had been protected (the STARTTLS command injection attack,
// CVE-2011-0411 and friends). Buffered reports how many there were, so the
// stream layer can log the attempt or refuse the negotiation.
//
// A refDecoder is not safe for concurrent use.
type refDecoder struct {
	lim Limits
	lr  refLimitReader
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

	ns    refNSScope
	stack []refFrame
	text  []byte // character data pending for the innermost open element
}

type refFrame struct {
	el     *Element
	name   stdxml.Name // raw name, for end-tag matching
	nsMark int
}

// newRefDecoder returns a refDecoder reading from r. r is read in chunks of up to
// 4 KiB; nothing else is read ahead.
func newRefDecoder(r io.Reader, lim Limits) *refDecoder {
	d := &refDecoder{lim: lim.withDefaults()}
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
func (d *refDecoder) resetXML() {
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
func (d *refDecoder) SetContentNamespace(ns string) { d.contentNS = ns }

// Buffered reports how many bytes the refDecoder has read from the transport
// but not yet consumed. Right after Next returned <starttls/> it is the
// number of bytes the peer pipelined in plaintext behind the command.
func (d *refDecoder) Buffered() int {
	return d.lr.buffered() + int(d.lr.handed-d.xBase-d.x.InputOffset())
}

func (d *refDecoder) setErr(err error) error {
	d.err = err
	return err
}

// ReadHeader reads the optional XML declaration and the opening stream
// element, and returns as soon as the stream element's '>' is read.
func (d *refDecoder) ReadHeader() (StreamHeader, error) {
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

func (d *refDecoder) openStream(t stdxml.StartElement) (StreamHeader, error) {
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
func (d *refDecoder) Next() (*Element, error) {
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
func (d *refDecoder) endOfElement() {
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
func (d *refDecoder) readElement(stream bool) (*Element, error) {
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
			d.stack = append(d.stack, refFrame{el: el, name: t.Name, nsMark: mark})

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
			d.stack[n-1] = refFrame{}
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

func (d *refDecoder) flushText() {
	if len(d.text) == 0 {
		return
	}
	p := d.stack[len(d.stack)-1].el
	p.Children = append(p.Children, CharData(d.text))
	d.text = d.text[:0]
}

// startElement validates a start tag, pushes its namespace declarations and
// returns the resolved element (without children).
func (d *refDecoder) startElement(t stdxml.StartElement) (*Element, error) {
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
func (d *refDecoder) mapErr(err error) error {
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

// refParseElement parses exactly one element from b (surrounding whitespace is
// allowed) under the same limits and restrictions as a stream. Elements in
// contentNS, and elements in no namespace, get Space "".
func refParseElement(b []byte, lim Limits, contentNS string) (*Element, error) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxStanzaBytes+lim.MaxHeaderBytes {
		return nil, &Error{CondPolicyViolation, "stanza exceeds " + strconv.Itoa(lim.MaxStanzaBytes) + " bytes"}
	}
	d := newRefDecoder(&refSliceReader{b: b}, lim)
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

// refSliceReader is a minimal io.Reader over a byte slice. It deliberately
// does not implement io.ByteReader (unlike bytes.Reader), so that it is
// always driven through refLimitReader.
type refSliceReader struct{ b []byte }

func (s *refSliceReader) Read(p []byte) (int, error) {
	if len(s.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.b)
	s.b = s.b[n:]
	return n, nil
}

// refLimitReader sits between the transport and encoding/xml.
//
// It implements io.ByteReader, so encoding/xml uses it directly instead of
// wrapping it in its own bufio.Reader. That gives us two properties the
// stream layer depends on:
//
//   - Accounting is exact. Every byte encoding/xml consumes goes through
//     ReadByte, so the size limits fire on the byte that crosses them, before
//     encoding/xml has buffered a giant name, attribute value or text run.
//   - Read-ahead is ours. We only call the transport when encoding/xml needs
//     another byte and our buffer is empty, so refDecoder.Next never blocks on
//     bytes past the end of the element it returns (STARTTLS), and we know
//     exactly how many unconsumed bytes we hold (refDecoder.Buffered).
//
// Between top-level elements ("between" mode) the reader also swallows XML
// whitespace itself, so keepalives never reach encoding/xml and never pile
// up in its text buffer, and it rejects any other character data at stream
// level immediately. The '<' that starts the next element switches it to the
// stanza budget.
type refLimitReader struct {
	src  io.Reader
	buf  []byte
	r, w int // buf[r:w] is read from src but not yet handed out

	handed int64 // bytes handed to encoding/xml so far
	limit  int64 // handed may not exceed this

	// What the current budget is for, for the policy-violation text.
	budgetName string
	budgetSize int

	between   bool   // discard whitespace, start the stanza budget at '<'
	maxStanza int    // stanza budget started at '<' in between mode
	strayCond string // condition for character data at stream level

	ioErr error  // sticky error from src, returned once buf is drained
	fail  *Error // sticky limit or content error; ends the stream

	// lead holds the entity's first bytes, for sniffEncoding.
	lead [3]byte
}

func (lr *refLimitReader) init(src io.Reader) {
	lr.src = src
	lr.buf = make([]byte, readBufSize)
}

// setBudget starts a fresh budget of n bytes from the current position.
func (lr *refLimitReader) setBudget(name string, n int) {
	lr.budgetName, lr.budgetSize = name, n
	lr.limit = lr.handed + int64(n)
}

// enterBetween is called at a top-level element boundary.
func (lr *refLimitReader) enterBetween() {
	lr.between = true
}

// buffered is the number of bytes read from src but not yet handed out.
func (lr *refLimitReader) buffered() int { return lr.w - lr.r }

func (lr *refLimitReader) fill() error {
	if lr.ioErr != nil {
		return lr.ioErr
	}
	lr.r, lr.w = 0, 0
	for range refMaxEmptyReads {
		n, err := lr.src.Read(lr.buf)
		if n < 0 || n > len(lr.buf) {
			lr.ioErr = errors.New("xml: transport returned invalid count from Read")
			return lr.ioErr
		}
		lr.w = n
		if err != nil {
			// Hand out what we got; report err when it is drained.
			lr.ioErr = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
	lr.ioErr = io.ErrNoProgress
	return lr.ioErr
}

// ReadByte is encoding/xml's only way to get input. It is on the hot path:
// one bounds check, one mode check and one budget check per byte.
func (lr *refLimitReader) ReadByte() (byte, error) {
	if lr.fail != nil {
		return 0, lr.fail
	}
	for {
		if lr.r == lr.w {
			if err := lr.fill(); err != nil {
				return 0, err
			}
		}
		c := lr.buf[lr.r]
		lr.r++
		if lr.between {
			switch c {
			case ' ', '\t', '\r', '\n':
				// Whitespace keepalive (RFC 6120 §4.6.1): dropped here so
				// it costs no memory however long the stream lives.
				continue
			case '<':
				lr.between = false
				lr.setBudget("stanza", lr.maxStanza)
			default:
				lr.fail = &Error{Condition: lr.strayCond, Text: "character data at stream level"}
				return 0, lr.fail
			}
		}
		if lr.handed >= lr.limit {
			lr.fail = &Error{
				Condition: CondPolicyViolation,
				Text:      lr.budgetName + " exceeds " + strconv.Itoa(lr.budgetSize) + " bytes",
			}
			return 0, lr.fail
		}
		if lr.handed < int64(len(lr.lead)) {
			if f := lr.sniffEncoding(c); f != nil {
				lr.fail = f
				return 0, f
			}
		}
		lr.handed++
		return c, nil
	}
}

// sniffEncoding looks at the first bytes of the stream, c being the next
// one, the way XML 1.0 Appendix F detects an encoding without a
// declaration. A UTF-16 or UTF-32 byte-order mark, the NUL bytes of
// UTF-16/32 text, or EBCDIC's "<?" mean the peer is not speaking UTF-8, and
// RFC 6120 §11.6 asks for <unsupported-encoding/>, not the
// not-well-formed encoding/xml would report for the same bytes.
func (lr *refLimitReader) sniffEncoding(c byte) *Error {
	i := lr.handed
	lr.lead[i] = c
	bad := false
	switch i {
	case 0:
		bad = c == 0x00 || c == 0xFE || c == 0xFF // UTF-16/32 BE text, BOMs
	case 1:
		bad = lr.lead[0] == '<' && c == 0x00 // UTF-16/32 LE text
	case 2:
		bad = lr.lead == [3]byte{0x4C, 0x6F, 0xA7} // EBCDIC "<?x"
	}
	if bad {
		return &Error{Condition: CondUnsupportedEncoding, Text: "only UTF-8 is supported"}
	}
	return nil
}

// Read exists only because encoding/xml type-asserts its reader to
// io.Reader before calling CharsetReader. Our CharsetReader always refuses,
// so this is never used for bulk input; it is correct all the same.
func (lr *refLimitReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c, err := lr.ReadByte()
	if err != nil {
		return 0, err
	}
	p[0] = c
	return 1, nil
}

// refNSScope tracks in-scope namespace bindings. The default namespace is a
// plain field, so the common case (unprefixed names) costs nothing; prefixed
// bindings live in a map with an undo log, so lookups stay O(1) however many
// declarations a hostile peer stacks up.
type refNSScope struct {
	def  string
	m    map[string]string
	undo []refNSUndo
}

type refNSUndo struct {
	prefix string // "" for the default namespace
	old    string
	had    bool
}

func (s *refNSScope) mark() int { return len(s.undo) }

func (s *refNSScope) restore(mark int) {
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

func (s *refNSScope) declareDefault(uri string) error {
	if uri == NSXML || uri == nsXMLNS {
		return &Error{CondNotWellFormed, "reserved namespace used as default"}
	}
	s.undo = append(s.undo, refNSUndo{old: s.def, had: true})
	s.def = uri
	return nil
}

func (s *refNSScope) declare(prefix, uri string) error {
	switch {
	case prefix == "xml":
		// Allowed only as a redundant restatement (Namespaces in XML §3).
		if uri != NSXML {
			return &Error{CondNotWellFormed, "xml prefix bound to wrong namespace"}
		}
		return nil
	case prefix == "xmlns":
		return &Error{CondNotWellFormed, "xmlns prefix must not be declared"}
	case !validLocalStart([]byte(prefix)):
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
	s.undo = append(s.undo, refNSUndo{prefix: prefix, old: old, had: had})
	s.m[prefix] = uri
	return nil
}

// resolve returns the namespace URI of a raw name. Unprefixed attributes
// are in no namespace; unprefixed elements are in the default namespace.
func (s *refNSScope) resolve(n stdxml.Name, element bool) (string, error) {
	for i := 0; i < len(n.Local); i++ {
		if n.Local[i] == ':' {
			// encoding/xml leaves ":a" and "a:" unsplit.
			return "", &Error{CondNotWellFormed, "malformed qualified name"}
		}
	}
	if n.Space != "" && !validLocalStart([]byte(n.Local)) {
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
