package sasl

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"hash"
	"slices"
	"strconv"
	"strings"

	"parley/internal/storage"
)

// serverConv is the server side of one SCRAM conversation (RFC 5802 §5),
// the message syntax and the proof check. It is Parley's own rather than
// a library's because XEP-0474 adds an attribute to server-first-message
// that the signatures must cover, which needs the server to own that
// message. scramSession wraps it with the mechanism policy (gs2 flags,
// channel binding data, unknown users).
type serverConv struct {
	newHash func() hash.Hash
	// cbData is the binding data expected in client-final-message after a
	// "p" flag; nil otherwise.
	cbData []byte

	gs2Header, c1b, s1, nonce string
	username, authzid         string
	key                       storage.ScramKey
	valid                     bool
}

var (
	errSCRAMSyntax   = errors.New("malformed SCRAM message")
	errSCRAMBinding  = errors.New("channel bindings do not match")
	errSCRAMProof    = errors.New("invalid proof")
	errSCRAMNonce    = errors.New("nonce does not match")
	errSCRAMUserName = errors.New("invalid username encoding")
)

// first parses client-first-message, asks lookup for the user's key (after
// decoding the name) and returns server-first-message, with ",h=" and
// the downgrade protection hash appended when ssdp is not empty
// (XEP-0474 §5.1). Errors from lookup are returned as they are.
func (sc *serverConv) first(c1 string, lookup func(user string) (storage.ScramKey, error), ssdp string) (string, error) {
	fields := strings.Split(c1, ",")
	if len(fields) < 4 {
		return "", errSCRAMSyntax
	}
	if fields[1] != "" {
		raw, ok := strings.CutPrefix(fields[1], "a=")
		if !ok {
			return "", errSCRAMSyntax
		}
		if sc.authzid, ok = decodeSaslname(raw); !ok {
			return "", errSCRAMSyntax
		}
	}
	// "m=" is a mandatory extension; none is defined, so it must fail.
	raw, ok := strings.CutPrefix(fields[2], "n=")
	if !ok {
		return "", errSCRAMSyntax
	}
	if sc.username, ok = decodeSaslname(raw); !ok {
		return "", errSCRAMUserName
	}
	cnonce, ok := strings.CutPrefix(fields[3], "r=")
	if !ok || !validNonce(cnonce) {
		return "", errSCRAMSyntax
	}
	key, err := lookup(sc.username)
	if err != nil {
		return "", err
	}
	sc.key = key
	sc.gs2Header = fields[0] + "," + fields[1] + ","
	sc.c1b = strings.Join(fields[2:], ",")
	sc.nonce = cnonce + newNonce()
	sc.s1 = "r=" + sc.nonce + ",s=" + base64.StdEncoding.EncodeToString(key.Salt) + ",i=" + strconv.Itoa(key.Iterations)
	if ssdp != "" {
		sc.s1 += ",h=" + ssdp
	}
	return sc.s1, nil
}

// final checks client-final-message and returns server-final-message.
func (sc *serverConv) final(c2 string) (string, error) {
	fields := strings.Split(c2, ",")
	if len(fields) < 3 {
		return "", errSCRAMSyntax
	}
	cb64, ok1 := strings.CutPrefix(fields[0], "c=")
	nonce, ok2 := strings.CutPrefix(fields[1], "r=")
	p64, ok3 := strings.CutPrefix(fields[len(fields)-1], "p=")
	if !ok1 || !ok2 || !ok3 {
		return "", errSCRAMSyntax
	}
	cbind, err1 := base64.StdEncoding.DecodeString(cb64)
	proof, err2 := base64.StdEncoding.DecodeString(p64)
	if err1 != nil || err2 != nil {
		return "", errSCRAMSyntax
	}
	want := append([]byte(sc.gs2Header), sc.cbData...)
	if !hmac.Equal(cbind, want) {
		return "", errSCRAMBinding
	}
	if nonce != sc.nonce {
		return "", errSCRAMNonce
	}
	authMsg := []byte(sc.c1b + "," + sc.s1 + "," + c2[:strings.LastIndex(c2, ",")])
	sig := hmacSum(sc.newHash, sc.key.StoredKey, authMsg)
	if len(proof) != len(sig) {
		return "", errSCRAMProof
	}
	clientKey := make([]byte, len(sig))
	for i := range sig {
		clientKey[i] = proof[i] ^ sig[i]
	}
	h := sc.newHash()
	h.Write(clientKey)
	if !hmac.Equal(h.Sum(nil), sc.key.StoredKey) {
		return "", errSCRAMProof
	}
	sc.valid = true
	return "v=" + base64.StdEncoding.EncodeToString(hmacSum(sc.newHash, sc.key.ServerKey, authMsg)), nil
}

// decodeSaslname undoes RFC 5802 §5.1's escaping; '=' must start "=2C" or
// "=3D", and the result may not be empty.
func decodeSaslname(s string) (string, bool) {
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '=')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", false
		}
		s = s[i+3:]
	}
	return b.String(), b.Len() > 0
}

// validNonce: printable ASCII except ',' (RFC 5802 §7), not empty.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

// newNonce is the server's part of the nonce: 24 random bytes, base64.
func newNonce() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// Advertised is what a stream offered before authentication, for
// XEP-0474: the mechanisms of the SASL profile the client is using and
// the XEP-0440 channel-binding types (nil when none were announced).
type Advertised struct {
	Mechanisms      []string
	ChannelBindings []string
}

// ssdp computes the XEP-0474 hash of a with newHash: the sorted
// mechanisms joined by 0x1E, then, if channel bindings were announced,
// 0x1F and the sorted types joined by 0x1E; base64.
func (a *Advertised) ssdp(newHash func() hash.Hash) string {
	m := slices.Clone(a.Mechanisms)
	slices.Sort(m)
	s := strings.Join(m, "\x1e")
	if a.ChannelBindings != nil {
		c := slices.Clone(a.ChannelBindings)
		slices.Sort(c)
		s += "\x1f" + strings.Join(c, "\x1e")
	}
	h := newHash()
	h.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
