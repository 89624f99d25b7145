// Package jid implements XMPP addresses (JIDs) as defined in RFC 7622.
//
// A JID is parsed once, at the edge (stream 'to'/'from', stanza attributes,
// resource binding), and from then on carried as a prepared, canonical value.
// Because every part has been through the RFC 7622 preparation and
// enforcement rules, two JIDs denote the same entity exactly when their
// canonical strings are equal, so JID is an ordinary comparable value that
// can be used with == and as a map key (rosters, session tables, routing).
//
// Parsing sits on the hot path (every routed stanza carries 'to' and 'from'),
// so the common case of an already-canonical ASCII address is handled without
// PRECIS/IDNA and without allocating: the returned JID simply shares the
// input string. Non-ASCII input takes the full PRECIS (RFC 8264/8265) and
// IDNA2008 (RFC 5891, UTS #46 lookup mapping) path.
package jid

import (
	"errors"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

// Size limits from RFC 7622 §3.2, §3.3 and §3.4: every part is 1 to 1023
// octets once prepared. A DNS label is at most 63 octets in its ASCII
// (A-label) form (RFC 1035 §2.3.4, RFC 5890 §2.3.2.1).
const (
	maxPart  = 1023
	maxLabel = 63
	// maxRawPart bounds the input handed to PRECIS/IDNA. Preparation can
	// shrink a part (width mapping, ignored code points), so the raw input
	// is allowed to be longer than maxPart, but not unboundedly: no
	// legitimate peer sends a multi-kilobyte JID part, and rejecting it
	// early keeps a hostile stanza from buying expensive Unicode work.
	maxRawPart = 4 * maxPart
)

// idnaProfile is the IDNA2008 profile used for domainparts: UTS #46 lookup
// mapping (case, width and NFC), non-transitional (so "ß" stays "ß" as
// IDNA2008 requires), STD3 ASCII rules (only LDH in ASCII, per RFC 7622
// §3.2's requirement of NR-LDH labels or U-labels), hyphen and ContextJ
// checks, and the Bidi rule of RFC 5893. A *idna.Profile is immutable after
// New and safe for concurrent use.
var idnaProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.StrictDomainName(true),
	idna.ValidateLabels(true),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.BidiRule(),
)

// JID is a prepared XMPP address. The zero value is the empty JID (see
// IsZero); any other value was produced by Parse, New or a method on a
// valid JID and is in canonical form.
//
// The canonical string is stored once, with the domainpart's bounds, so that
// String, Bare and DomainJID are free (they return sub-slices of the same
// string) and == compares addresses. The decomposition of a canonical string
// is unique (neither localpart nor domainpart may contain '@' or '/'), so
// comparing the whole struct is the same as comparing the strings.
type JID struct {
	full   string // canonical "local@domain/resource"
	dStart uint16 // offset of the domainpart (0 when there is no localpart)
	dEnd   uint16 // offset one past the domainpart
}

// Parse splits s into localpart, domainpart and resourcepart following RFC
// 7622 §3.1 (the resourcepart is everything after the first '/', the
// localpart everything before the first '@' that precedes that '/'), then
// prepares and enforces each part. Splitting happens before any mapping, as
// §3.1 requires, because width mapping can turn e.g. U+FF20 into '@'.
//
// Every failure is a *Error, so a caller can answer with jid-malformed
// without inspecting it further.
func Parse(s string) (JID, error) {
	if s == "" {
		return JID{}, &Error{Part: PartDomain, Reason: ReasonEmpty}
	}
	rest, resource, hasResource := strings.Cut(s, "/")
	local, domain, hasLocal := strings.Cut(rest, "@")
	if !hasLocal {
		local, domain = "", rest
	}
	if hasLocal && local == "" {
		return JID{}, &Error{Part: PartLocal, Reason: ReasonEmpty}
	}
	if hasResource && resource == "" {
		return JID{}, &Error{Part: PartResource, Reason: ReasonEmpty}
	}
	pl, pd, pr, err := prepare(local, domain, resource)
	if err != nil {
		return JID{}, err
	}
	// The common case is an address that is already canonical: the fast
	// paths then hand back the very sub-strings of s, and the JID can share
	// s instead of allocating a copy.
	if pl == local && pd == domain && pr == resource {
		dStart := 0
		if hasLocal {
			dStart = len(local) + 1
		}
		return JID{full: s, dStart: uint16(dStart), dEnd: uint16(dStart + len(domain))}, nil
	}
	return assemble(pl, pd, pr), nil
}

// New builds a JID from separate parts. An empty local or resource means the
// part is absent; the domain is required. The parts are prepared exactly as
// Parse prepares them, so New("Juliet", "Example.COM", "") equals
// MustParse("juliet@example.com").
func New(local, domain, resource string) (JID, error) {
	pl, pd, pr, err := prepare(local, domain, resource)
	if err != nil {
		return JID{}, err
	}
	return assemble(pl, pd, pr), nil
}

// MustParse is like Parse but panics on error. It is meant for tests and for
// compile-time constants such as a server's own domain in configuration
// defaults, never for addresses received from the network.
func MustParse(s string) JID {
	j, err := Parse(s)
	if err != nil {
		panic("jid: MustParse(" + s + "): " + err.Error())
	}
	return j
}

// prepare applies the RFC 7622 rules to the three (already split) parts.
// Absent parts are "". A part that needs no change is returned as the same
// string, which Parse relies on to avoid copying.
func prepare(local, domain, resource string) (pl, pd, pr string, err error) {
	switch {
	case !utf8.ValidString(local):
		return "", "", "", &Error{Part: PartLocal, Reason: ReasonInvalidUTF8}
	case !utf8.ValidString(domain):
		return "", "", "", &Error{Part: PartDomain, Reason: ReasonInvalidUTF8}
	case !utf8.ValidString(resource):
		return "", "", "", &Error{Part: PartResource, Reason: ReasonInvalidUTF8}
	}
	if local != "" {
		if pl, err = prepLocal(local); err != nil {
			return "", "", "", err
		}
	}
	if pd, err = prepDomain(domain); err != nil {
		return "", "", "", err
	}
	if resource != "" {
		if pr, err = prepResource(resource); err != nil {
			return "", "", "", err
		}
	}
	return pl, pd, pr, nil
}

// assemble joins prepared parts into a canonical JID with one allocation.
func assemble(local, domain, resource string) JID {
	n := len(domain)
	if local != "" {
		n += len(local) + 1
	}
	if resource != "" {
		n += len(resource) + 1
	}
	var b strings.Builder
	b.Grow(n)
	var dStart int
	if local != "" {
		b.WriteString(local)
		b.WriteByte('@')
		dStart = len(local) + 1
	}
	b.WriteString(domain)
	dEnd := dStart + len(domain)
	if resource != "" {
		b.WriteByte('/')
		b.WriteString(resource)
	}
	return JID{full: b.String(), dStart: uint16(dStart), dEnd: uint16(dEnd)}
}

// Local returns the localpart, or "" if there is none.
func (j JID) Local() string {
	if j.dStart == 0 {
		return ""
	}
	return j.full[:j.dStart-1]
}

// Domain returns the domainpart (U-labels, lower case, no trailing dot; IPv6
// literals keep their brackets).
func (j JID) Domain() string { return j.full[j.dStart:j.dEnd] }

// Resource returns the resourcepart, or "" if there is none.
func (j JID) Resource() string {
	if int(j.dEnd) >= len(j.full) {
		return ""
	}
	return j.full[j.dEnd+1:]
}

// Bare returns the JID without its resourcepart (RFC 6120 §1.4 "bare JID").
// It does not allocate.
func (j JID) Bare() JID {
	return JID{full: j.full[:j.dEnd], dStart: j.dStart, dEnd: j.dEnd}
}

// DomainJID returns the JID consisting only of the domainpart, i.e. the
// server or component that hosts j. It does not allocate.
func (j JID) DomainJID() JID {
	return JID{full: j.full[j.dStart:j.dEnd], dEnd: j.dEnd - j.dStart}
}

// WithResource returns the bare part of j with resourcepart r, prepared with
// the OpaqueString profile. An empty r yields the bare JID, which lets
// callers strip and replace in one call. It fails on the zero JID.
func (j JID) WithResource(r string) (JID, error) {
	if j.IsZero() {
		return JID{}, &Error{Part: PartDomain, Reason: ReasonEmpty}
	}
	if r == "" {
		return j.Bare(), nil
	}
	if !utf8.ValidString(r) {
		return JID{}, &Error{Part: PartResource, Reason: ReasonInvalidUTF8}
	}
	pr, err := prepResource(r)
	if err != nil {
		return JID{}, err
	}
	bare := j.full[:j.dEnd]
	return JID{full: bare + "/" + pr, dStart: j.dStart, dEnd: j.dEnd}, nil
}

// IsZero reports whether j is the zero JID (no domainpart), which stands for
// "no address", e.g. an absent 'to' attribute.
func (j JID) IsZero() bool { return j.full == "" }

// IsBare reports whether j is a valid JID without a resourcepart.
func (j JID) IsBare() bool { return !j.IsZero() && int(j.dEnd) == len(j.full) }

// PrepareDomain returns domain in the form a JID's domainpart has after
// preparation (RFC 7622 §3.2: lower case, U-labels for internationalised
// labels, no trailing dot), so that lists of domains written in any form
// (an A-label "xn--..." or a U-label, upper case, a trailing dot) compare
// equal to the domains of parsed addresses.
func PrepareDomain(domain string) (string, error) {
	j, err := Parse(domain)
	if err != nil {
		return "", err
	}
	if !j.IsDomain() {
		return "", errors.New("jid: not a domain")
	}
	return j.Domain(), nil
}

// IsDomain reports whether j consists of a domainpart only (a server or
// component address): no localpart and no resourcepart.
func (j JID) IsDomain() bool { return j.dStart == 0 && j.IsBare() }

// String returns the canonical form "local@domain/resource" (absent parts and
// their separators omitted). It does not allocate.
func (j JID) String() string { return j.full }

// Equal reports whether j and o are the same address. Because both are
// canonical this is plain equality; the method exists for readability.
func (j JID) Equal(o JID) bool { return j == o }

// localForbidden lists the ASCII characters RFC 7622 §3.3.1 excludes from
// localparts even though the PRECIS IdentifierClass allows them; they are
// excluded so that a JID survives being embedded in URIs and legacy formats.
const localForbidden = "\"&'/:<>@"

// prepLocal applies RFC 7622 §3.3 (UsernameCaseMapped plus the §3.3.1
// exclusions). s is non-empty and valid UTF-8.
func prepLocal(s string) (string, error) {
	if len(s) > maxRawPart {
		return "", &Error{Part: PartLocal, Reason: ReasonTooLong}
	}
	out, ok, err := fastLocal(s)
	if !ok {
		out, err = slowLocal(s)
	}
	if err != nil {
		return "", err
	}
	if len(out) > maxPart {
		return "", &Error{Part: PartLocal, Reason: ReasonTooLong}
	}
	return out, nil
}

// fastLocal handles pure-ASCII localparts. For ASCII input UsernameCaseMapped
// reduces to: every byte must be in %x21-7E (IdentifierClass ASCII7; width
// mapping, NFC and the Bidi rule are no-ops), and A-Z map to a-z. ok is false
// when the input is not ASCII and the PRECIS path must decide. The
// equivalence with slowLocal is checked by FuzzParse.
func fastLocal(s string) (out string, ok bool, err error) {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			return "", false, nil
		case c <= ' ' || c == 0x7f:
			return "", true, &Error{Part: PartLocal, Reason: ReasonDisallowed}
		case strings.IndexByte(localForbidden, c) >= 0:
			return "", true, &Error{Part: PartLocal, Reason: ReasonForbiddenChar}
		case 'A' <= c && c <= 'Z':
			upper = true
		}
	}
	if upper {
		return asciiLower(s), true, nil
	}
	return s, true, nil
}

func slowLocal(s string) (string, error) {
	out, err := precis.UsernameCaseMapped.String(s)
	if err != nil {
		return "", &Error{Part: PartLocal, Reason: ReasonDisallowed, Err: err}
	}
	// Checked after mapping: width mapping turns e.g. U+FF20 into '@'.
	if strings.ContainsAny(out, localForbidden) {
		return "", &Error{Part: PartLocal, Reason: ReasonForbiddenChar}
	}
	return out, nil
}

// prepResource applies RFC 7622 §3.4 (OpaqueString). s is non-empty and
// valid UTF-8.
func prepResource(s string) (string, error) {
	if len(s) > maxRawPart {
		return "", &Error{Part: PartResource, Reason: ReasonTooLong}
	}
	out, ok, err := fastResource(s)
	if !ok {
		out, err = slowResource(s)
	}
	if err != nil {
		return "", err
	}
	if len(out) > maxPart {
		return "", &Error{Part: PartResource, Reason: ReasonTooLong}
	}
	return out, nil
}

// fastResource handles pure-ASCII resourceparts: for ASCII input
// OpaqueString (FreeformClass, space mapping, NFC) accepts exactly %x20-7E
// unchanged and rejects control characters.
func fastResource(s string) (out string, ok bool, err error) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			return "", false, nil
		case c < ' ' || c == 0x7f:
			return "", true, &Error{Part: PartResource, Reason: ReasonDisallowed}
		}
	}
	return s, true, nil
}

func slowResource(s string) (string, error) {
	out, err := precis.OpaqueString.String(s)
	if err != nil {
		return "", &Error{Part: PartResource, Reason: ReasonDisallowed, Err: err}
	}
	return out, nil
}

// prepDomain applies RFC 7622 §3.2: one trailing dot is stripped before
// anything else, IP literals are kept (IPv6 canonicalised so that equal
// addresses compare equal), everything else goes through IDNA2008 and ends
// up as lower-case NFC U-labels.
func prepDomain(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", &Error{Part: PartDomain, Reason: ReasonEmpty}
	}
	if len(s) > maxRawPart {
		return "", &Error{Part: PartDomain, Reason: ReasonTooLong}
	}
	var out string
	if s[0] == '[' {
		var err error
		if out, err = ipv6Literal(s); err != nil {
			return "", err
		}
	} else if d, ok := fastDomain(s); ok {
		// IPv4 literals (RFC 7622 IPv4address) take this path too: a
		// dotted quad is also a valid LDH name and needs no change.
		out = d
	} else {
		var err error
		if out, err = slowDomain(s); err != nil {
			return "", err
		}
	}
	if len(out) > maxPart {
		return "", &Error{Part: PartDomain, Reason: ReasonTooLong}
	}
	return out, nil
}

// ipv6Literal validates "[addr]" and returns its canonical (RFC 5952) form.
// Zones are rejected: they are local to a host and meaningless in an
// address that is routed between servers.
func ipv6Literal(s string) (string, error) {
	if len(s) < 2 || s[len(s)-1] != ']' {
		return "", &Error{Part: PartDomain, Reason: ReasonInvalidIP}
	}
	a, err := netip.ParseAddr(s[1 : len(s)-1])
	if err != nil || !a.Is6() || a.Zone() != "" {
		return "", &Error{Part: PartDomain, Reason: ReasonInvalidIP, Err: err}
	}
	var buf [64]byte
	c := a.AppendTo(buf[:0])
	if string(c) == s[1:len(s)-1] { // no allocation for the comparison
		return s, nil
	}
	return "[" + string(c) + "]", nil
}

// fastDomain accepts ASCII names made of LDH labels (letters, digits,
// hyphen), none empty, none longer than 63 octets, none starting or ending
// with '-', and none with "--" in positions 3-4 (which would make it an
// A-label candidate or an IDNA2008 hyphen-rule violation). For such names the
// IDNA lookup profile is exactly ASCII lower-casing, so the slow path is
// skipped. Anything else returns ok=false and is left to slowDomain. The
// equivalence is checked by FuzzParse.
func fastDomain(s string) (string, bool) {
	upper := false
	labelStart := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			l := s[labelStart:i]
			n := len(l)
			if n == 0 || n > maxLabel || l[0] == '-' || l[n-1] == '-' ||
				(n >= 4 && l[2] == '-' && l[3] == '-') {
				return "", false
			}
			labelStart = i + 1
			continue
		}
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-':
		case 'A' <= c && c <= 'Z':
			upper = true
		default:
			return "", false
		}
	}
	if upper {
		return asciiLower(s), true
	}
	return s, true
}

// slowDomain runs the IDNA2008 lookup profile and converts to U-labels
// (RFC 7622 §3.2.1 forbids A-labels in a prepared domainpart). It then
// rejects empty labels, which the UTS #46 processing tolerates (a second
// trailing dot, or one produced by mapping U+3002), and labels whose A-label
// exceeds 63 octets.
func slowDomain(s string) (string, error) {
	u, err := idnaProfile.ToUnicode(s)
	if err != nil {
		return "", &Error{Part: PartDomain, Reason: ReasonDisallowed, Err: err}
	}
	for label := range strings.SplitSeq(u, ".") {
		if label == "" {
			return "", &Error{Part: PartDomain, Reason: ReasonEmpty}
		}
		n := len(label)
		if !isASCII(label) {
			a, err := idna.Punycode.ToASCII(label)
			if err != nil {
				return "", &Error{Part: PartDomain, Reason: ReasonDisallowed, Err: err}
			}
			n = len(a)
		}
		if n > maxLabel {
			return "", &Error{Part: PartDomain, Reason: ReasonTooLong}
		}
	}
	return u, nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// asciiLower lower-cases A-Z in an ASCII string. strings.ToLower has an
// ASCII fast path that allocates once; callers only pass ASCII.
func asciiLower(s string) string { return strings.ToLower(s) }
