package jid

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse checks that Parse never panics, that whatever it accepts is a
// fixed point (Parse(j.String()) == j, so canonical strings are stable map
// keys and can be stored and re-read), that accepted parts respect the RFC
// 7622 limits, and that each ASCII fast path agrees with the full
// PRECIS/IDNA path it short-circuits.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"juliet@example.com/balcony", "Juliet@Example.COM", "example.com.",
		"πß.com", "xn--zca78l.com", "[2001:DB8::1]", "192.0.2.1",
		"ｊｕｌｉｅｔ@ｅｘａｍｐｌｅ．ｃｏｍ", "a@b/c/d@e", "@example.com", "a@b/",
		"henryⅣ@example.com", "e\u0301@example.com", "example.com/ foo",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		checkFastPaths(t, s)
		j, err := Parse(s)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("Parse(%q) error %T is not *Error", s, err)
			}
			return
		}
		out := j.String()
		j2, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(%q) = %q, which does not reparse: %v", s, out, err)
		}
		if j2 != j {
			t.Fatalf("Parse(%q) = %#v, reparse = %#v", s, j, j2)
		}
		if n, err := New(j.Local(), j.Domain(), j.Resource()); err != nil || n != j {
			t.Fatalf("New(parts of %q) = %#v, %v", out, n, err)
		}
		if len(j.Local()) > maxPart || len(j.Domain()) > maxPart || len(j.Resource()) > maxPart ||
			j.Domain() == "" || !utf8.ValidString(out) {
			t.Fatalf("Parse(%q) = %q violates limits", s, out)
		}
		if strings.ContainsAny(j.Local(), localForbidden) || strings.ContainsAny(j.Domain(), "@/") {
			t.Fatalf("Parse(%q) = %q has a separator inside local or domain", s, out)
		}
		if j.Bare().String()+resSuffix(j) != out {
			t.Fatalf("Bare/Resource inconsistent for %q", out)
		}
	})
}

func resSuffix(j JID) string {
	if j.Resource() == "" {
		return ""
	}
	return "/" + j.Resource()
}

// checkFastPaths runs each fast path on s and, where it claims to know the
// answer, compares it with the slow path it replaces.
func checkFastPaths(t *testing.T, s string) {
	if s == "" || !utf8.ValidString(s) {
		return
	}
	if out, ok, err := fastLocal(s); ok {
		slow, serr := slowLocal(s)
		if (err == nil) != (serr == nil) || out != slow {
			t.Fatalf("local %q: fast (%q, %v) != slow (%q, %v)", s, out, err, slow, serr)
		}
	}
	if out, ok, err := fastResource(s); ok {
		slow, serr := slowResource(s)
		if (err == nil) != (serr == nil) || out != slow {
			t.Fatalf("resource %q: fast (%q, %v) != slow (%q, %v)", s, out, err, slow, serr)
		}
	}
	if out, ok := fastDomain(s); ok {
		slow, serr := slowDomain(s)
		if serr != nil || out != slow {
			t.Fatalf("domain %q: fast %q != slow (%q, %v)", s, out, slow, serr)
		}
	}
}
