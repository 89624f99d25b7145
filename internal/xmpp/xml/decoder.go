package xml

import (
	"errors"
	"io"
	"strconv"
	"sync"
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
// an error. Any error is final, every later call returns it again, with one
// exception: a read timeout (an error with a Timeout method that reports
// true) while Next waits between top-level elements, before any byte of the
// next one, leaves the stream as it was, and Next may be called again. The
// stream layer uses that to stop waiting on an idle connection (c2s parks
// idle readers).
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
// Memory: between stanzas a Decoder holds a 512-byte read buffer and its
// namespace scope; the 4 KiB read buffer and the parse scratch (arena,
// token lists) are taken from pools for the length of one stanza.
//
// A Decoder is not safe for concurrent use.
type Decoder struct {
	lim Limits
	in  input

	contentNS  string
	streamName []byte // raw (prefixed) name of the stream element
	opened     bool   // ReadHeader succeeded
	selfClosed bool   // the stream header was <stream:stream/>
	between    bool   // at a top-level element boundary
	strayCond  string // condition for character data at stream level
	err        error  // sticky terminal error

	ns nsScope
	p  *parseState // while parsing; nil between stanzas
}

// parseState is the scratch one element is parsed in. It is pooled: after
// the tree is built nothing in it is referenced any more.
type parseState struct {
	// arena holds every decoded string of the element (text, attribute
	// values, names not in the intern table); the tree's strings are
	// slices of one string copy of it.
	arena []byte
	names []byte    // raw names of the current tag or end tag
	raw   []rawAttr // attributes of the current start tag
	pi    []byte    // body of an <?xml?> declaration

	tagName   rawName
	selfClose bool
	textOff   int  // start of the last text token in arena
	piXML     bool // the last processing instruction was <?xml?>

	events []event
	attrs  []tattr
	strs   []string // strings events refer to by index; strs[0] is ""
	stack  []frame
	opened []byte // raw names of the open elements, for end-tag matching
	// pending character data of the innermost open element: adjacent text
	// and CDATA tokens are contiguous in arena and merge into one CharData
	textOff0, textEnd int

	build []*Element
	fill  []int32
}

var parseStates = sync.Pool{New: func() any { return new(parseState) }}

// Limits on what a parseState keeps when it goes back to the pool, so that
// one huge stanza does not pin its scratch forever.
const (
	maxKeptArena  = 16 << 10
	maxKeptEvents = 256
)

func (p *parseState) reset() {
	p.arena = p.arena[:0]
	p.events = p.events[:0]
	p.attrs = p.attrs[:0]
	clear(p.strs)
	p.strs = append(p.strs[:0], "")
	p.stack = p.stack[:0]
	p.opened = p.opened[:0]
	p.textOff0, p.textEnd = 0, 0
}

// sref is a string of the element being parsed: arena[sp.off:sp.end]
// when that is not empty, else p.strs[str] (interned names, namespace
// URIs; index 0 is ""). Events and attributes hold no pointers, so
// recording them costs no write barriers while the collector runs.
type sref struct {
	str int32
	sp  span
}

type evKind uint8

const (
	evStart evKind = iota + 1
	evEnd
	evText
)

type event struct {
	kind   evKind
	nchild int32 // evStart: children (elements and text) it will have
	a0, a1 int32 // evStart: its attributes in p.attrs
	space  int32 // in p.strs
	local  sref  // evStart: local name; evText: the text
}

type tattr struct {
	space int32 // in p.strs
	local sref
	value span
}

type frame struct {
	ev     int32 // index of the start event
	name   span  // in p.opened
	nsMark int
}

// NewDecoder returns a Decoder reading from r. r is read in chunks of up to
// 4 KiB; nothing else is read ahead.
func NewDecoder(r io.Reader, lim Limits) *Decoder {
	d := &Decoder{lim: lim.withDefaults(), strayCond: CondBadFormat}
	d.in.src = r
	d.in.setBudget("stream header", d.lim.MaxHeaderBytes)
	return d
}

// SetContentNamespace makes elements in namespace ns be stored with Space ""
// (see Element). Call it after ReadHeader with the validated DefaultNS.
func (d *Decoder) SetContentNamespace(ns string) { d.contentNS = ns }

// Buffered reports how many bytes the Decoder has read from the transport
// but not yet consumed. Right after Next returned <starttls/> it is the
// number of bytes the peer pipelined in plaintext behind the command.
func (d *Decoder) Buffered() int { return d.in.buffered() }

func (d *Decoder) setErr(err error) error {
	d.err = err
	d.release()
	return err
}

func (d *Decoder) acquire() {
	if d.p == nil {
		d.p = parseStates.Get().(*parseState)
		d.p.reset()
	}
}

// release returns the parse scratch to its pool.
func (d *Decoder) release() {
	p := d.p
	if p == nil {
		return
	}
	d.p = nil
	clear(p.build)
	p.build = p.build[:0]
	clear(p.strs)
	if cap(p.arena) > maxKeptArena || cap(p.events) > maxKeptEvents {
		return // let the collector have it
	}
	parseStates.Put(p)
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
	d.acquire()
	for first := true; ; first = false {
		kind, err := d.token()
		if err != nil {
			if err != io.EOF {
				return StreamHeader{}, d.setErr(err)
			}
			// Nothing but whitespace or a declaration: a plain disconnect.
			return StreamHeader{}, d.setErr(io.EOF)
		}
		switch kind {
		case tokPI:
			// procInst has already refused any version but 1.0 and any
			// encoding but UTF-8.
			if !first || !d.p.piXML {
				return StreamHeader{}, d.setErr(&Error{CondRestrictedXML, "processing instruction"})
			}
		case tokText:
			p := d.p
			text := p.arena[p.textOff:]
			p.arena = p.arena[:p.textOff]
			if !isSpace(text) {
				return StreamHeader{}, d.setErr(&Error{CondNotWellFormed, "text before stream header"})
			}
		case tokComment:
			return StreamHeader{}, d.setErr(&Error{CondRestrictedXML, "comment"})
		case tokDirective:
			return StreamHeader{}, d.setErr(&Error{CondRestrictedXML, "DTD or other directive"})
		case tokEnd:
			return StreamHeader{}, d.setErr(&Error{CondNotWellFormed, "end tag before stream header"})
		case tokStart:
			h, err := d.openStream()
			if err != nil {
				return StreamHeader{}, d.setErr(err)
			}
			d.release()
			return h, nil
		}
	}
}

func (d *Decoder) openStream() (StreamHeader, error) {
	p := d.p
	if err := d.startElement(); err != nil {
		return StreamHeader{}, err
	}
	ev := &p.events[len(p.events)-1]
	if p.strs[ev.space] != NSStream || d.str(ev.local) != "stream" {
		return StreamHeader{}, &Error{CondInvalidNamespace, "stream element must be <stream xmlns='" + NSStream + "'>"}
	}
	h := StreamHeader{Space: NSStream, Local: "stream", DefaultNS: d.ns.def}
	if ev.a1 > ev.a0 {
		h.Attrs = make([]Attr, 0, ev.a1-ev.a0)
		for _, a := range p.attrs[ev.a0:ev.a1] {
			h.Attrs = append(h.Attrs, Attr{Space: p.strs[a.space], Local: d.str(a.local), Value: string(p.arena[a.value.off:a.value.end])})
		}
	}
	prefix := p.names[p.tagName.prefix.off:p.tagName.prefix.end]
	for _, a := range p.raw {
		if string(d.nameBytes(a.name.prefix)) == "xmlns" && string(d.nameBytes(a.name.local)) != string(prefix) {
			h.Prefixes = append(h.Prefixes, NSDecl{
				Prefix: string(d.nameBytes(a.name.local)),
				URI:    string(p.arena[a.value.off:a.value.end]),
			})
		}
	}
	for _, a := range h.Attrs {
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
	d.ns.forgetUndo()
	d.streamName = append([]byte(nil), d.nameBytes(p.tagName.all)...)
	d.selfClosed = p.selfClose
	d.opened = true
	d.between = true
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
	if d.selfClosed {
		return nil, d.setErr(ErrStreamClosed)
	}
	// Wait for the next stanza here, in small frames, not in readElement:
	// an idle connection's goroutine then blocks with a shallow stack,
	// which the garbage collector can shrink to half its size (it shrinks
	// only stacks less than a quarter used).
	if err := d.awaitElement(); err != nil {
		if d.between && d.in.buffered() == 0 && IsTimeout(err) {
			d.in.ioErr = nil // not final: see the type's comment
			return nil, err
		}
		return nil, d.setErr(err)
	}
	return d.nextElement()
}

// Waiting reports whether the decoder is reading between top-level
// elements with nothing of the next one read: a transport whose Read is
// called while Waiting is true may end the wait with a timeout error
// without losing anything (see the type's comment).
func (d *Decoder) Waiting() bool { return d.in.idle }

// IsTimeout reports whether err is a read timeout (net.Error's Timeout,
// os.ErrDeadlineExceeded, or any error with a Timeout method that says
// so), without importing net: the errors the decoder does not treat as
// final between stanzas.
func IsTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// nextElement reads the element awaitElement found the start of.
//
//go:noinline
func (d *Decoder) nextElement() (*Element, error) {
	el, err := d.readElement(true)
	if err != nil {
		return nil, d.setErr(err)
	}
	d.between = true
	d.release()
	return el, nil
}

// awaitElement skips whitespace between top-level elements, reading into
// the small idle buffer, and starts the stanza budget at the next '<'.
func (d *Decoder) awaitElement() error {
	if !d.between {
		return nil
	}
	d.in.idle = true
	c, err := d.in.skipBetween()
	d.in.idle = false
	if err != nil {
		return err
	}
	if c != '<' {
		return &Error{d.strayCond, "character data at stream level"}
	}
	d.between = false
	d.in.setBudget("stanza", d.lim.MaxStanzaBytes)
	return nil
}

// readElement reads one complete top-level element. In stream mode an end
// tag for the stream element yields ErrStreamClosed.
func (d *Decoder) readElement(stream bool) (*Element, error) {
	d.acquire()
	p := d.p
	for {
		kind, err := d.token()
		if err != nil {
			if err == io.EOF {
				if len(p.stack) == 0 {
					return nil, io.EOF
				}
				return nil, &Error{CondNotWellFormed, "unexpected EOF inside element"}
			}
			return nil, err
		}
		switch kind {
		case tokStart:
			if len(p.stack) >= d.lim.MaxDepth {
				return nil, &Error{CondPolicyViolation, "element nesting deeper than " + strconv.Itoa(d.lim.MaxDepth)}
			}
			d.flushText()
			mark := d.ns.mark()
			if err := d.startElement(); err != nil {
				return nil, err
			}
			ev := int32(len(p.events) - 1)
			if n := len(p.stack); n > 0 {
				p.events[p.stack[n-1].ev].nchild++
			}
			off := int32(len(p.opened))
			p.opened = append(p.opened, d.nameBytes(p.tagName.all)...)
			p.stack = append(p.stack, frame{ev: ev, name: span{off, int32(len(p.opened))}, nsMark: mark})
			if p.selfClose {
				if el := d.endElement(); el != nil {
					return el, nil
				}
			}

		case tokEnd:
			n := len(p.stack)
			name := d.nameBytes(p.tagName.all)
			if n == 0 {
				if stream && string(name) == string(d.streamName) {
					return nil, ErrStreamClosed
				}
				return nil, &Error{CondNotWellFormed, "unexpected end tag"}
			}
			top := p.stack[n-1]
			if string(name) != string(p.opened[top.name.off:top.name.end]) {
				return nil, &Error{CondNotWellFormed, "mismatched end tag"}
			}
			if el := d.endElement(); el != nil {
				return el, nil
			}

		case tokText:
			if len(p.stack) == 0 {
				// Only whitespace CDATA sections and what follows them
				// can get here: the stream level is otherwise read by
				// skipBetween.
				text := p.arena[p.textOff:]
				p.arena = p.arena[:p.textOff]
				if isSpace(text) {
					continue
				}
				return nil, &Error{d.strayCond, "character data at stream level"}
			}
			if p.textEnd == p.textOff0 {
				p.textOff0 = p.textOff
			}
			p.textEnd = len(p.arena)

		case tokComment:
			return nil, &Error{CondRestrictedXML, "comment"}
		case tokPI:
			return nil, &Error{CondRestrictedXML, "processing instruction"}
		case tokDirective:
			return nil, &Error{CondRestrictedXML, "DTD or other directive"}
		}
	}
}

// endElement closes the innermost open element; when that was the
// top-level one it returns the finished tree.
func (d *Decoder) endElement() *Element {
	p := d.p
	d.flushText()
	n := len(p.stack)
	top := p.stack[n-1]
	d.ns.restore(top.nsMark)
	p.stack = p.stack[:n-1]
	p.opened = p.opened[:top.name.off]
	p.events = append(p.events, event{kind: evEnd})
	if n == 1 {
		return d.build()
	}
	return nil
}

func (d *Decoder) flushText() {
	p := d.p
	if p.textEnd == p.textOff0 {
		return
	}
	p.events = append(p.events, event{kind: evText, local: sref{sp: span{int32(p.textOff0), int32(p.textEnd)}}})
	p.events[p.stack[len(p.stack)-1].ev].nchild++
	p.textOff0, p.textEnd = 0, 0
}

func (d *Decoder) nameBytes(s span) []byte { return d.p.names[s.off:s.end] }

// str returns an sref's string while parsing (not on the hot path: the
// tree builder slices one copy of the arena instead).
func (d *Decoder) str(r sref) string {
	if r.sp.end > r.sp.off {
		return string(d.p.arena[r.sp.off:r.sp.end])
	}
	return d.p.strs[r.str]
}

// localRef returns a name as an sref: the interned string, or its copy
// appended to the arena.
func (d *Decoder) localRef(b []byte) sref {
	if s, ok := internName(b); ok {
		return sref{str: d.strIndex(s)}
	}
	p := d.p
	off := int32(len(p.arena))
	p.arena = append(p.arena, b...)
	return sref{sp: span{off, int32(len(p.arena))}}
}

// strIndex returns the index of s in p.strs, adding it unless it is ""
// or the last one added (siblings usually share a namespace).
func (d *Decoder) strIndex(s string) int32 {
	p := d.p
	if s == "" {
		return 0
	}
	if n := len(p.strs); p.strs[n-1] == s {
		return int32(n - 1)
	}
	p.strs = append(p.strs, s)
	return int32(len(p.strs) - 1)
}

// uri returns a declared namespace URI as a string, sharing the interned
// copy of well-known ones.
func uri(b []byte) string {
	if s, ok := internedURIs[string(b)]; ok {
		return s
	}
	return string(b)
}

// startElement validates the start tag just read, pushes its namespace
// declarations and appends its start event and resolved attributes.
func (d *Decoder) startElement() error {
	p := d.p
	if len(p.raw) > d.lim.MaxAttrs {
		return &Error{CondPolicyViolation, "more than " + strconv.Itoa(d.lim.MaxAttrs) + " attributes"}
	}
	// Declarations first: they apply to the element's own name and to
	// attributes written before them.
	nattr := 0
	for i, a := range p.raw {
		all := d.nameBytes(a.name.all)
		for j := range i {
			if string(d.nameBytes(p.raw[j].name.all)) == string(all) {
				return &Error{CondNotWellFormed, "duplicate attribute"}
			}
		}
		prefix, local := d.nameBytes(a.name.prefix), d.nameBytes(a.name.local)
		value := p.arena[a.value.off:a.value.end]
		switch {
		case len(prefix) == 0 && string(local) == "xmlns":
			if err := d.ns.declareDefault(uri(value)); err != nil {
				return err
			}
		case string(prefix) == "xmlns":
			if err := d.ns.declare(local, value); err != nil {
				return err
			}
		default:
			nattr++
		}
	}
	space, err := d.ns.resolve(d.nameBytes(p.tagName.prefix), d.nameBytes(p.tagName.local), true)
	if err != nil {
		return err
	}
	if space == d.contentNS {
		space = ""
	}
	ev := event{kind: evStart, space: d.strIndex(space), local: d.localRef(d.nameBytes(p.tagName.local))}
	ev.a0 = int32(len(p.attrs))
	for _, a := range p.raw {
		prefix, local := d.nameBytes(a.name.prefix), d.nameBytes(a.name.local)
		if string(prefix) == "xmlns" || len(prefix) == 0 && string(local) == "xmlns" {
			continue
		}
		as, err := d.ns.resolve(prefix, local, false)
		if err != nil {
			return err
		}
		// Two prefixes bound to the same URI make a duplicate too
		// (Namespaces in XML 1.0 §6.3).
		if as != "" {
			for _, b := range p.attrs[ev.a0:] {
				if p.strs[b.space] == as && d.refEqual(b.local, local) {
					return &Error{CondNotWellFormed, "duplicate attribute"}
				}
			}
		}
		p.attrs = append(p.attrs, tattr{space: d.strIndex(as), local: d.localRef(local), value: a.value})
	}
	ev.a1 = int32(len(p.attrs))
	p.events = append(p.events, ev)
	return nil
}

func (d *Decoder) refEqual(r sref, b []byte) bool {
	if r.sp.end > r.sp.off {
		return string(d.p.arena[r.sp.off:r.sp.end]) == string(b)
	}
	return d.p.strs[r.str] == string(b)
}

// build turns the events of one top-level element into its tree with a
// handful of allocations: one string for all decoded text, the slabs of
// elements, attributes and child nodes (one allocation for the three in a
// small stanza), and one per text node (a CharData in a Node interface).
func (d *Decoder) build() *Element {
	p := d.p
	str := string(p.arena)
	get := func(r sref) string {
		if r.sp.end > r.sp.off {
			return str[r.sp.off:r.sp.end]
		}
		return p.strs[r.str]
	}
	nel, nnode := 0, 0
	for i := range p.events {
		if p.events[i].kind == evStart {
			nel++
			nnode += int(p.events[i].nchild)
		}
	}
	// The top-level element's attributes come first; one spare slot after
	// them (when the tree's storage has room) lets the stream layer stamp
	// "from" in place (SetAttr) instead of copying the element.
	top := int(p.events[0].a1)
	elems, attrs, nodes, spare := slabs(nel, len(p.attrs), nnode)
	if len(p.attrs) > 0 {
		for i, a := range p.attrs {
			j := i
			if i >= top {
				j += spare
			}
			attrs[j] = Attr{Space: p.strs[a.space], Local: get(a.local), Value: str[a.value.off:a.value.end]}
		}
	}
	stack, fill := p.build[:0], p.fill[:0]
	ei, ni := 0, 0
	for i := range p.events {
		ev := &p.events[i]
		switch ev.kind {
		case evStart:
			el := &elems[ei]
			ei++
			el.Space, el.Local = p.strs[ev.space], get(ev.local)
			if ev.a1 > ev.a0 {
				a0, a1 := int(ev.a0), int(ev.a1)
				if ei == 1 { // the top-level element: the spare slot follows
					el.Attrs = attrs[a0 : a1 : a1+spare]
				} else { // after the spare slot
					el.Attrs = attrs[a0+spare : a1+spare : a1+spare]
				}
			}
			if n := int(ev.nchild); n > 0 {
				el.Children = nodes[ni : ni+n : ni+n]
				ni += n
			}
			if k := len(stack); k > 0 {
				stack[k-1].Children[fill[k-1]] = el
				fill[k-1]++
			}
			stack = append(stack, el)
			fill = append(fill, 0)
		case evEnd:
			stack = stack[:len(stack)-1]
			fill = fill[:len(fill)-1]
		case evText:
			k := len(stack) - 1
			stack[k].Children[fill[k]] = CharData(get(ev.local))
			fill[k]++
		}
	}
	p.build, p.fill = stack, fill
	return &elems[0]
}

// slabs returns the element, attribute and child-node storage of one
// tree: for the usual small stanza one allocation holding all three, else
// one each. spare is 1 when attrs has a slot more than nattr (placed after
// the top-level element's attributes by build), 0 when the small slab is
// exactly full.
func slabs(nel, nattr, nnode int) (elems []Element, attrs []Attr, nodes []Node, spare int) {
	switch {
	case nel <= 3 && nattr < 4 && nnode <= 3:
		s := new(slab3)
		return s.e[:nel], s.a[:nattr+1], s.n[:nnode], 1
	case nel <= 4 && nattr <= 4 && nnode <= 4:
		s := new(slab4)
		if nattr < len(s.a) {
			spare = 1
		}
		return s.e[:nel], s.a[:nattr+spare], s.n[:nnode], spare
	}
	if nattr > 0 {
		attrs = make([]Attr, nattr+1)
		spare = 1
	}
	if nnode > 0 {
		nodes = make([]Node, nnode)
	}
	return make([]Element, nel), attrs, nodes, spare
}

// slab3 holds a stanza of up to three elements and child nodes and three
// attributes plus the spare one (a chat message with a body and a chat
// state) in one allocation of 504 bytes: the 512-byte size class, the
// largest whose objects need no malloc header.
type slab3 struct {
	e [3]Element
	a [4]Attr
	n [3]Node
}

// slab4 holds a stanza of up to four elements, attributes and child nodes
// in one allocation of 608 bytes instead of three.
type slab4 struct {
	e [4]Element
	a [4]Attr
	n [4]Node
}

// ParseElement parses exactly one element from b (surrounding whitespace is
// allowed) under the same limits and restrictions as a stream. Elements in
// contentNS, and elements in no namespace, get Space "".
func ParseElement(b []byte, lim Limits, contentNS string) (*Element, error) {
	lim = lim.withDefaults()
	if len(b) > lim.MaxStanzaBytes+lim.MaxHeaderBytes {
		return nil, &Error{CondPolicyViolation, "stanza exceeds " + strconv.Itoa(lim.MaxStanzaBytes) + " bytes"}
	}
	d := &Decoder{lim: lim, strayCond: CondNotWellFormed, contentNS: contentNS, between: true}
	// Read b in place: no transport, no copy.
	d.in.buf, d.in.w = b, len(b)
	d.in.setBudget("stream header", lim.MaxHeaderBytes)
	defer d.release()
	if err := d.awaitElement(); err != nil {
		if err == io.EOF {
			return nil, &Error{CondNotWellFormed, "no element"}
		}
		return nil, err
	}
	el, err := d.readElement(false)
	if err != nil {
		if err == io.EOF {
			return nil, &Error{CondNotWellFormed, "no element"}
		}
		return nil, err
	}
	d.release()
	c, err := d.in.skipBetween()
	if err == io.EOF {
		return el, nil
	}
	if err != nil {
		return nil, err
	}
	if c != '<' {
		return nil, &Error{CondNotWellFormed, "character data at stream level"}
	}
	d.in.setBudget("stanza", lim.MaxStanzaBytes)
	d.acquire()
	switch kind, err := d.token(); {
	case err == io.EOF:
		return nil, &Error{CondNotWellFormed, "unexpected EOF"}
	case err != nil:
		return nil, err
	case kind == tokComment || kind == tokPI || kind == tokDirective:
		return nil, &Error{CondRestrictedXML, "markup after element"}
	}
	return nil, &Error{CondNotWellFormed, "data after element"}
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
// plain field, so the common case (unprefixed names) costs nothing. Prefixed
// bindings live in a short slice while there are few (a stream header binds
// one or two, and every connection keeps its header's), and in a map once
// there are more, so lookups stay O(1) however many declarations a hostile
// peer stacks up. An undo log restores the outer bindings at end tags.
type nsScope struct {
	def  string
	few  []nsBinding
	m    map[string]string
	undo []nsUndo
}

// maxFewPrefixes is how many prefixed bindings nsScope scans linearly.
const maxFewPrefixes = 8

type nsBinding struct{ prefix, uri string }

type nsUndo struct {
	prefix string // "" for the default namespace
	old    string
	had    bool
}

func (s *nsScope) lookup(prefix []byte) (string, bool) {
	if s.m != nil {
		uri, ok := s.m[string(prefix)]
		return uri, ok
	}
	for i := range s.few {
		if s.few[i].prefix == string(prefix) {
			return s.few[i].uri, true
		}
	}
	return "", false
}

func (s *nsScope) set(prefix, uri string) {
	if s.m != nil {
		s.m[prefix] = uri
		return
	}
	for i := range s.few {
		if s.few[i].prefix == prefix {
			s.few[i].uri = uri
			return
		}
	}
	if len(s.few) < maxFewPrefixes {
		s.few = append(s.few, nsBinding{prefix, uri})
		return
	}
	s.m = make(map[string]string, 2*maxFewPrefixes)
	for _, b := range s.few {
		s.m[b.prefix] = b.uri
	}
	s.m[prefix] = uri
	s.few = nil
}

func (s *nsScope) unset(prefix string) {
	if s.m != nil {
		delete(s.m, prefix)
		return
	}
	for i := range s.few {
		if s.few[i].prefix == prefix {
			s.few = append(s.few[:i], s.few[i+1:]...)
			return
		}
	}
}

// forgetUndo drops the undo log: the bindings made so far stay for the
// life of the stream (the stream header's).
func (s *nsScope) forgetUndo() { s.undo = nil }

func (s *nsScope) mark() int { return len(s.undo) }

func (s *nsScope) restore(mark int) {
	for i := len(s.undo) - 1; i >= mark; i-- {
		u := s.undo[i]
		switch {
		case u.prefix == "":
			s.def = u.old
		case u.had:
			s.set(u.prefix, u.old)
		default:
			s.unset(u.prefix)
		}
	}
	s.undo = s.undo[:mark]
	if len(s.undo) == 0 && cap(s.undo) > 64 {
		s.undo = nil
	}
}

func (s *nsScope) declareDefault(uri string) error {
	if uri == NSXML || uri == nsXMLNS {
		return &Error{CondNotWellFormed, "reserved namespace used as default"}
	}
	s.undo = append(s.undo, nsUndo{old: s.def, had: true})
	s.def = uri
	return nil
}

func (s *nsScope) declare(prefix, value []byte) error {
	switch {
	case string(prefix) == "xml":
		// Allowed only as a redundant restatement (Namespaces in XML §3).
		if string(value) != NSXML {
			return &Error{CondNotWellFormed, "xml prefix bound to wrong namespace"}
		}
		return nil
	case string(prefix) == "xmlns":
		return &Error{CondNotWellFormed, "xmlns prefix must not be declared"}
	case !validLocalStart(prefix):
		return &Error{CondNotWellFormed, "prefix is not an NCName"}
	case string(value) == NSXML || string(value) == nsXMLNS:
		return &Error{CondNotWellFormed, "reserved namespace bound to a prefix"}
	case len(value) == 0:
		// Namespaces in XML 1.0 has no prefix undeclaring.
		return &Error{CondNotWellFormed, "empty namespace for prefix"}
	}
	old, had := s.lookup(prefix)
	p, ok := internName(prefix)
	if !ok {
		p = string(prefix)
	}
	s.undo = append(s.undo, nsUndo{prefix: p, old: old, had: had})
	s.set(p, uri(value))
	return nil
}

// resolve returns the namespace URI of a raw name. Unprefixed attributes
// are in no namespace; unprefixed elements are in the default namespace.
func (s *nsScope) resolve(prefix, local []byte, element bool) (string, error) {
	for _, c := range local {
		if c == ':' {
			// "a:" and ":a" are not split into prefix and local.
			return "", &Error{CondNotWellFormed, "malformed qualified name"}
		}
	}
	if len(prefix) != 0 && !validLocalStart(local) {
		return "", &Error{CondNotWellFormed, "local part of qualified name is not an NCName"}
	}
	switch string(prefix) {
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
	if uri, ok := s.lookup(prefix); ok {
		return uri, nil
	}
	return "", &Error{CondNotWellFormed, "undeclared namespace prefix"}
}
