package gssapi

import (
	"bytes"
	"errors"
)

// oidKRB5DER is the Kerberos V5 GSS-API mechanism, 1.2.840.113554.1.2.2
// (RFC 1964 §1), in DER.
var oidKRB5DER = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}

// Inner token identifiers of RFC 4121 §4.1 (context establishment).
var (
	tokAPReq = []byte{0x01, 0x00}
	tokAPRep = []byte{0x02, 0x00}
)

var errDefective = errors.New("gssapi: defective token")

// derLength reads a DER length at b[0:]; it returns the length and the
// number of bytes it took. Only definite lengths up to 4 octets are
// accepted (tokens are bounded by MaxTokenBytes long before that).
func derLength(b []byte) (n, size int, err error) {
	if len(b) == 0 {
		return 0, 0, errDefective
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 4 || len(b) < 1+k {
		return 0, 0, errDefective
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	if n < 0x80 || (k > 1 && b[1] == 0) {
		return 0, 0, errDefective // not the shortest form: not DER
	}
	return n, 1 + k, nil
}

func derLengthBytes(n int) []byte {
	switch {
	case n < 0x80:
		return []byte{byte(n)}
	case n < 0x100:
		return []byte{0x81, byte(n)}
	case n < 0x10000:
		return []byte{0x82, byte(n >> 8), byte(n)}
	default:
		return []byte{0x83, byte(n >> 16), byte(n >> 8), byte(n)}
	}
}

// parseInitialToken unwraps an RFC 2743 §3.1 InitialContextToken of the
// Kerberos mechanism and returns its AP-REQ (after the TOK_ID). Any other
// mechanism, a trailing byte or a length that does not add up is
// errDefective.
func parseInitialToken(b []byte) ([]byte, error) {
	if len(b) < 2 || b[0] != 0x60 {
		return nil, errDefective
	}
	n, size, err := derLength(b[1:])
	if err != nil || 1+size+n != len(b) {
		return nil, errDefective
	}
	body := b[1+size:]
	if !bytes.HasPrefix(body, oidKRB5DER) {
		return nil, errDefective
	}
	body = body[len(oidKRB5DER):]
	if !bytes.HasPrefix(body, tokAPReq) {
		return nil, errDefective
	}
	return body[len(tokAPReq):], nil
}

// initialToken frames an inner Kerberos token as RFC 2743 §3.1 does (the
// AP-REP answer uses the same framing in MIT and Heimdal, RFC 4121 §4.1).
func initialToken(tokID, inner []byte) []byte {
	n := len(oidKRB5DER) + len(tokID) + len(inner)
	out := append([]byte{0x60}, derLengthBytes(n)...)
	out = append(out, oidKRB5DER...)
	out = append(out, tokID...)
	return append(out, inner...)
}
