package xml

import (
	"io"
	"unicode/utf8"
)

// The tokenizer is Parley's own replacement for encoding/xml's RawToken on
// the read path. It accepts exactly the language encoding/xml's strict
// tokenizer accepts and decodes it the same way (FuzzDifferential runs both
// on every input: same verdict, same condition, same trees), but it
//
//   - scans the read buffer in runs instead of calling ReadByte per byte,
//   - decodes text, attribute values and names straight into one per-stanza
//     arena instead of building a token per step, and
//   - never materialises what restricted XML refuses anyway (comments,
//     directives, processing instructions are scanned, not stored; only the
//     body of an <?xml?> declaration is kept, to check it).
//
// Where encoding/xml checks something only after reading a whole name or
// text run (name characters, UTF-8 validity, the Char production), so does
// the tokenizer, so that an oversized token gets policy-violation in both,
// at the same byte.

type tokKind uint8

const (
	tokText  tokKind = iota + 1 // decoded into arena[textOff:]
	tokStart                    // tag in p.tagName, p.raw; p.selfClose
	tokEnd                      // name in p.names at p.tagName
	tokComment
	tokPI // p.piXML says whether the target was exactly "xml"
	tokDirective
)

// span is a range of a scratch byte slice.
type span struct{ off, end int32 }

// rawName is a qualified name as written, split the way encoding/xml
// splits it: "p:l" is prefix p, local l; a name without exactly one inner
// colon is all local.
type rawName struct {
	all, prefix, local span
}

// rawAttr is one attribute of the current start tag.
type rawAttr struct {
	name  rawName // in p.names
	value span    // in p.arena
}

func (d *Decoder) errSyntax(text string) error {
	return &Error{Condition: CondNotWellFormed, Text: text}
}

// must is peek where the token cannot end: end of input is a syntax error.
func (d *Decoder) must() (byte, error) {
	c, err := d.in.peek()
	if err == io.EOF {
		return 0, d.errSyntax("unexpected EOF")
	}
	return c, err
}

// next consumes one byte that must be there.
func (d *Decoder) next() (byte, error) {
	c, err := d.must()
	if err == nil {
		d.in.r++
	}
	return c, err
}

// space skips XML whitespace. Errors are left for the next must, which
// returns them again.
func (d *Decoder) space() {
	for {
		c, err := d.in.peek()
		if err != nil {
			return
		}
		switch c {
		case ' ', '\r', '\n', '\t':
			d.in.r++
		default:
			return
		}
	}
}

// token reads one raw token. io.EOF means the input ended between tokens.
func (d *Decoder) token() (tokKind, error) {
	p := d.p
	c, err := d.in.peek()
	if err != nil {
		return 0, err
	}
	if c != '<' {
		p.textOff = len(p.arena)
		return tokText, d.text(-1, false)
	}
	d.in.r++
	if c, err = d.next(); err != nil {
		return 0, err
	}
	switch c {
	case '/':
		p.names = p.names[:0]
		n, ok, err := d.nsName()
		if err != nil {
			return 0, err
		}
		if !ok {
			return 0, d.errSyntax("expected element name after </")
		}
		p.tagName = n
		d.space()
		if c, err = d.next(); err != nil {
			return 0, err
		}
		if c != '>' {
			return 0, d.errSyntax("invalid characters in end tag")
		}
		return tokEnd, nil
	case '?':
		return tokPI, d.procInst()
	case '!':
		if c, err = d.next(); err != nil {
			return 0, err
		}
		switch c {
		case '-':
			return tokComment, d.comment()
		case '[':
			for i := range len("CDATA[") {
				if c, err = d.next(); err != nil {
					return 0, err
				}
				if c != "CDATA["[i] {
					return 0, d.errSyntax("invalid <![ sequence")
				}
			}
			p.textOff = len(p.arena)
			return tokText, d.text(-1, true)
		}
		return tokDirective, d.directive()
	}
	d.in.r-- // the name's first byte
	return tokStart, d.startTag()
}

// startTag reads the rest of a start tag: name, attributes, '>' or '/>'.
func (d *Decoder) startTag() error {
	p := d.p
	p.names = p.names[:0]
	p.raw = p.raw[:0]
	p.selfClose = false
	n, ok, err := d.nsName()
	if err != nil {
		return err
	}
	if !ok {
		return d.errSyntax("expected element name after <")
	}
	p.tagName = n
	for {
		d.space()
		c, err := d.must()
		if err != nil {
			return err
		}
		switch c {
		case '/':
			d.in.r++
			if c, err = d.next(); err != nil {
				return err
			}
			if c != '>' {
				return d.errSyntax("expected /> in element")
			}
			p.selfClose = true
			return nil
		case '>':
			d.in.r++
			return nil
		}
		if d.fastAttr() {
			continue
		}
		an, ok, err := d.nsName()
		if err != nil {
			return err
		}
		if !ok {
			return d.errSyntax("expected attribute name in element")
		}
		d.space()
		if c, err = d.next(); err != nil {
			return err
		}
		if c != '=' {
			return d.errSyntax("attribute name without = in element")
		}
		d.space()
		if c, err = d.next(); err != nil {
			return err
		}
		if c != '\'' && c != '"' {
			return d.errSyntax("unquoted or missing attribute value in element")
		}
		off := len(p.arena)
		if err := d.text(int(c), false); err != nil {
			return err
		}
		p.raw = append(p.raw, rawAttr{name: an, value: span{int32(off), int32(len(p.arena))}})
	}
}

// nsName reads a name into p.names and splits it. ok is false (with a nil
// error) when no name starts here or the name has more than one colon.
func (d *Decoder) nsName() (rawName, bool, error) {
	p := d.p
	off := len(p.names)
	ok, err := d.name()
	if err != nil || !ok {
		return rawName{}, false, err
	}
	n, ok := splitName(p.names, off)
	return n, ok, nil
}

// splitName splits the name names[off:] at its colon. ok is false when it
// has more than one.
func splitName(names []byte, off int) (rawName, bool) {
	all := span{int32(off), int32(len(names))}
	n := rawName{all: all, local: all}
	colon := -1
	for i, c := range names[off:] {
		if c == ':' {
			if colon >= 0 {
				return rawName{}, false
			}
			colon = i
		}
	}
	if colon > 0 && off+colon < len(names)-1 {
		n.prefix = span{all.off, all.off + int32(colon)}
		n.local = span{all.off + int32(colon) + 1, all.end}
	}
	return n, true
}

// fastAttr reads the common attribute, name='value' with an ASCII name, no
// spaces around '=' and a value of plain ASCII, when all of it is in the
// buffer within the budget. It consumes nothing and returns false for
// anything else, which the general path then reads (and judges) from the
// same byte; what it accepts, the general path would read the same way.
func (d *Decoder) fastAttr() bool {
	in, p := &d.in, d.p
	b := in.buf[in.r:in.end]
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf && inName[b[i]] {
		i++
	}
	if i == 0 || i+1 >= len(b) || b[i] != '=' {
		return false
	}
	q := b[i+1]
	var cls uint8
	switch q {
	case '\'':
		cls = clsApos | clsCheck
	case '"':
		cls = clsQuot | clsCheck
	default:
		return false
	}
	j := i + 2
	for j < len(b) && textClass[b[j]]&cls == 0 {
		j++
	}
	if j == len(b) || b[j] != q || !validName(b[:i]) {
		return false
	}
	off := len(p.names)
	p.names = append(p.names, b[:i]...)
	n, ok := splitName(p.names, off)
	if !ok {
		p.names = p.names[:off]
		return false
	}
	voff := len(p.arena)
	p.arena = append(p.arena, b[i+2:j]...)
	p.raw = append(p.raw, rawAttr{name: n, value: span{int32(voff), int32(len(p.arena))}})
	in.r += j + 1
	return true
}

// name reads a name (XML Name, colons allowed) and appends it to p.names.
// Like encoding/xml it reads every byte that is an ASCII name character or
// not ASCII, and then checks the whole name.
func (d *Decoder) name() (bool, error) {
	p := d.p
	c, err := d.must()
	if err != nil {
		return false, err
	}
	if c < utf8.RuneSelf && !isNameByte(c) {
		return false, nil
	}
	off := len(p.names)
	in := &d.in
	for {
		i := in.r
		for i < in.end && inName[in.buf[i]] {
			i++
		}
		p.names = append(p.names, in.buf[in.r:i]...)
		in.r = i
		if i < in.end {
			break
		}
		if _, err := d.must(); err != nil {
			return false, err
		}
		if !inName[in.buf[in.r]] {
			break
		}
	}
	if !validName(p.names[off:]) {
		return false, d.errSyntax("invalid XML name")
	}
	return true, nil
}

// inName reports which bytes a name is read over: ASCII name characters
// and every non-ASCII byte (validName judges those).
var inName = func() (t [256]bool) {
	for c := range 256 {
		t[c] = c >= utf8.RuneSelf || isNameByte(byte(c))
	}
	return t
}()

// Byte classes for text scanning: which bytes end a plain run.
const (
	clsText  = 1 << iota // character data: < & ] > \r \n
	clsQuot              // value in "…": < & " \r \n
	clsApos              // value in '…': < & ' \r \n
	clsCDATA             // CDATA section: ] > \r \n
	// clsCheck: bytes that make the token need validText (non-ASCII,
	// controls other than \t \n \r). Scanning stops at them only until
	// the first one is seen; a token of plain ASCII is never re-read.
	clsCheck
)

var textClass = func() (t [256]uint8) {
	for _, c := range "<&]>\r\n" {
		t[c] |= clsText
	}
	for _, c := range "<&\"\r\n" {
		t[c] |= clsQuot
	}
	for _, c := range "<&'\r\n" {
		t[c] |= clsApos
	}
	for _, c := range "]>\r\n" {
		t[c] |= clsCDATA
	}
	for c := range 256 {
		if c >= utf8.RuneSelf || c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
			t[c] |= clsCheck
		}
	}
	return t
}()

// text reads character data, an attribute value (quote is ' or ") or a
// CDATA section, decoding entity and character references and line ends
// (\r\n and \r become \n) into p.arena. It follows encoding/xml's text()
// byte for byte: "]]>" is an error outside CDATA and values, '<' ends
// character data and is an error in a value, and only the five predefined
// entities and character references up to U+10FFFF are known (a
// reference to a surrogate becomes U+FFFD, as in encoding/xml). The
// decoded text is then checked against XML's Char production.
func (d *Decoder) text(quote int, cdata bool) error {
	p := d.p
	in := &d.in
	start := len(p.arena)
	var cls uint8
	switch {
	case cdata:
		cls = clsCDATA
	case quote == '"':
		cls = clsQuot
	case quote == '\'':
		cls = clsApos
	default:
		cls = clsText
	}
	// b0, b1: the last two raw bytes, 0 standing for any byte that cannot
	// start "]]>" or "\r\n".
	var b0, b1 byte
	mask := cls | clsCheck
	check := start // validText from here; len(arena) when not needed yet
	for {
		i := in.r
		for i < in.end && textClass[in.buf[i]]&mask == 0 {
			i++
		}
		if n := i - in.r; n > 0 {
			p.arena = append(p.arena, in.buf[in.r:i]...)
			in.r = i
			if n == 1 {
				b0, b1 = b1, 0
			} else {
				b0, b1 = 0, 0
			}
		}
		c, err := in.peek()
		if err != nil {
			if err != io.EOF {
				return err
			}
			if cdata || quote >= 0 {
				if cdata {
					return d.errSyntax("unexpected EOF in CDATA section")
				}
				return d.errSyntax("unexpected EOF")
			}
			break // character data ends with the input
		}
		if textClass[c]&cls == 0 {
			if mask&clsCheck != 0 && textClass[c]&clsCheck != 0 {
				// The first byte validText must judge: from here on
				// scan past such bytes and check the rest at the end.
				mask = cls
				check = len(p.arena)
			}
			continue
		}
		if quote < 0 && b0 == ']' && b1 == ']' && c == '>' {
			in.r++
			if cdata {
				p.arena = p.arena[:len(p.arena)-2]
				break
			}
			return d.errSyntax("unescaped ]]> not in CDATA section")
		}
		if c == '<' && !cdata {
			if quote >= 0 {
				return d.errSyntax("unescaped < inside quoted string")
			}
			break // not consumed: it starts the next token
		}
		in.r++
		if quote >= 0 && int(c) == quote {
			break
		}
		if c == '&' && !cdata {
			if mask&clsCheck != 0 {
				// A reference can make any character: judge from here.
				mask = cls
				check = len(p.arena)
			}
			if err := d.reference(); err != nil {
				return err
			}
			b0, b1 = 0, 0
			continue
		}
		switch {
		case c == '\r':
			p.arena = append(p.arena, '\n')
		case b1 == '\r' && c == '\n':
			// \r\n: the \n is already written
		default:
			p.arena = append(p.arena, c)
		}
		b0, b1 = b1, c
	}
	if mask&clsCheck != 0 {
		check = len(p.arena) // plain ASCII only: nothing to judge
	}
	if !validText(p.arena[check:]) {
		return d.errSyntax("invalid character in text")
	}
	return nil
}

// reference decodes an entity or character reference after its '&'. Like
// encoding/xml it reads the whole name or number and its ';' before
// judging it.
func (d *Decoder) reference() error {
	p := d.p
	c, err := d.must()
	if err != nil {
		return err
	}
	if c == '#' {
		d.in.r++
		if c, err = d.next(); err != nil {
			return err
		}
		base := rune(10)
		if c == 'x' {
			base = 16
			if c, err = d.next(); err != nil {
				return err
			}
		}
		var v rune
		digits := 0
		for {
			var dv rune
			switch {
			case '0' <= c && c <= '9':
				dv = rune(c - '0')
			case base == 16 && 'a' <= c && c <= 'f':
				dv = rune(c-'a') + 10
			case base == 16 && 'A' <= c && c <= 'F':
				dv = rune(c-'A') + 10
			default:
				dv = -1
			}
			if dv < 0 {
				break
			}
			digits++
			if v <= utf8.MaxRune {
				v = v*base + dv
			}
			if c, err = d.next(); err != nil {
				return err
			}
		}
		if c != ';' || digits == 0 || v > utf8.MaxRune {
			return d.errSyntax("invalid character reference")
		}
		p.arena = utf8.AppendRune(p.arena, v)
		return nil
	}
	if c < utf8.RuneSelf && !isNameByte(c) {
		return d.errSyntax("invalid entity reference")
	}
	var nm [4]byte
	n := 0
	for {
		c, err := d.must()
		if err != nil {
			return err
		}
		if c < utf8.RuneSelf && !isNameByte(c) {
			break
		}
		if n < len(nm) {
			nm[n] = c
		}
		n++
		d.in.r++
	}
	if c, err = d.next(); err != nil {
		return err
	}
	if c != ';' || n > len(nm) {
		return d.errSyntax("invalid entity reference")
	}
	switch string(nm[:n]) {
	case "lt":
		p.arena = append(p.arena, '<')
	case "gt":
		p.arena = append(p.arena, '>')
	case "amp":
		p.arena = append(p.arena, '&')
	case "apos":
		p.arena = append(p.arena, '\'')
	case "quot":
		p.arena = append(p.arena, '"')
	default:
		return d.errSyntax("undeclared entity reference")
	}
	return nil
}

// validText reports whether b is UTF-8 made of XML Chars (XML 1.0 §2.2).
func validText(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 && c != '\t' && c != '\n' && c != '\r' {
				return false
			}
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 || !isChar(r) {
			return false
		}
		i += n
	}
	return true
}

func isChar(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		r >= 0x20 && r <= 0xD7FF || r >= 0xE000 && r <= 0xFFFD || r >= 0x10000 && r <= 0x10FFFF
}

// comment scans a comment after "<!-". Its text is not kept.
func (d *Decoder) comment() error {
	c, err := d.next()
	if err != nil {
		return err
	}
	if c != '-' {
		return d.errSyntax("invalid sequence <!- not part of <!--")
	}
	var b0, b1 byte
	for {
		if c, err = d.next(); err != nil {
			return err
		}
		if b0 == '-' && b1 == '-' {
			if c != '>' {
				return d.errSyntax(`invalid sequence "--" not allowed in comments`)
			}
			return nil
		}
		b0, b1 = b1, c
	}
}

// directive scans a <!…> directive (DOCTYPE and friends) after "<!" and
// its first byte, the way encoding/xml delimits one: quoted '>' do not
// count, nested '<' do, and comments inside are skipped. Nothing is kept:
// the caller refuses it.
func (d *Decoder) directive() error {
	var inquote byte
	depth := 0
	for {
		c, err := d.next()
		if err != nil {
			return err
		}
		if inquote == 0 && c == '>' && depth == 0 {
			return nil
		}
	handle:
		switch {
		case c == inquote:
			inquote = 0
		case inquote != 0:
		case c == '\'' || c == '"':
			inquote = c
		case c == '>':
			depth--
		case c == '<':
			for i := range len("!--") {
				if c, err = d.next(); err != nil {
					return err
				}
				if c != "!--"[i] {
					depth++
					goto handle
				}
			}
			var b0, b1 byte
			for {
				if c, err = d.next(); err != nil {
					return err
				}
				if b0 == '-' && b1 == '-' && c == '>' {
					break
				}
				b0, b1 = b1, c
			}
		}
	}
}

// procInst reads a processing instruction after "<?". For the target
// "xml" (the XML declaration) it checks version and encoding as
// encoding/xml does: a version other than 1.0 is not well-formed, an
// encoding other than UTF-8 is unsupported-encoding.
func (d *Decoder) procInst() error {
	p := d.p
	p.names = p.names[:0]
	ok, err := d.name()
	if err != nil {
		return err
	}
	if !ok {
		return d.errSyntax("expected target name after <?")
	}
	p.piXML = string(p.names) == "xml"
	d.space()
	p.pi = p.pi[:0]
	var b0 byte
	for {
		c, err := d.next()
		if err != nil {
			return err
		}
		if b0 == '?' && c == '>' {
			break
		}
		if p.piXML {
			p.pi = append(p.pi, c)
		}
		b0 = c
	}
	if !p.piXML {
		return nil
	}
	body := p.pi[:max(len(p.pi)-1, 0)] // without the '?'
	if v := declParam(body, "version"); v != "" && v != "1.0" {
		return d.errSyntax("unsupported XML version")
	}
	if e := declParam(body, "encoding"); e != "" && !equalFoldASCII(e, "utf-8") {
		return &Error{Condition: CondUnsupportedEncoding, Text: "only UTF-8 is supported"}
	}
	return nil
}

// declParam finds param='value' (or "value") in the body of an XML
// declaration with encoding/xml's loose rules: the first occurrence of
// param immediately followed by '=' and a quote; no spaces around '='.
func declParam(body []byte, param string) string {
	for i := 0; i < len(body); {
		k := indexParam(body[i:], param)
		if k < 0 {
			return ""
		}
		q := i + k + len(param) + 1 // the byte after '='
		if q >= len(body) {
			return ""
		}
		i = q + 1
		if c := body[q]; c == '\'' || c == '"' {
			for j := i; j < len(body); j++ {
				if body[j] == c {
					return string(body[i:j])
				}
			}
			return ""
		}
	}
	return ""
}

// indexParam returns the index of param followed by '=' in b, or -1.
func indexParam(b []byte, param string) int {
	for k := 0; k+len(param) < len(b); k++ {
		if string(b[k:k+len(param)]) == param && b[k+len(param)] == '=' {
			return k
		}
	}
	return -1
}

// equalFoldASCII reports whether s equals the lower-case ASCII t ignoring
// case. encoding/xml uses strings.EqualFold against "utf-8"; no non-ASCII
// character folds to u, t, f, '-' or 8, so ASCII folding gives the same
// answer.
func equalFoldASCII(s, t string) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range len(s) {
		a, b := s[i], t[i]
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}
