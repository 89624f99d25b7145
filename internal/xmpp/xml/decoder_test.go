package xml

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

const testHeader = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " +
	"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>"

// readAll reads the header and then elements until an error; it returns the
// elements and the final error.
func readAll(t testing.TB, r io.Reader, lim Limits) ([]*Element, error) {
	t.Helper()
	d := NewDecoder(r, lim)
	if _, err := d.ReadHeader(); err != nil {
		return nil, err
	}
	d.SetContentNamespace("jabber:client")
	var els []*Element
	for {
		el, err := d.Next()
		if err != nil {
			return els, err
		}
		els = append(els, el)
		if len(els) > 1e6 {
			t.Fatal("runaway")
		}
	}
}

func condition(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Condition
	}
	if err == nil {
		return "<nil>"
	}
	return "other: " + err.Error()
}

const billionLaughs = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>&lol9;`

func TestAttacks(t *testing.T) {
	deep := strings.Repeat("<a>", 10000) + strings.Repeat("</a>", 10000)
	var manyAttrs strings.Builder
	manyAttrs.WriteString("<message")
	for i := range 100000 {
		manyAttrs.WriteString(" a" + strconv.Itoa(i) + "=''")
	}
	manyAttrs.WriteString("/>")
	var someAttrs strings.Builder
	someAttrs.WriteString("<message")
	for i := range 65 {
		someAttrs.WriteString(" a" + strconv.Itoa(i) + "=''")
	}
	someAttrs.WriteString("/>")

	tests := []struct {
		name  string
		input string // full stream, header included
		cond  string
	}{
		// DTDs and entities (RFC 6120 §11.1).
		{"billion laughs", billionLaughs, CondRestrictedXML},
		{"external entity", `<?xml version='1.0'?><!DOCTYPE s [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` + testHeader[21:] + `<message><body>&xxe;</body></message>`, CondRestrictedXML},
		{"doctype between stanzas", testHeader + `<!DOCTYPE x>`, CondRestrictedXML},
		{"doctype in stanza", testHeader + `<message><!DOCTYPE x></message>`, CondRestrictedXML},
		{"undeclared entity", testHeader + `<message><body>&xxe;</body></message>`, CondNotWellFormed},
		{"undeclared entity in attr", testHeader + `<message to='&xxe;'/>`, CondNotWellFormed},
		{"comment in stanza", testHeader + `<message><!-- hi --></message>`, CondRestrictedXML},
		{"comment before header", `<!-- hi -->` + testHeader, CondRestrictedXML},
		{"comment between stanzas", testHeader + `<presence/><!-- hi -->`, CondRestrictedXML},
		{"PI in stanza", testHeader + `<message><?php x?></message>`, CondRestrictedXML},
		{"PI before header", `<?php x?>` + testHeader[21:], CondRestrictedXML},
		{"PI between stanzas", testHeader + `<?foo bar?>`, CondRestrictedXML},
		{"second xml declaration", `<?xml version='1.0'?><?xml version='1.0'?>` + testHeader[21:], CondRestrictedXML},
		{"xml declaration in stream", testHeader + `<?xml version='1.0'?>`, CondRestrictedXML},
		{"latin1", `<?xml version='1.0' encoding='ISO-8859-1'?>` + testHeader[21:], CondUnsupportedEncoding},
		{"utf16", `<?xml version='1.0' encoding='UTF-16'?>` + testHeader[21:], CondUnsupportedEncoding},
		{"utf16be bom", "\xfe\xff\x00<\x00?\x00x\x00m\x00l", CondUnsupportedEncoding},
		{"utf16le bom", "\xff\xfe<\x00?\x00x\x00m\x00l\x00", CondUnsupportedEncoding},
		{"utf16be no bom", "\x00<\x00s\x00t", CondUnsupportedEncoding},
		{"utf16le no bom", "<\x00s\x00t\x00", CondUnsupportedEncoding},
		{"utf32le bom", "\xff\xfe\x00\x00<\x00\x00\x00", CondUnsupportedEncoding},
		{"ebcdic", "\x4c\x6f\xa7\x94\x93", CondUnsupportedEncoding},
		{"xml 1.1", `<?xml version='1.1'?>` + testHeader[21:], CondNotWellFormed},

		// Well-formedness.
		{"mismatched end tag", testHeader + `<message><body></message></body>`, CondNotWellFormed},
		{"stray end tag", testHeader + `</message>`, CondNotWellFormed},
		{"end tag before header", `</stream:stream>`, CondNotWellFormed},
		{"EOF mid stanza", testHeader + `<message><body>hi`, CondNotWellFormed},
		{"EOF mid tag", testHeader + `<message to='a`, CondNotWellFormed},
		{"EOF mid header", `<stream:stream xmlns:stream='http://ether`, CondNotWellFormed},
		{"bad utf8 text", testHeader + "<message><body>\xff\xfe</body></message>", CondNotWellFormed},
		{"bad utf8 attr", testHeader + "<message to='\xc3'/>", CondNotWellFormed},
		{"bad utf8 name", testHeader + "<m\xffx/>", CondNotWellFormed},
		{"overlong utf8", testHeader + "<message><body>\xc0\xaf</body></message>", CondNotWellFormed},
		{"surrogate utf8", testHeader + "<message><body>\xed\xa0\x80</body></message>", CondNotWellFormed},
		{"control char", testHeader + "<message><body>\x01</body></message>", CondNotWellFormed},
		{"NUL char ref", testHeader + "<message><body>&#0;</body></message>", CondNotWellFormed},
		{"FFFE char ref", testHeader + "<message><body>&#xFFFE;</body></message>", CondNotWellFormed},
		{"control in attr", testHeader + "<message to='\x1b'/>", CondNotWellFormed},
		{"unquoted attr", testHeader + "<message to=a/>", CondNotWellFormed},
		{"duplicate attribute", testHeader + `<message to='a' to='b'/>`, CondNotWellFormed},
		{"duplicate via prefixes", testHeader + `<message xmlns:p='u' xmlns:q='u' p:a='1' q:a='2'/>`, CondNotWellFormed},
		{"duplicate xmlns", testHeader + `<message xmlns='a' xmlns='b'/>`, CondNotWellFormed},
		{"undeclared element prefix", testHeader + `<foo:message/>`, CondNotWellFormed},
		{"undeclared attr prefix", testHeader + `<message foo:a='1'/>`, CondNotWellFormed},
		{"prefix out of scope", testHeader + `<message><a xmlns:p='u'/><p:b/></message>`, CondNotWellFormed},
		{"empty prefix binding", testHeader + `<message xmlns:p=''/>`, CondNotWellFormed},
		{"rebind xml", testHeader + `<message xmlns:xml='urn:x'/>`, CondNotWellFormed},
		{"bind xmlns", testHeader + `<message xmlns:xmlns='urn:x'/>`, CondNotWellFormed},
		{"bind xml namespace", testHeader + `<message xmlns:p='` + NSXML + `'/>`, CondNotWellFormed},
		{"xmlns element", testHeader + `<xmlns:a/>`, CondNotWellFormed},
		{"two colons", testHeader + `<a:b:c xmlns:a='u'/>`, CondNotWellFormed},
		{"leading colon", testHeader + `<:b/>`, CondNotWellFormed},
		{"local part starts with digit", testHeader + `<a:0 xmlns:a='u'/>`, CondNotWellFormed},
		{"attr local starts with dot", testHeader + `<message xmlns:a='u' a:.x='1'/>`, CondNotWellFormed},
		{"local part starts with combining char", testHeader + "<a:\u0300x xmlns:a='u'/>", CondNotWellFormed},
		{"prefix not NCName", testHeader + `<message xmlns:0='u'/>`, CondNotWellFormed},
		{"trailing colon", testHeader + `<message a:='1'/>`, CondNotWellFormed},
		{"cdata end in text", testHeader + `<message>]]></message>`, CondNotWellFormed},
		{"text before header", `hello` + testHeader, CondNotWellFormed},
		{"stream with undeclared prefix", `<stream:stream xmlns='jabber:client'>`, CondNotWellFormed},

		// Stream-level.
		{"wrong stream namespace", `<stream:stream xmlns:stream='urn:wrong'>`, CondInvalidNamespace},
		{"wrong stream name", `<stream:flux xmlns:stream='http://etherx.jabber.org/streams'>`, CondInvalidNamespace},
		{"html", `<html><body>`, CondInvalidNamespace},
		{"text between stanzas", testHeader + `<presence/>hello<presence/>`, CondBadFormat},
		{"text after header", testHeader + `x`, CondBadFormat},
		{"wrong close", testHeader + `</stream:flux>`, CondNotWellFormed},

		// Limits.
		{"deep nesting 10k", testHeader + "<message>" + deep + "</message>", CondPolicyViolation},
		{"10 MB attribute", testHeader + "<message to='" + strings.Repeat("a", 10<<20) + "'/>", CondPolicyViolation},
		{"10 MB text", testHeader + "<message><body>" + strings.Repeat("a", 10<<20) + "</body></message>", CondPolicyViolation},
		{"10 MB name", testHeader + "<" + strings.Repeat("a", 10<<20) + "/>", CondPolicyViolation},
		{"100k attributes", testHeader + manyAttrs.String(), CondPolicyViolation},
		{"65 attributes", testHeader + someAttrs.String(), CondPolicyViolation},
		{"huge header", `<stream:stream xmlns:stream='http://etherx.jabber.org/streams' to='` + strings.Repeat("a", 10000) + `'>`, CondPolicyViolation},
		{"huge whitespace before header", strings.Repeat(" ", 10000) + testHeader, CondPolicyViolation},
		{"huge DOCTYPE", `<!DOCTYPE x [` + strings.Repeat("<!ENTITY a 'b'>", 10000) + `]>`, CondPolicyViolation},
		{"huge comment", testHeader + `<!--` + strings.Repeat("a", 1<<20) + `-->`, CondPolicyViolation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(t, strings.NewReader(tc.input), Limits{})
			if got := condition(err); got != tc.cond {
				t.Fatalf("got %v (%s), want %s", err, got, tc.cond)
			}
			// And the same, fed one byte per Read.
			_, err = readAll(t, iotest.OneByteReader(strings.NewReader(tc.input)), Limits{})
			if got := condition(err); got != tc.cond {
				t.Fatalf("one byte reads: got %v (%s), want %s", err, got, tc.cond)
			}
		})
	}
}

func TestErrorsAreSticky(t *testing.T) {
	d := NewDecoder(strings.NewReader(testHeader+`<a><!-- x --></a><presence/>`), Limits{})
	if _, err := d.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	_, err1 := d.Next()
	_, err2 := d.Next()
	if condition(err1) != CondRestrictedXML || err1 != err2 {
		t.Fatalf("got %v then %v", err1, err2)
	}
	if _, err := d.ReadHeader(); err != err1 {
		t.Fatalf("ReadHeader after error: %v", err)
	}
}

func TestMisuse(t *testing.T) {
	d := NewDecoder(strings.NewReader(testHeader), Limits{})
	if _, err := d.Next(); err == nil {
		t.Fatal("Next before ReadHeader succeeded")
	}
	if _, err := d.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.ReadHeader(); err == nil {
		t.Fatal("second ReadHeader succeeded")
	}
}

func TestHeader(t *testing.T) {
	in := `<?xml version="1.0" encoding="UTF-8"?>
<stream:stream from='juliet@im.example.com' to='im.example.com' version='1.0'
  id='abc' xml:lang='en' xmlns='jabber:server' xmlns:db='jabber:server:dialback'
  xmlns:stream='http://etherx.jabber.org/streams' extra='x'>`
	d := NewDecoder(strings.NewReader(in), Limits{})
	h, err := d.ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	if h.Space != NSStream || h.Local != "stream" || h.DefaultNS != "jabber:server" ||
		h.To != "im.example.com" || h.From != "juliet@im.example.com" || h.ID != "abc" ||
		h.Version != "1.0" || h.Lang != "en" {
		t.Fatalf("header %+v", h)
	}
	if len(h.Prefixes) != 1 || h.Prefixes[0] != (NSDecl{"db", "jabber:server:dialback"}) {
		t.Fatalf("prefixes %+v", h.Prefixes)
	}
	want := []Attr{
		{Local: "from", Value: "juliet@im.example.com"}, {Local: "to", Value: "im.example.com"},
		{Local: "version", Value: "1.0"}, {Local: "id", Value: "abc"},
		{Space: NSXML, Local: "lang", Value: "en"}, {Local: "extra", Value: "x"},
	}
	if len(h.Attrs) != len(want) {
		t.Fatalf("attrs %+v", h.Attrs)
	}
	for i := range want {
		if h.Attrs[i] != want[i] {
			t.Fatalf("attr %d: %+v, want %+v", i, h.Attrs[i], want[i])
		}
	}
	// Stanza prefixes declared on the stream stay in scope.
	d.SetContentNamespace("jabber:server")
	in2 := `<db:result from='a' to='b'>key</db:result>`
	d = NewDecoder(strings.NewReader(in+in2), Limits{})
	if _, err := d.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	d.SetContentNamespace("jabber:server")
	el, err := d.Next()
	if err != nil {
		t.Fatal(err)
	}
	if el.Space != "jabber:server:dialback" || el.Local != "result" || el.Text() != "key" {
		t.Fatalf("got %#v", el)
	}
}

func TestHeaderRoundTrip(t *testing.T) {
	h := StreamHeader{DefaultNS: "jabber:server", Prefixes: []NSDecl{{"db", "jabber:server:dialback"}},
		To: "a.example", From: "b.example", ID: "x'y", Version: "1.0", Lang: "en",
		Attrs: []Attr{{Local: "to", Value: "ignored"}, {Local: "extra", Value: "<&>"}}}
	b := StreamHeaderBytes(h)
	want := `<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' ` +
		`xmlns:db='jabber:server:dialback' to='a.example' from='b.example' id='x&apos;y' version='1.0' xml:lang='en' extra='&lt;&amp;>'>`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	got, err := NewDecoder(bytes.NewReader(b), Limits{}).ReadHeader()
	if err != nil {
		t.Fatal(err)
	}
	if got.To != h.To || got.From != h.From || got.ID != h.ID || got.Lang != h.Lang ||
		got.DefaultNS != h.DefaultNS || len(got.Prefixes) != 1 || got.Prefixes[0] != h.Prefixes[0] {
		t.Fatalf("got %+v", got)
	}
}

func TestEOF(t *testing.T) {
	for _, in := range []string{"", "  \n", `<?xml version='1.0'?>`, `<?xml version='1.0'?>` + "\n"} {
		_, err := NewDecoder(strings.NewReader(in), Limits{}).ReadHeader()
		if err != io.EOF {
			t.Errorf("%q: got %v, want io.EOF", in, err)
		}
	}
	// Between stanzas: a plain disconnect too.
	els, err := readAll(t, strings.NewReader(testHeader+"<presence/> \n"), Limits{})
	if err != io.EOF || len(els) != 1 {
		t.Fatalf("got %d, %v", len(els), err)
	}
}

type errReader struct {
	data []byte
	err  error
}

func (r *errReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, r.err
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestTransportErrorPassesThrough(t *testing.T) {
	boom := errors.New("i/o timeout")
	for _, tail := range []string{"", "<message><body>half", "<message to='x"} {
		_, err := readAll(t, &errReader{data: []byte(testHeader + tail), err: boom}, Limits{})
		if err != boom {
			t.Errorf("%q: got %v, want the transport error", tail, err)
		}
	}
	_, err := NewDecoder(&errReader{data: []byte(`<stream:str`), err: boom}, Limits{}).ReadHeader()
	if err != boom {
		t.Errorf("header: got %v", err)
	}
}

func TestStreamClose(t *testing.T) {
	els, err := readAll(t, strings.NewReader(testHeader+"<presence/></stream:stream><presence/>"), Limits{})
	if err != ErrStreamClosed || len(els) != 1 {
		t.Fatalf("got %d, %v", len(els), err)
	}
	// Any prefix works as long as it is bound correctly and matches.
	in := `<s:stream xmlns:s='http://etherx.jabber.org/streams'><x/></s:stream>`
	els, err = readAll(t, strings.NewReader(in), Limits{})
	if err != ErrStreamClosed || len(els) != 1 {
		t.Fatalf("got %d, %v", len(els), err)
	}
	// A self-closed stream header is an immediately closed stream.
	els, err = readAll(t, strings.NewReader(`<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>`), Limits{})
	if err != ErrStreamClosed || len(els) != 0 {
		t.Fatalf("got %d, %v", len(els), err)
	}
}

func TestPipelinedAndSplit(t *testing.T) {
	stanzas := []string{
		`<message to='romeo@example.net' type='chat' id='m1'><body>Art thou not Romeo?</body></message>`,
		`<presence/>`,
		`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`,
		`<message><body>a &amp; b &lt; c <![CDATA[<raw>]]> d</body></message>`,
	}
	in := testHeader + strings.Join(stanzas, " \n\t ") + "\n</stream:stream>"
	readers := map[string]func() io.Reader{
		"one read":    func() io.Reader { return strings.NewReader(in) },
		"1-byte":      func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
		"half":        func() io.Reader { return iotest.HalfReader(strings.NewReader(in)) },
		"data+err":    func() io.Reader { return iotest.DataErrReader(strings.NewReader(in)) },
		"zero writes": func() io.Reader { return &zeroReader{r: strings.NewReader(in)} },
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			els, err := readAll(t, mk(), Limits{})
			if err != ErrStreamClosed {
				t.Fatalf("err %v", err)
			}
			if len(els) != len(stanzas) {
				t.Fatalf("got %d elements", len(els))
			}
			for i, el := range els {
				want := stanzas[i]
				if i == 3 {
					want = `<message><body>a &amp; b &lt; c &lt;raw&gt; d</body></message>`
				}
				if el.String() != want {
					t.Errorf("%d: got %s want %s", i, el, want)
				}
			}
		})
	}
}

// zeroReader returns (0, nil) before every real read.
type zeroReader struct {
	r    io.Reader
	flip bool
}

func (z *zeroReader) Read(p []byte) (int, error) {
	z.flip = !z.flip
	if z.flip {
		return 0, nil
	}
	return z.r.Read(p[:1])
}

func TestNoProgressReader(t *testing.T) {
	_, err := NewDecoder(readerFunc(func([]byte) (int, error) { return 0, nil }), Limits{}).ReadHeader()
	if err != io.ErrNoProgress {
		t.Fatalf("got %v", err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestKeepalivesAreFree(t *testing.T) {
	// 10 MB of whitespace between stanzas: must be accepted (keepalives
	// over days of uptime add up) and must not be buffered.
	const ws = 10 << 20
	r := io.MultiReader(strings.NewReader(testHeader+"<presence/>"),
		&repeatReader{pat: []byte(" \n\t\r"), n: ws}, strings.NewReader("<presence/>"))
	d := NewDecoder(r, Limits{})
	if _, err := d.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64<<10 {
		t.Fatalf("allocated %d bytes while skipping whitespace", alloc)
	}
}

// repeatReader yields n bytes of pat repeated, then io.EOF; n < 0 is
// infinite. It counts what it produced.
type repeatReader struct {
	prefix []byte
	pat    []byte
	gen    func(i int) []byte // alternative to pat: i-th chunk
	i      int
	n      int64
	read   int64
	pend   []byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n >= 0 && r.read >= r.n {
		return 0, io.EOF
	}
	if r.n >= 0 && int64(len(p)) > r.n-r.read {
		p = p[:r.n-r.read]
	}
	k := 0
	for k < len(p) {
		if len(r.prefix) > 0 {
			c := copy(p[k:], r.prefix)
			r.prefix = r.prefix[c:]
			k += c
			continue
		}
		if len(r.pend) == 0 {
			if r.gen != nil {
				r.pend = r.gen(r.i)
				r.i++
			} else {
				r.pend = r.pat
			}
		}
		c := copy(p[k:], r.pend)
		r.pend = r.pend[c:]
		k += c
	}
	r.read += int64(k)
	return k, nil
}

func TestMemoryBounded(t *testing.T) {
	lim := Limits{MaxStanzaBytes: 64 << 10, MaxHeaderBytes: 4 << 10, MaxDepth: 16, MaxAttrs: 32}
	// Bytes a decoder may read past the limit: one transport read.
	const slack = readBufSize
	tests := []struct {
		name    string
		prefix  string
		pat     string
		gen     func(int) []byte
		maxRead int
		cond    string
	}{
		{name: "text", prefix: testHeader + "<message><body>", pat: "a", maxRead: len(testHeader) + lim.MaxStanzaBytes},
		{name: "attribute value", prefix: testHeader + "<message to='", pat: "ab", maxRead: len(testHeader) + lim.MaxStanzaBytes},
		{name: "element name", prefix: testHeader + "<m", pat: "x", maxRead: len(testHeader) + lim.MaxStanzaBytes},
		{name: "attribute name", prefix: testHeader + "<m a", pat: "x", maxRead: len(testHeader) + lim.MaxStanzaBytes},
		{name: "attributes", prefix: testHeader + "<message", gen: func(i int) []byte { return []byte(" a" + strconv.Itoa(i) + "=''") }, maxRead: len(testHeader) + lim.MaxStanzaBytes},
		{name: "siblings", prefix: testHeader + "<message>", pat: "<a/>", maxRead: len(testHeader) + lim.MaxStanzaBytes},
		{name: "nesting", prefix: testHeader, pat: "<a>", maxRead: len(testHeader) + 3*lim.MaxDepth},
		{name: "cdata", prefix: testHeader + "<message><![CDATA[", pat: "a", maxRead: len(testHeader) + lim.MaxStanzaBytes},
		{name: "comment", prefix: testHeader + "<message><!--", pat: "a", maxRead: len(testHeader) + lim.MaxStanzaBytes, cond: CondPolicyViolation},
		{name: "doctype", prefix: "<!DOCTYPE x [", pat: "<!ENTITY a 'b'>", maxRead: lim.MaxHeaderBytes},
		{name: "whitespace before header", pat: " ", maxRead: lim.MaxHeaderBytes},
		{name: "header attribute", prefix: "<stream:stream xmlns:stream='" + NSStream + "' to='", pat: "a", maxRead: lim.MaxHeaderBytes},
		{name: "xml declaration", prefix: "<?xml version='1.0", pat: "a", maxRead: lim.MaxHeaderBytes},
		{name: "char refs", prefix: testHeader + "<message><body>", pat: "&#x10FFFF;", maxRead: len(testHeader) + lim.MaxStanzaBytes},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &repeatReader{prefix: []byte(tc.prefix), pat: []byte(tc.pat), gen: tc.gen, n: -1}
			_, err := readAll(t, r, lim)
			want := tc.cond
			if want == "" {
				want = CondPolicyViolation
			}
			if got := condition(err); got != want {
				t.Fatalf("got %v, want %s", err, want)
			}
			if r.read > int64(tc.maxRead+slack) {
				t.Fatalf("read %d bytes, limit %d + slack %d", r.read, tc.maxRead, slack)
			}
		})
	}
}

func TestStanzaLimitIsExact(t *testing.T) {
	el := `<message><body>` + strings.Repeat("a", 100) + `</body></message>`
	lim := Limits{MaxStanzaBytes: len(el)}
	if _, err := readAll(t, strings.NewReader(testHeader+el+"  "+el+"</stream:stream>"), lim); err != ErrStreamClosed {
		t.Fatalf("stanza of exactly the limit: %v", err)
	}
	lim.MaxStanzaBytes--
	if _, err := readAll(t, strings.NewReader(testHeader+el), lim); condition(err) != CondPolicyViolation {
		t.Fatalf("stanza one over the limit: %v", err)
	}
	if _, err := ParseElement([]byte(el), lim, ""); condition(err) != CondPolicyViolation {
		t.Fatalf("ParseElement one over the limit: %v", err)
	}
}

func TestDepthLimitIsExact(t *testing.T) {
	nest := func(n int) string { return strings.Repeat("<a>", n) + strings.Repeat("</a>", n) }
	lim := Limits{MaxDepth: 5}
	if _, err := ParseElement([]byte(nest(5)), lim, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseElement([]byte(nest(6)), lim, ""); condition(err) != CondPolicyViolation {
		t.Fatalf("got %v", err)
	}
	lim = Limits{MaxAttrs: 2}
	if _, err := ParseElement([]byte(`<a x='1' xmlns='u'/>`), lim, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseElement([]byte(`<a x='1' y='2' xmlns='u'/>`), lim, ""); condition(err) != CondPolicyViolation {
		t.Fatalf("got %v", err)
	}
}

// stepReader hands out one chunk per Read and fails the test if read
// beyond the last chunk: it stands for a socket with nothing more to say.
type stepReader struct {
	t      *testing.T
	chunks []string
}

func (s *stepReader) Read(p []byte) (int, error) {
	if len(s.chunks) == 0 {
		s.t.Fatal("decoder read past the element it returned (would block)")
	}
	n := copy(p, s.chunks[0])
	s.chunks[0] = s.chunks[0][n:]
	if s.chunks[0] == "" {
		s.chunks = s.chunks[1:]
	}
	return n, nil
}

func TestNextDoesNotReadAhead(t *testing.T) {
	for _, st := range []string{
		`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
		`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'></starttls >`,
		`<compress xmlns='http://jabber.org/protocol/compress'><method>zlib</method></compress>`,
	} {
		r := &stepReader{t: t, chunks: []string{testHeader, "  " + st}}
		d := NewDecoder(r, Limits{})
		if _, err := d.ReadHeader(); err != nil {
			t.Fatal(err)
		}
		el, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		if el.String() != st && el.Local != "starttls" {
			t.Fatalf("got %s", el)
		}
		if n := d.Buffered(); n != 0 {
			t.Fatalf("Buffered = %d, want 0", n)
		}
	}
}

func TestBufferedReportsPipelinedPlaintext(t *testing.T) {
	evil := `<iq type='set' id='x'><query xmlns='jabber:iq:roster'/></iq>`
	r := &stepReader{t: t, chunks: []string{testHeader, `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` + evil}}
	d := NewDecoder(r, Limits{})
	if _, err := d.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	if n := d.Buffered(); n != 0 {
		t.Fatalf("after header Buffered = %d", n)
	}
	el, err := d.Next()
	if err != nil || el.Local != "starttls" {
		t.Fatal(el, err)
	}
	if n := d.Buffered(); n != len(evil) {
		t.Fatalf("Buffered = %d, want %d", n, len(evil))
	}
	// Mid-stream, including after the decoder recycled its encoding/xml
	// state following a large stanza.
	big := `<message><body>` + strings.Repeat("x", 20<<10) + `</body></message>`
	d = NewDecoder(strings.NewReader(testHeader+big+"<presence/> <presence/>"), Limits{})
	if _, err := d.ReadHeader(); err != nil {
		t.Fatal(err)
	}
	for _, want := range []int{len("<presence/> <presence/>"), len(" <presence/>"), 0} {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
		if n := d.Buffered(); n != want {
			t.Fatalf("Buffered = %d, want %d", n, want)
		}
	}
}

func TestNamespaces(t *testing.T) {
	in := testHeader +
		`<message to='a@b' xml:lang='de'>` +
		`<body>hi</body>` +
		`<x:event xmlns:x='urn:x'><x:item x:id='1' id='2'/><inner/></x:event>` +
		`<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>fw</body></message><z xmlns=''/></forwarded>` +
		`<stream:error/>` +
		`</message>`
	els, err := readAll(t, strings.NewReader(in), Limits{})
	if err != io.EOF || len(els) != 1 {
		t.Fatal(len(els), err)
	}
	m := els[0]
	if m.Space != "" || m.Lang() != "de" || len(m.Attrs) != 2 || m.Attrs[1] != (Attr{NSXML, "lang", "de"}) {
		t.Fatalf("message %#v", m)
	}
	ev := m.Child("urn:x", "event")
	if ev == nil || len(ev.Attrs) != 0 {
		t.Fatalf("event %#v (xmlns declarations must not be kept)", ev)
	}
	item := ev.Child("urn:x", "item")
	if item == nil || item.Attrs[0] != (Attr{"urn:x", "id", "1"}) || item.Attrs[1] != (Attr{"", "id", "2"}) {
		t.Fatalf("item %#v", item)
	}
	if inner := ev.Child("", "inner"); inner == nil || inner.Space != "" {
		t.Fatalf("inner %#v", inner)
	}
	fw := m.Child("urn:xmpp:forward:0", "forwarded")
	inMsg := fw.FirstElement()
	if inMsg.Space != "" || inMsg.Local != "message" || inMsg.ChildText("", "body") != "fw" {
		t.Fatalf("forwarded message %#v", inMsg)
	}
	if z := fw.Elements()[1]; z.Space != "" {
		t.Fatalf("z %#v", z)
	}
	if se := m.Child(NSStream, "error"); se == nil {
		t.Fatal("stream prefix not in scope in stanza")
	}
	// Serialising with the content namespace keeps every meaning.
	var b bytes.Buffer
	if _, err := m.WriteToNS(&b, "jabber:client"); err != nil {
		t.Fatal(err)
	}
	want := `<message to='a@b' xml:lang='de'><body>hi</body>` +
		`<event xmlns='urn:x'><item xmlns:ns0='urn:x' ns0:id='1' id='2'/><inner xmlns='jabber:client'/></event>` +
		`<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client'><body>fw</body></message><z xmlns='jabber:client'/></forwarded>` +
		`<error xmlns='http://etherx.jabber.org/streams'/></message>`
	if b.String() != want {
		t.Fatalf("got  %s\nwant %s", b.String(), want)
	}
}

func TestParseElement(t *testing.T) {
	el, err := ParseElement([]byte("\n <message xmlns='jabber:client' to='x'><body>hi</body></message>\r\n"), Limits{}, "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	if el.Space != "" || el.Attr("to") != "x" || el.ChildText("", "body") != "hi" {
		t.Fatalf("%#v", el)
	}
	el, err = ParseElement([]byte("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>"), Limits{}, "jabber:client")
	if err != nil || el.Space != "urn:ietf:params:xml:ns:xmpp-framing" {
		t.Fatal(el, err)
	}
	for in, cond := range map[string]string{
		"":                          CondNotWellFormed,
		"   ":                       CondNotWellFormed,
		"<a/><b/>":                  CondNotWellFormed,
		"<a/>x":                     CondNotWellFormed,
		"x<a/>":                     CondNotWellFormed,
		"<a>":                       CondNotWellFormed,
		"</a>":                      CondNotWellFormed,
		"<a/><!-- c -->":            CondRestrictedXML,
		"<?xml version='1.0'?><a/>": CondRestrictedXML,
		"<!DOCTYPE a><a/>":          CondRestrictedXML,
		"<a>&ent;</a>":              CondNotWellFormed,
	} {
		if _, err := ParseElement([]byte(in), Limits{}, ""); condition(err) != cond {
			t.Errorf("%q: got %v, want %s", in, err, cond)
		}
	}
}

func TestTextNormalisation(t *testing.T) {
	el, err := ParseElement([]byte("<a b='x&#9;y&#10;z'>1\r\n2\r3&#13;<![CDATA[4]]>5<c/>6</a>"), Limits{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if el.Attr("b") != "x\ty\nz" {
		t.Fatalf("attr %q", el.Attr("b"))
	}
	if len(el.Children) != 3 || el.Children[0] != CharData("1\n2\n3\r45") || el.Children[2] != CharData("6") {
		t.Fatalf("children %#v", el.Children)
	}
	if s := el.String(); s != "<a b='x&#x9;y&#xA;z'>1\n2\n3&#xD;45<c/>6</a>" {
		t.Fatalf("serialised %s", s)
	}
}

func BenchmarkDecodeMessage(b *testing.B) {
	msg := `<message from='juliet@example.com/balcony' to='romeo@example.net' type='chat' id='ktx72v49' xml:lang='en'>` +
		`<body>Art thou not Romeo, and a Montague?</body>` +
		`<active xmlns='http://jabber.org/protocol/chatstates'/>` +
		`<request xmlns='urn:xmpp:receipts'/></message>`
	in := []byte(testHeader + strings.Repeat(msg, 1000))
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	var d *Decoder
	for i := 0; b.Loop(); i++ {
		if i%1000 == 0 {
			d = NewDecoder(bytes.NewReader(in), Limits{})
			if _, err := d.ReadHeader(); err != nil {
				b.Fatal(err)
			}
			d.SetContentNamespace("jabber:client")
		}
		if _, err := d.Next(); err != nil {
			b.Fatal(err)
		}
	}
}
