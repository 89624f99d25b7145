package upload

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// slot is what a PUT URL's token grants: one upload of exactly this file,
// by this account, before Expires. The server keeps no record of the slots
// it hands out; the HMAC makes them unforgeable, the expiry bounds them, and
// the store's refusal to overwrite makes each one usable once.
type slot struct {
	ID       string `json:"i"`
	Filename string `json:"f"`
	Size     int64  `json:"s"`
	Type     string `json:"t"`
	Owner    string `json:"o"`
	Expires  int64  `json:"e"` // Unix seconds
}

// expiresAt is the Expires of a slot valid for d from now: rounded up to
// the whole second, so a slot is never valid for less than d (truncating
// would take up to a second off, all of a slot_timeout of "1s").
func expiresAt(now time.Time, d time.Duration) int64 {
	t := now.Add(d)
	secs := t.Unix()
	if t.Nanosecond() > 0 {
		secs++
	}
	return secs
}

// The MAC covers a context string and the service domain besides the
// payload, so a token is valid for one purpose on one service even if the
// key were ever shared.
const tokenContext = "parley XEP-0363 slot v1\x00"

// maxTokenLen bounds what verify decodes (the Authorization header is
// also bounded by https.max_header_bytes).
const maxTokenLen = 4096

func mac(key []byte, domain, payload string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(tokenContext))
	m.Write([]byte(domain))
	m.Write([]byte{0})
	m.Write([]byte(payload))
	return m.Sum(nil)
}

// sign returns the token for s: base64url(JSON) "." base64url(HMAC-SHA256).
func sign(key []byte, domain string, s slot) string {
	js, _ := json.Marshal(s)
	p := base64.RawURLEncoding.EncodeToString(js)
	return p + "." + base64.RawURLEncoding.EncodeToString(mac(key, domain, p))
}

var errBadToken = errors.New("invalid upload token")

// verify checks a token's MAC (in constant time) before it looks at the
// payload, and returns the slot; expiry is the caller's to check.
func verify(key []byte, domain, tok string) (slot, error) {
	if len(tok) > maxTokenLen {
		return slot{}, errBadToken
	}
	p, sig, ok := strings.Cut(tok, ".")
	if !ok {
		return slot{}, errBadToken
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, mac(key, domain, p)) {
		return slot{}, errBadToken
	}
	js, err := base64.RawURLEncoding.DecodeString(p)
	if err != nil {
		return slot{}, errBadToken
	}
	var s slot
	if err := json.Unmarshal(js, &s); err != nil {
		return slot{}, errBadToken
	}
	return s, nil
}

func (s slot) expired(now time.Time) bool { return !now.Before(time.Unix(s.Expires, 0)) }

// idLen is the length of a slot id: 16 random bytes (128 bits, beyond
// guessing) in unpadded base64url.
const idLen = 22

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validID reports whether s has the shape of a slot id. Every path the
// store builds comes from a string that passed this check.
func validID(s string) bool { return len(s) == idLen && validIDChars(s) }

func validIDChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return s != ""
}
