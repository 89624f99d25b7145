package sasl

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"

	"parley/internal/storage"
)

// maxSCRAMMessage bounds a single SCRAM message. Real ones are a few hundred
// bytes; the stream layer limits stanza size too, this only keeps the
// mechanism from parsing megabytes of junk.
const maxSCRAMMessage = 4096

type scramState int

const (
	scramWantFirst scramState = iota
	scramWantFinal
	scramFinished
)

// scramSession is one SCRAM exchange (RFC 5802 §5). serverConv does the
// message syntax and the proof; this type adds the gs2 policy of each
// mechanism variant, the channel binding data, indistinguishable unknown
// users, the XEP-0474 hash, and the mapping of errors to RFC 6120
// conditions.
type scramSession struct {
	name string
	fam  scramFamily
	plus bool
	env  Env

	state      scramState
	challenged bool // sent an empty challenge for a missing initial response
	conv       *serverConv

	username  string
	authzid   string
	unknown   bool  // no usable credentials: answer with a fake salt, then fail
	lookupErr error // storage failure seen by the lookup callback
}

func newSCRAMSession(name string, fam scramFamily, plus bool, env Env) *scramSession {
	return &scramSession{name: name, fam: fam, plus: plus, env: env}
}

func (s *scramSession) Name() string     { return s.name }
func (s *scramSession) Username() string { return s.username }
func (s *scramSession) Authzid() string  { return s.authzid }

func (s *scramSession) Next(msg []byte) ([]byte, bool, error) {
	switch s.state {
	case scramWantFirst:
		if msg == nil && !s.challenged {
			// No initial response: SCRAM is client-first, so ask for it
			// with an empty challenge (RFC 6120 §6.4.2).
			s.challenged = true
			return []byte{}, false, nil
		}
		out, err := s.first(msg)
		if err != nil {
			s.state = scramFinished
			// Nothing in client-first-message is checked against the
			// credentials (the proof comes in client-final-message).
			if f, ok := err.(*Failure); ok && f.Condition != CondTemporaryAuthFailure {
				f.Negotiation = true
			}
			return nil, false, err
		}
		s.state = scramWantFinal
		return out, false, nil
	case scramWantFinal:
		s.state = scramFinished
		out, err := s.final(msg)
		if err != nil {
			return nil, false, err
		}
		return out, true, nil
	default:
		return nil, false, fail(CondMalformedRequest, "exchange already finished")
	}
}

// checkText rejects what no SCRAM message may contain before handing it to
// the parser: RFC 5802 messages are UTF-8 and never contain NUL.
func checkText(msg []byte) *Failure {
	switch {
	case len(msg) == 0:
		return fail(CondMalformedRequest, "empty SCRAM message")
	case len(msg) > maxSCRAMMessage:
		return fail(CondMalformedRequest, "SCRAM message too long")
	case !utf8.Valid(msg):
		return fail(CondMalformedRequest, "SCRAM message is not UTF-8")
	case bytes.IndexByte(msg, 0) >= 0:
		return fail(CondMalformedRequest, "SCRAM message contains NUL")
	}
	return nil
}

// first handles client-first-message and returns server-first-message.
func (s *scramSession) first(msg []byte) ([]byte, error) {
	if f := checkText(msg); f != nil {
		return nil, f
	}
	c1 := string(msg)
	flag, _, ok := strings.Cut(c1, ",")
	if !ok {
		return nil, fail(CondMalformedRequest, "missing gs2 header")
	}

	// The gs2 channel binding flag is where the mechanism variants differ:
	// RFC 5802 §6 ties "p" to -PLUS and "n"/"y" to the plain variants.
	s.conv = &serverConv{newHash: s.fam.hash}
	switch {
	case s.plus:
		cbType, isP := strings.CutPrefix(flag, "p=")
		if !isP {
			return nil, fail(CondMalformedRequest, "-PLUS mechanism requires a channel binding (gs2 flag \"p\")")
		}
		if !validCBName(cbType) {
			return nil, fail(CondMalformedRequest, "malformed channel binding name")
		}
		data, ok := channelBindingData(cbType, s.env.TLS, s.env.ServerCert)
		if !ok {
			return nil, fail(CondNotAuthorized, "unsupported-channel-binding-type")
		}
		s.conv.cbData = data
	case flag == "n":
	case flag == "y":
		// The client supports channel binding but believes we do not. If
		// we offered -PLUS, someone stripped it from <mechanisms/> on the
		// way: a downgrade attack (RFC 5802 §6).
		if s.env.plusOffered() {
			return nil, fail(CondNotAuthorized, "server-does-support-channel-binding")
		}
	case strings.HasPrefix(flag, "p="):
		return nil, fail(CondMalformedRequest, "channel binding requested with a non-PLUS mechanism")
	default:
		return nil, fail(CondMalformedRequest, "invalid gs2 channel binding flag")
	}

	ssdp := ""
	if s.env.Advertised != nil {
		ssdp = s.env.Advertised.ssdp(s.fam.hash)
	}
	resp, err := s.conv.first(c1, s.lookup, ssdp)
	if err != nil {
		if s.lookupErr != nil {
			return nil, fail(CondTemporaryAuthFailure, "")
		}
		return nil, fail(CondMalformedRequest, "malformed client-first-message")
	}
	s.authzid = s.conv.authzid
	return []byte(resp), nil
}

// final handles client-final-message and returns server-final-message.
func (s *scramSession) final(msg []byte) ([]byte, error) {
	if f := checkText(msg); f != nil {
		return nil, f
	}
	resp, err := s.conv.final(string(msg))
	switch {
	case errors.Is(err, errSCRAMSyntax):
		return nil, fail(CondMalformedRequest, "malformed client-final-message")
	case errors.Is(err, errSCRAMBinding):
		return nil, fail(CondNotAuthorized, "channel-bindings-dont-match")
	case err != nil:
		// invalid-proof, or a nonce/proof-length mismatch. The same
		// answer for unknown users and wrong passwords.
		return nil, fail(CondNotAuthorized, "")
	}
	if s.unknown || !s.conv.valid {
		// Cannot happen with random fake keys, but an unknown user must
		// never be let in, whatever the proof check concluded.
		return nil, fail(CondNotAuthorized, "")
	}
	return []byte(resp), nil
}

// lookup is the credential lookup for the conversation. Unknown users,
// names that do not normalize and accounts without a usable key for this
// family all get a fake credential so the server-first-message looks like
// a real one; only storage failures are errors.
func (s *scramSession) lookup(authcid string) (storage.ScramKey, error) {
	name := authcid
	normOK := true
	if s.env.Normalize != nil {
		n, err := s.env.Normalize(authcid)
		if err != nil {
			normOK = false
		} else {
			name = n
		}
	}
	s.username = name

	var key storage.ScramKey
	found := false
	if normOK && name != "" {
		creds, err := s.env.Lookup(s.env.ctx(), name)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			s.lookupErr = err
			return storage.ScramKey{}, err
		default:
			key, found = creds.Keys[s.fam.name]
			found = found && validKey(s.fam, key)
		}
	}
	if !found {
		s.unknown = true
		key = fakeKey(s.fam, s.env.FakeSaltKey, name, s.env.iterations())
	}
	return key, nil
}

// validCBName checks cb-name = 1*(ALPHA / DIGIT / "." / "-") (RFC 5802 §7).
func validCBName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}
