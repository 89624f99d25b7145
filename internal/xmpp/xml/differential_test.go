package xml

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"
)

// FuzzDifferential runs Parley's tokenizer and the reference decoder built
// on encoding/xml (ref_test.go) on the same bytes and requires the same
// outcome: the same stream header, the same elements (Equal trees), and the
// same final verdict (the same error condition, EOF or stream close). The
// first byte of data picks the entry point:
//
//	0: a whole stream (header included) read with NewDecoder
//	1: ParseElement
//	2: a whole stream read one byte per Read (new decoder only needs to
//	   agree with the reference reading it in one go)
//
// The seeds are the FuzzDecoder and FuzzRoundTrip corpora, the round-trip
// seeds and a few attack streams on the header.
func FuzzDifferential(f *testing.F) {
	for _, s := range differentialSeeds(f) {
		f.Add(append([]byte{0}, testHeader+s...))
		f.Add(append([]byte{1}, s...))
	}
	f.Add(append([]byte{2}, testHeader+roundTripSeeds[0]...))
	for _, s := range []string{
		billionLaughs,
		"<?xml version='1.0' encoding='UTF-16'?><stream:stream xmlns:stream='" + NSStream + "'>",
		"<?xml version='1.1'?><stream:stream xmlns:stream='" + NSStream + "'>",
		"\xfe\xff\x00<",
		"<\x00s",
		" <?xml version='1.0'?><stream:stream xmlns:stream='" + NSStream + "'>",
		"<stream:stream xmlns:stream='" + NSStream + "'/>",
		"<stream xmlns='" + NSStream + "' xmlns:db='jabber:server:dialback'><db:result/></stream>",
		"&#32;<![CDATA[ ]]><stream:stream xmlns:stream='" + NSStream + "'><![CDATA[ ]]> <a/>",
	} {
		f.Add(append([]byte{0}, s...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		mode, in := data[0]%3, data[1:]
		switch mode {
		case 0, 2:
			var r io.Reader = bytes.NewReader(in)
			if mode == 2 {
				r = iotest.OneByteReader(r)
			}
			got := runNew(r)
			want := runRef(bytes.NewReader(in))
			compareRuns(t, in, got, want)
		case 1:
			el, err := ParseElement(in, fuzzLimits, "jabber:client")
			rel, rerr := refParseElement(in, fuzzLimits, "jabber:client")
			if errKey(err) != errKey(rerr) {
				t.Fatalf("ParseElement(%q): %v, reference %v", in, err, rerr)
			}
			if err == nil && !el.Equal(rel) {
				t.Fatalf("ParseElement(%q):\n%s\nreference\n%s", in, el, rel)
			}
		}
	})
}

// run is what one decoder made of a stream.
type run struct {
	header    StreamHeader
	headerErr string
	els       []*Element
	err       string
}

func runNew(r io.Reader) run {
	var out run
	d := NewDecoder(r, fuzzLimits)
	h, err := d.ReadHeader()
	out.header, out.headerErr = h, errKey(err)
	if err != nil {
		return out
	}
	d.SetContentNamespace(h.DefaultNS)
	for len(out.els) < 1000 {
		el, err := d.Next()
		if err != nil {
			out.err = errKey(err)
			break
		}
		out.els = append(out.els, el)
	}
	return out
}

func runRef(r io.Reader) run {
	var out run
	d := newRefDecoder(r, fuzzLimits)
	h, err := d.ReadHeader()
	out.header, out.headerErr = h, errKey(err)
	if err != nil {
		return out
	}
	d.SetContentNamespace(h.DefaultNS)
	for len(out.els) < 1000 {
		el, err := d.Next()
		if err != nil {
			out.err = errKey(err)
			break
		}
		out.els = append(out.els, el)
	}
	return out
}

func compareRuns(t *testing.T, in []byte, got, want run) {
	t.Helper()
	if got.headerErr != want.headerErr {
		t.Fatalf("%q: header error %s, reference %s", in, got.headerErr, want.headerErr)
	}
	if !reflect.DeepEqual(got.header, want.header) {
		t.Fatalf("%q: header\n%+v\nreference\n%+v", in, got.header, want.header)
	}
	n := min(len(got.els), len(want.els))
	for i := range n {
		if !got.els[i].Equal(want.els[i]) {
			t.Fatalf("%q: element %d\n%s\nreference\n%s", in, i, got.els[i], want.els[i])
		}
	}
	if len(got.els) != len(want.els) || got.err != want.err {
		t.Fatalf("%q: %d elements then %s, reference %d then %s", in, len(got.els), got.err, len(want.els), want.err)
	}
}

// errKey is what must agree between the decoders: the condition of an
// *Error, or which of the other outcomes it is.
func errKey(err error) string {
	var xe *Error
	switch {
	case err == nil:
		return "ok"
	case err == io.EOF:
		return "EOF"
	case err == ErrStreamClosed:
		return "closed"
	case errors.As(err, &xe):
		return xe.Condition
	}
	return "other: " + err.Error()
}

// differentialSeeds collects stanzas (without a stream header) from the
// other fuzzers' corpora and the unit tests' inputs.
func differentialSeeds(t testing.TB) []string {
	seeds := append([]string(nil), roundTripSeeds...)
	for _, dir := range []string{"testdata/fuzz/FuzzDecoder", "testdata/fuzz/FuzzRoundTrip"} {
		files, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, fi := range files {
			b, err := os.ReadFile(filepath.Join(dir, fi.Name()))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(b), "\n") {
				if q, ok := strings.CutPrefix(line, "[]byte("); ok {
					s, err := strconv.Unquote(strings.TrimSuffix(q, ")"))
					if err != nil {
						t.Fatalf("%s: %v", fi.Name(), err)
					}
					seeds = append(seeds, s)
				}
			}
		}
	}
	return seeds
}

// TestDifferentialSeeds runs the differential check on the seeds in every
// ordinary test run, with default limits as well as the fuzzer's small ones.
func TestDifferentialSeeds(t *testing.T) {
	for _, s := range differentialSeeds(t) {
		in := []byte(testHeader + s)
		compareRuns(t, in, runNew(bytes.NewReader(in)), runRef(bytes.NewReader(in)))
		compareRuns(t, in, runNew(iotest.OneByteReader(bytes.NewReader(in))), runRef(bytes.NewReader(in)))
		el, err := ParseElement([]byte(s), Limits{}, "jabber:client")
		rel, rerr := refParseElement([]byte(s), Limits{}, "jabber:client")
		if errKey(err) != errKey(rerr) || err == nil && !el.Equal(rel) {
			t.Fatalf("ParseElement(%q): %v %v, reference %v %v", s, el, err, rel, rerr)
		}
	}
}

// TestDifferentialManyPrefixes crosses nsScope's switch from its short
// slice to a map, rebinds prefixes and unwinds them, against the reference.
func TestDifferentialManyPrefixes(t *testing.T) {
	var b strings.Builder
	b.WriteString(testHeader + "<message>")
	// Six levels, three declarations each (18 bindings, p0 and p1 rebound
	// at the fifth), an attribute in each new namespace.
	pfx := func(level, k int) string {
		if level == 4 && k < 2 {
			return "p" + strconv.Itoa(k)
		}
		return "p" + strconv.Itoa(3*level+k)
	}
	for i := range 6 {
		b.WriteString("<" + pfx(i, 0) + ":x")
		for k := range 3 {
			p := pfx(i, k)
			b.WriteString(" xmlns:" + p + "='urn:" + strconv.Itoa(i) + ":" + strconv.Itoa(k) + "' " + p + ":a='v'")
		}
		b.WriteString(">")
	}
	for i := 5; i >= 0; i-- {
		b.WriteString("<p0:y p1:b=''/></" + pfx(i, 0) + ":x>")
	}
	b.WriteString("</message><p0:z/>")
	in := []byte(b.String())
	got, want := runNew(bytes.NewReader(in)), runRef(bytes.NewReader(in))
	compareRuns(t, in, got, want)
	if len(got.els) != 1 || got.err != CondNotWellFormed {
		t.Fatalf("got %d elements then %s, want 1 then an undeclared-prefix error", len(got.els), got.err)
	}
}
