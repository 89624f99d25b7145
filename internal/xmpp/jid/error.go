package jid

// Part names the part of a JID an error refers to.
type Part uint8

// The three parts of a JID (RFC 7622 §3.1).
const (
	PartLocal Part = iota + 1
	PartDomain
	PartResource
)

// String returns "localpart", "domainpart" or "resourcepart".
func (p Part) String() string {
	switch p {
	case PartLocal:
		return "localpart"
	case PartDomain:
		return "domainpart"
	case PartResource:
		return "resourcepart"
	}
	return "part"
}

// Reason classifies why a JID was rejected. All reasons map to the
// jid-malformed stanza error (RFC 6120 §8.3.3.8) or, in a stream header, to
// the improper-addressing / invalid-from stream errors; the distinction
// exists for logs and tests.
type Reason uint8

const (
	// ReasonEmpty: a part is missing although required (the domainpart,
	// or a localpart/resourcepart whose separator is present, as in
	// "@example.com" or "juliet@example.com/"), or a domain label is empty.
	ReasonEmpty Reason = iota + 1
	// ReasonTooLong: a part exceeds 1023 octets after preparation, or a
	// domain label exceeds 63 octets in A-label form.
	ReasonTooLong
	// ReasonInvalidUTF8: the input is not valid UTF-8.
	ReasonInvalidUTF8
	// ReasonForbiddenChar: the localpart contains one of the characters
	// excluded by RFC 7622 §3.3.1: " & ' / : < > @.
	ReasonForbiddenChar
	// ReasonDisallowed: the PRECIS profile (UsernameCaseMapped,
	// OpaqueString) or IDNA2008 rejected the part; Err holds the detail.
	ReasonDisallowed
	// ReasonInvalidIP: a bracketed domainpart is not a valid IPv6 address.
	ReasonInvalidIP
)

// String returns a short description of the reason.
func (r Reason) String() string {
	switch r {
	case ReasonEmpty:
		return "empty"
	case ReasonTooLong:
		return "too long"
	case ReasonInvalidUTF8:
		return "invalid UTF-8"
	case ReasonForbiddenChar:
		return "forbidden character"
	case ReasonDisallowed:
		return "disallowed code point or label"
	case ReasonInvalidIP:
		return "invalid IP literal"
	}
	return "invalid"
}

// Error is the error returned for every malformed JID. It is typed so that
// protocol code can tell an addressing error (answered with jid-malformed)
// from an internal failure with errors.As.
type Error struct {
	Part   Part
	Reason Reason
	// Err is the underlying PRECIS, IDNA or netip error, if any.
	Err error
}

func (e *Error) Error() string {
	s := "jid: " + e.Part.String() + ": " + e.Reason.String()
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }
