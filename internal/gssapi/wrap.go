package gssapi

import (
	"bytes"
	"crypto/hmac"
	"encoding/binary"
	"errors"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"
)

// RFC 4121 §4.2.6.2 Wrap tokens: a 16-byte header (TOK_ID 05 04, flags,
// filler FF, EC, RRC, SND_SEQ), then either the plaintext and a checksum
// of {plaintext | header} (no confidentiality), or the encryption of
// {plaintext | EC filler bytes | header}. RRC rotates everything after
// the header right by RRC bytes.

const (
	wrapHeaderLen = 16

	flagSentByAcceptor = 0x01
	flagSealed         = 0x02
	flagAcceptorSubkey = 0x04
)

var tokWrap = []byte{0x05, 0x04}

var errBadWrap = errors.New("gssapi: wrap token rejected")

// wrapHeader builds a header; ec and rrc as given.
func wrapHeader(flags byte, ec, rrc uint16, seq uint64) []byte {
	h := make([]byte, wrapHeaderLen)
	copy(h, tokWrap)
	h[2] = flags
	h[3] = 0xff
	binary.BigEndian.PutUint16(h[4:], ec)
	binary.BigEndian.PutUint16(h[6:], rrc)
	binary.BigEndian.PutUint64(h[8:], seq)
	return h
}

// wrap makes an acceptor's Wrap token without confidentiality, as
// RFC 4752 §3.1 asks of the server's security-layer message
// (GSS_Wrap with conf_flag FALSE).
func wrap(key types.EncryptionKey, acceptorSubkey bool, seq uint64, payload []byte) ([]byte, error) {
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, err
	}
	flags := byte(flagSentByAcceptor)
	if acceptorSubkey {
		flags |= flagAcceptorSubkey
	}
	// The checksum covers the header with EC and RRC zero.
	sum, err := et.GetChecksumHash(key.KeyValue, append(append([]byte{}, payload...), wrapHeader(flags, 0, 0, seq)...), keyusage.GSSAPI_ACCEPTOR_SEAL)
	if err != nil {
		return nil, err
	}
	out := wrapHeader(flags, uint16(len(sum)), 0, seq)
	out = append(out, payload...)
	return append(out, sum...), nil
}

// unwrap checks an initiator's Wrap token and returns its plaintext. Both
// forms are accepted: clients that call GSS_Wrap with confidentiality
// (some do, though RFC 4752 does not need it) send sealed tokens.
func unwrap(key types.EncryptionKey, acceptorSubkey bool, tok []byte) ([]byte, error) {
	if len(tok) < wrapHeaderLen || !bytes.Equal(tok[:2], tokWrap) || tok[3] != 0xff {
		return nil, errBadWrap
	}
	flags := tok[2]
	if flags&flagSentByAcceptor != 0 || flags&^(flagSentByAcceptor|flagSealed|flagAcceptorSubkey) != 0 {
		return nil, errBadWrap // our own token reflected, or unknown flags
	}
	if (flags&flagAcceptorSubkey != 0) != acceptorSubkey {
		return nil, errBadWrap
	}
	ec := binary.BigEndian.Uint16(tok[4:])
	rrc := binary.BigEndian.Uint16(tok[6:])
	seq := binary.BigEndian.Uint64(tok[8:])
	body := append([]byte{}, tok[wrapHeaderLen:]...)
	if len(body) > 0 {
		r := int(rrc) % len(body)
		body = append(body[r:], body[:r]...) // undo the right rotation
	}
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, err
	}
	if flags&flagSealed != 0 {
		plain, err := et.DecryptMessage(key.KeyValue, body, keyusage.GSSAPI_INITIATOR_SEAL)
		if err != nil || len(plain) < int(ec)+wrapHeaderLen {
			return nil, errBadWrap
		}
		n := len(plain) - wrapHeaderLen
		// The encrypted copy of the header has RRC zero (RFC 4121
		// §4.2.4) and must otherwise equal the clear one.
		if !bytes.Equal(plain[n:], wrapHeader(flags, ec, 0, seq)) {
			return nil, errBadWrap
		}
		return plain[:n-int(ec)], nil
	}
	if int(ec) > len(body) || int(ec) != et.GetHMACBitLength()/8 {
		return nil, errBadWrap
	}
	payload, sum := body[:len(body)-int(ec)], body[len(body)-int(ec):]
	want, err := et.GetChecksumHash(key.KeyValue, append(append([]byte{}, payload...), wrapHeader(flags, 0, 0, seq)...), keyusage.GSSAPI_INITIATOR_SEAL)
	if err != nil || !hmac.Equal(want, sum) {
		return nil, errBadWrap
	}
	return payload, nil
}
