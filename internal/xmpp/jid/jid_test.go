package jid

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/net/idna"
)

func TestParseValid(t *testing.T) {
	tests := []struct {
		name, in           string
		local, domain, res string
		want               string // canonical form; "" means same as in
	}{
		// RFC 7622 §3.5, Table 1 (valid JIDs).
		{"rfc7622-1", "juliet@example.com", "juliet", "example.com", "", ""},
		{"rfc7622-2", "juliet@example.com/foo", "juliet", "example.com", "foo", ""},
		{"rfc7622-3 space in resource", "juliet@example.com/foo bar", "juliet", "example.com", "foo bar", ""},
		{"rfc7622-4 at in resource", "juliet@example.com/foo@bar", "juliet", "example.com", "foo@bar", ""},
		{"rfc7622-5 backslash", `foo\20bar@example.com`, `foo\20bar`, "example.com", "", ""},
		{"rfc7622-6", "fussball@example.com", "fussball", "example.com", "", ""},
		{"rfc7622-7 sharp s kept", "fußball@example.com", "fußball", "example.com", "", ""},
		{"rfc7622-8 pi", "π@example.com", "π", "example.com", "", ""},
		{"rfc7622-9 capital sigma folds", "Σ@example.com/foo", "σ", "example.com", "foo", "σ@example.com/foo"},
		{"rfc7622-10 small sigma", "σ@example.com/foo", "σ", "example.com", "foo", ""},
		{"rfc7622-11 final sigma", "ς@example.com/foo", "ς", "example.com", "foo", ""},
		{"rfc7622-12 symbol in resource", "king@example.com/♚", "king", "example.com", "♚", ""},
		{"rfc7622-13 domain only", "example.com", "", "example.com", "", ""},
		{"rfc7622-14", "example.com/foobar", "", "example.com", "foobar", ""},
		{"rfc7622-15 at in resource of domain JID", "a.example.com/b@example.net", "", "a.example.com", "b@example.net", ""},
		// RFC 7622 §3.5 Table 2 lists "juliet@example.com/ foo" as invalid,
		// but no rule in §3.4 or in OpaqueString (RFC 8265 §4.2) forbids a
		// leading space, and other servers accept it. Rejecting what peers
		// consider valid would drop their stanzas, so we follow the rules,
		// not the table.
		{"rfc7622-18 leading space in resource (rules over table)", "juliet@example.com/ foo", "juliet", "example.com", " foo", ""},

		// Case folding of localpart and domainpart; resource keeps case.
		{"case folding", "Juliet@Example.COM", "juliet", "example.com", "", "juliet@example.com"},
		{"resource keeps case", "juliet@example.com/Balcony", "juliet", "example.com", "Balcony", ""},
		{"upper domain only", "EXAMPLE.NET", "", "example.net", "", "example.net"},
		// Width mapping (RFC 8264 §9.1 / UTS #46): fullwidth → ASCII in
		// localpart and domainpart; OpaqueString has no width mapping.
		{"fullwidth", "ｊｕｌｉｅｔ@ｅｘａｍｐｌｅ．ｃｏｍ/ｆｏｏ", "juliet", "example.com", "ｆｏｏ", "juliet@example.com/ｆｏｏ"},
		// NFC in every part.
		{"nfc local", "e\u0301@example.com", "é", "example.com", "", "é@example.com"},
		{"nfc resource", "example.com/e\u0301", "", "example.com", "é", "example.com/é"},
		{"nbsp in resource maps to space", "example.com/a\u00a0b", "", "example.com", "a b", "example.com/a b"},
		// IDN: U-labels kept, A-labels converted to U-labels (§3.2.1).
		{"idn", "πß.com", "", "πß.com", "", ""},
		{"idn upper", "ΠSS.com", "", "πss.com", "", "πss.com"},
		{"a-label to u-label", "xn--zca78l.com", "", "πß.com", "", "πß.com"},
		{"a-label upper", "XN--BCHER-KVA.example", "", "bücher.example", "", "bücher.example"},
		// Trailing dot stripped (§3.2).
		{"trailing dot", "example.com.", "", "example.com", "", "example.com"},
		{"trailing dot with parts", "a@example.com./r", "a", "example.com", "r", "a@example.com/r"},
		// IP literals.
		{"ipv4", "juliet@192.0.2.1/r", "juliet", "192.0.2.1", "r", ""},
		{"ipv6", "juliet@[2001:db8::1]", "juliet", "[2001:db8::1]", "", ""},
		{"ipv6 canonicalised", "[2001:DB8:0:0:0:0:0:1]", "", "[2001:db8::1]", "", "[2001:db8::1]"},
		{"ipv4-mapped ipv6", "[::ffff:192.0.2.1]", "", "[::ffff:192.0.2.1]", "", ""},
		// Separators: first '/' ends the bare part, first '@' before it
		// ends the localpart.
		{"slashes in resource", "a@b.example/c/d@e", "a", "b.example", "c/d@e", ""},
		{"only at in resource", "example.net/@", "", "example.net", "@", ""},
		{"double slash", "example.net//x", "", "example.net", "/x", ""},
		// Localpart may contain ASCII punctuation not in the §3.3.1 list.
		{"punct local", "a.b+c_d!#$%*=?^`{|}~@example.com", "a.b+c_d!#$%*=?^`{|}~", "example.com", "", ""},
		{"digits and hyphens", "0-9.a-b.example", "", "0-9.a-b.example", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if j.Local() != tt.local || j.Domain() != tt.domain || j.Resource() != tt.res {
				t.Errorf("Parse(%q) = (%q, %q, %q), want (%q, %q, %q)",
					tt.in, j.Local(), j.Domain(), j.Resource(), tt.local, tt.domain, tt.res)
			}
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if j.String() != want {
				t.Errorf("Parse(%q).String() = %q, want %q", tt.in, j.String(), want)
			}
			j2, err := Parse(j.String())
			if err != nil || j2 != j {
				t.Errorf("reparse of %q = %#v, %v; want %#v", j.String(), j2, err, j)
			}
			n, err := New(tt.local, tt.domain, tt.res)
			if err != nil || n != j {
				t.Errorf("New(%q, %q, %q) = %#v, %v; want %#v", tt.local, tt.domain, tt.res, n, err, j)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	long := strings.Repeat("a", maxPart+1)
	tests := []struct {
		name, in string
		part     Part
		reason   Reason
	}{
		// RFC 7622 §3.5, Table 2 (not JIDs), except example 18 (see above).
		{"rfc7622-16 quotes", `"juliet"@example.com`, PartLocal, ReasonForbiddenChar},
		{"rfc7622-17 space in local", "foo bar@example.com", PartLocal, ReasonDisallowed},
		{"rfc7622-19 empty local and resource", "@example.com/", PartLocal, ReasonEmpty},
		{"rfc7622-20 compatibility char", "henryⅣ@example.com", PartLocal, ReasonDisallowed},
		{"rfc7622-21 symbol in local", "♚@example.com", PartLocal, ReasonDisallowed},
		{"rfc7622-22 empty domain", "juliet@", PartDomain, ReasonEmpty},
		{"rfc7622-23 no domain", "/foobar", PartDomain, ReasonEmpty},

		{"empty string", "", PartDomain, ReasonEmpty},
		{"empty local", "@example.com", PartLocal, ReasonEmpty},
		{"empty resource", "a@b/", PartResource, ReasonEmpty},
		{"only dot", ".", PartDomain, ReasonEmpty},
		{"two trailing dots", "example.com..", PartDomain, ReasonEmpty},
		{"leading dot", ".example.com", PartDomain, ReasonEmpty},
		{"empty label", "example..com", PartDomain, ReasonEmpty},
		{"ideographic full stop at end", "example.com\u3002", PartDomain, ReasonEmpty},
		{"second at", "a@b@example.com", PartDomain, ReasonDisallowed},
		{"fullwidth at in local maps to @", "a\uff20b@example.com", PartLocal, ReasonForbiddenChar},
		{"fullwidth solidus in local", "a\uff0fb@example.com", PartLocal, ReasonForbiddenChar},
		{"amp", "b&d@example.net", PartLocal, ReasonForbiddenChar},
		{"apos", "b'd@example.net", PartLocal, ReasonForbiddenChar},
		{"colon", "b:d@example.net", PartLocal, ReasonForbiddenChar},
		{"lt", "b<d@example.net", PartLocal, ReasonForbiddenChar},
		{"gt", "b>d@example.net", PartLocal, ReasonForbiddenChar},
		{"control in local", "a\x01@example.com", PartLocal, ReasonDisallowed},
		{"control in resource", "example.com/a\tb", PartResource, ReasonDisallowed},
		{"del in resource", "example.com/a\x7f", PartResource, ReasonDisallowed},
		{"underscore in domain", "a_b.example", PartDomain, ReasonDisallowed},
		{"space in domain", "a b.example", PartDomain, ReasonDisallowed},
		{"leading hyphen", "-a.example", PartDomain, ReasonDisallowed},
		{"trailing hyphen", "a-.example", PartDomain, ReasonDisallowed},
		{"hyphens 3-4", "ab--cd.example", PartDomain, ReasonDisallowed},
		{"bad punycode", "xn--a.example", PartDomain, ReasonDisallowed},
		{"ascii-only punycode", "xn--abc-.example", PartDomain, ReasonDisallowed},
		{"bare ipv6", "::1", PartDomain, ReasonDisallowed},
		{"bracketed ipv4", "[192.0.2.1]", PartDomain, ReasonInvalidIP},
		{"ipv6 zone", "[fe80::1%eth0]", PartDomain, ReasonInvalidIP},
		{"unclosed bracket", "[::1", PartDomain, ReasonInvalidIP},
		{"garbage ipv6", "[example]", PartDomain, ReasonInvalidIP},
		{"bidi rule", "\u0661.com", PartDomain, ReasonDisallowed},
		{"invalid utf8 local", "\xff@example.com", PartLocal, ReasonInvalidUTF8},
		{"invalid utf8 domain", "exa\xffmple.com", PartDomain, ReasonInvalidUTF8},
		{"invalid utf8 resource", "example.com/\xfe", PartResource, ReasonInvalidUTF8},
		// Length limits (1023 octets per part, 63 per label).
		{"local too long", long + "@example.com", PartLocal, ReasonTooLong},
		{"resource too long", "example.com/" + long, PartResource, ReasonTooLong},
		{"label too long", strings.Repeat("a", 64) + ".example", PartDomain, ReasonTooLong},
		{"idn label too long", strings.Repeat("ü", 60) + ".example", PartDomain, ReasonTooLong},
		{"domain too long", strings.Repeat(strings.Repeat("a", 63)+".", 16) + "com", PartDomain, ReasonTooLong},
		{"local too long after width mapping", strings.Repeat("ａ", maxPart+1) + "@example.com", PartLocal, ReasonTooLong},
		{"huge raw input", strings.Repeat("\u00ad", maxRawPart) + "a.example", PartDomain, ReasonTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want error", tt.in, j)
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse(%q) error %T is not *Error", tt.in, err)
			}
			if e.Part != tt.part || e.Reason != tt.reason {
				t.Errorf("Parse(%q) = %v (part %v, reason %v), want part %v, reason %v",
					tt.in, err, e.Part, e.Reason, tt.part, tt.reason)
			}
			if !j.IsZero() {
				t.Errorf("Parse(%q) returned non-zero JID %q with error", tt.in, j)
			}
		})
	}
}

func TestLengthBoundaries(t *testing.T) {
	max := strings.Repeat("a", maxPart)
	// A 1023-octet domain of 63-octet labels.
	dom := strings.Repeat(strings.Repeat("b", 63)+".", 15) + strings.Repeat("c", 63)
	if len(dom) != maxPart {
		t.Fatalf("test setup: domain length %d", len(dom))
	}
	for _, s := range []string{
		max + "@example.com",
		"example.com/" + max,
		dom,
		max + "@" + dom + "/" + max,
		strings.Repeat("a", 63) + ".example",
		strings.Repeat("ａ", maxPart) + "@example.com", // shrinks to 1023 octets
	} {
		j, err := Parse(s)
		if err != nil {
			t.Errorf("Parse(len %d): %v", len(s), err)
			continue
		}
		if j2, err := Parse(j.String()); err != nil || j2 != j {
			t.Errorf("reparse failed: %v", err)
		}
	}
	// The longest IDN label whose A-label still fits in 63 octets.
	for n := 1; ; n++ {
		label := strings.Repeat("ü", n)
		a, _ := idna.ToASCII(label)
		_, err := Parse(label + ".example")
		if len(a) <= maxLabel && err != nil {
			t.Fatalf("label of %d ü (A-label %d octets): %v", n, len(a), err)
		}
		if len(a) > maxLabel {
			if err == nil {
				t.Fatalf("label of %d ü (A-label %d octets) accepted", n, len(a))
			}
			break
		}
	}
}

func TestAccessors(t *testing.T) {
	full := MustParse("juliet@example.com/balcony")
	bare := MustParse("juliet@example.com")
	dom := MustParse("example.com")
	domRes := MustParse("example.com/res")

	if full.Bare() != bare || bare.Bare() != bare {
		t.Errorf("Bare: %q, %q", full.Bare(), bare.Bare())
	}
	if full.DomainJID() != dom || domRes.DomainJID() != dom || dom.DomainJID() != dom {
		t.Errorf("DomainJID: %q %q", full.DomainJID(), domRes.DomainJID())
	}
	if domRes.Bare() != dom {
		t.Errorf("domRes.Bare() = %q", domRes.Bare())
	}
	for _, c := range []struct {
		j                      JID
		zero, isBare, isDomain bool
	}{
		{JID{}, true, false, false},
		{full, false, false, false},
		{bare, false, true, false},
		{dom, false, true, true},
		{domRes, false, false, false},
	} {
		if c.j.IsZero() != c.zero || c.j.IsBare() != c.isBare || c.j.IsDomain() != c.isDomain {
			t.Errorf("%q: IsZero=%v IsBare=%v IsDomain=%v", c.j, c.j.IsZero(), c.j.IsBare(), c.j.IsDomain())
		}
	}
	var zero JID
	if zero.String() != "" || zero.Local() != "" || zero.Domain() != "" || zero.Resource() != "" {
		t.Errorf("zero JID has content")
	}
	if !full.Equal(MustParse("Juliet@EXAMPLE.com/balcony")) || full.Equal(bare) {
		t.Errorf("Equal")
	}

	// WithResource prepares the resource and replaces any existing one.
	w, err := full.WithResource("orchard\u00a0tree")
	if err != nil || w.String() != "juliet@example.com/orchard tree" || w.Bare() != bare {
		t.Errorf("WithResource = %q, %v", w, err)
	}
	if w, err := full.WithResource(""); err != nil || w != bare {
		t.Errorf("WithResource(\"\") = %q, %v", w, err)
	}
	if _, err := full.WithResource("a\x00"); err == nil {
		t.Errorf("WithResource with NUL accepted")
	}
	if _, err := zero.WithResource("r"); err == nil {
		t.Errorf("zero.WithResource accepted")
	}
	if w, err := dom.WithResource("res"); err != nil || w != domRes {
		t.Errorf("dom.WithResource = %q, %v", w, err)
	}

	// Usable as a map key: differently spelled inputs hit the same entry.
	m := map[JID]int{MustParse("Romeo@Example.net"): 1}
	if m[MustParse("romeo@example.net.")] != 1 {
		t.Errorf("map lookup with equivalent JID failed")
	}
}

func TestNew(t *testing.T) {
	j, err := New("Juliet", "Example.COM.", "balcony")
	if err != nil || j != MustParse("juliet@example.com/balcony") {
		t.Fatalf("New = %q, %v", j, err)
	}
	for _, c := range [][3]string{
		{"a@b", "example.com", ""},
		{"a/b", "example.com", ""},
		{"a", "", ""},
		{"a", "ex/ample.com", ""},
		{"a", "ex@ample.com", ""},
		{"", "example.com", "\x00"},
	} {
		if j, err := New(c[0], c[1], c[2]); err == nil {
			t.Errorf("New(%q, %q, %q) = %q, want error", c[0], c[1], c[2], j)
		}
	}
	// A resource may contain separators; the result must reparse to itself.
	j, err = New("", "example.com", "a/b@c")
	if err != nil || MustParse(j.String()) != j {
		t.Errorf("New with separators in resource: %q, %v", j, err)
	}
}

func TestMustParsePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse did not panic")
		}
	}()
	MustParse("@")
}

// TestParseCanonicalNoAlloc guards the hot path: an already-canonical ASCII
// JID must parse without allocating (the JID shares the input string).
func TestParseCanonicalNoAlloc(t *testing.T) {
	for _, s := range []string{"juliet@example.com/balcony", "example.com", "[::1]", "juliet@192.0.2.1"} {
		var j JID
		allocs := testing.AllocsPerRun(100, func() { j, _ = Parse(s) })
		if allocs != 0 {
			t.Errorf("Parse(%q): %v allocs, want 0", s, allocs)
		}
		if j.String() != s {
			t.Errorf("Parse(%q) = %q", s, j)
		}
		allocs = testing.AllocsPerRun(100, func() { _ = j.Bare().DomainJID().String() })
		if allocs != 0 {
			t.Errorf("Bare/DomainJID/String: %v allocs, want 0", allocs)
		}
	}
}

func TestErrorString(t *testing.T) {
	_, err := Parse("♚@example.com")
	var e *Error
	if !errors.As(err, &e) || e.Unwrap() == nil || !strings.HasPrefix(err.Error(), "jid: localpart: ") {
		t.Errorf("error = %v", err)
	}
}

var benchInputs = []struct{ name, s string }{
	{"canonical-full", "juliet@example.com/balcony"},
	{"canonical-bare", "juliet@example.com"},
	{"domain", "conference.example.com"},
	{"uppercase", "Juliet@Example.COM/Balcony"},
	{"trailing-dot", "juliet@example.com./balcony"},
	{"unicode", "fußball@πß.example/♚"},
	{"a-label", "juliet@xn--bcher-kva.example"},
}

func BenchmarkParse(b *testing.B) {
	for _, in := range benchInputs {
		b.Run(in.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Parse(in.s); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
