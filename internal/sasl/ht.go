package sasl

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"time"
	"unicode/utf8"

	"parley/internal/storage"
)

// The Hashed Token mechanisms (draft-schmaus-kitten-sasl-ht) that
// XEP-0484 FAST logins use. The suffix names the channel binding:
// -NONE none, -ENDP tls-server-end-point, -EXPR tls-exporter. -UNIQ
// (tls-unique) is never offered, for the reasons ChannelBindingTypes gives.
const (
	HTSHA256None = "HT-SHA-256-NONE"
	HTSHA256Endp = "HT-SHA-256-ENDP"
	HTSHA256Expr = "HT-SHA-256-EXPR"
	HTSHA256Uniq = "HT-SHA-256-UNIQ"
)

// FASTTokenBytes is the random length of a FAST token. Its text form (86
// characters) is longer than SHA-256's 64-byte block, so HMAC-SHA-256
// keyed with the token is HMAC-SHA-256 keyed with SHA-256(token) (RFC 2104
// §2: longer keys are hashed first). That is why storage holds only the
// hash and can still check a login.
const FASTTokenBytes = 64

// maxHTMessage bounds an HT initial response: an authcid (at most 1023
// octets as a JID localpart) and a 32-byte hash.
const maxHTMessage = 2048

// NewFASTToken returns a fresh token to give the client and the hash to
// store in its place.
func NewFASTToken() (token string, hash []byte) {
	b := make([]byte, FASTTokenBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	token = base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(token))
	return token, h[:]
}

// HTMechanisms lists the HT mechanisms usable on a connection, channel
// binding first (XEP-0484 wants one with and one without): -EXPR and
// -ENDP where ChannelBindingTypes has their type, then -NONE.
func HTMechanisms(tlsState *tls.ConnectionState, serverCert *x509.Certificate) []string {
	var out []string
	for _, t := range ChannelBindingTypes(tlsState, serverCert) {
		switch t {
		case CBTLSExporter:
			out = append(out, HTSHA256Expr)
		case CBTLSServerEndPoint:
			out = append(out, HTSHA256Endp)
		}
	}
	return append(out, HTSHA256None)
}

// htBinding is the channel binding type of an HT mechanism, "" for -NONE.
func htBinding(name string) (cbType string, ok bool) {
	switch name {
	case HTSHA256None:
		return "", true
	case HTSHA256Endp:
		return CBTLSServerEndPoint, true
	case HTSHA256Expr:
		return CBTLSExporter, true
	}
	return "", false
}

// FASTEnv is what an HT exchange needs beyond Env (whose TLS, ServerCert,
// Normalize and Ctx it uses).
type FASTEnv struct {
	// Tokens returns the stored tokens of username for the client that
	// is logging in (at most two: its current and its new one); none,
	// or storage.ErrNotFound, for an unknown user or client. Other
	// errors fail the exchange with temporary-auth-failure.
	Tokens func(username string) ([]storage.FASTToken, error)
	// Now is the clock that decides expiry; nil means time.Now.
	Now func() time.Time
}

// HTSession is one HT exchange: the client's single message
// "authcid NUL HMAC(token, "Initiator" || cb-data)" answered by
// HMAC(token, "Responder" || cb-data) as the success data. It is a
// Session; Token says which stored token matched, which the caller must
// then record as used (storage.FASTTokens.Use) before it lets the client
// in.
type HTSession struct {
	name     string
	env      Env
	fast     FASTEnv
	done     bool
	username string
	token    storage.FASTToken
}

// StartFAST begins an HT exchange with the named mechanism. Mechanisms
// HTMechanisms would not list for the connection (and anything else) are
// *Failure{invalid-mechanism}; HT without TLS is refused, since a token
// travels as well as a password does (XEP-0484 §8).
func StartFAST(name string, env Env, fast FASTEnv) (*HTSession, error) {
	if !encrypted(env.TLS) && !env.AllowPlainWithoutTLS {
		return nil, fail(CondEncryptionRequired, "")
	}
	ok := false
	for _, m := range HTMechanisms(env.TLS, env.ServerCert) {
		ok = ok || m == name
	}
	if !ok || fast.Tokens == nil {
		return nil, fail(CondInvalidMechanism, "")
	}
	return &HTSession{name: name, env: env, fast: fast}, nil
}

func (s *HTSession) Name() string { return s.name }

// Username is the authenticated localpart after success.
func (s *HTSession) Username() string { return s.username }

// Authzid is always empty: the HT message has no authorization identity.
func (s *HTSession) Authzid() string { return "" }

// Token is the stored token the client proved it holds (after success).
func (s *HTSession) Token() storage.FASTToken { return s.token }

// Next checks the client's only message. Unknown users, unknown clients,
// wrong tokens, revoked tokens and tokens of another mechanism all fail
// alike with not-authorized, after the same work: two HMACs and a
// constant-time comparison each, whatever was found. An expired token that
// matches fails with credentials-expired (XEP-0484 §5.2: the client
// should drop it and log in another way).
func (s *HTSession) Next(msg []byte) ([]byte, bool, error) {
	if s.done {
		return nil, false, fail(CondMalformedRequest, "exchange already finished")
	}
	s.done = true
	authcid, proof, f := parseHT(msg)
	if f != nil {
		f.Negotiation = true
		return nil, false, f
	}
	cbType, _ := htBinding(s.name)
	var cb []byte
	if cbType != "" {
		data, ok := channelBindingData(cbType, s.env.TLS, s.env.ServerCert)
		if !ok {
			return nil, false, &Failure{Condition: CondNotAuthorized, Text: "unsupported-channel-binding-type", Negotiation: true}
		}
		cb = data
	}

	name, normOK := authcid, true
	if s.env.Normalize != nil {
		n, err := s.env.Normalize(authcid)
		name, normOK = n, err == nil
	}
	var toks []storage.FASTToken
	if normOK && name != "" {
		t, err := s.fast.Tokens(name)
		switch {
		case errors.Is(err, storage.ErrNotFound):
		case err != nil:
			return nil, false, fail(CondTemporaryAuthFailure, "")
		default:
			toks = t
		}
	}

	// At least two candidates (a client's two slots): the stored ones
	// padded with keys no client holds, so the work does not depend on
	// what exists.
	var dummy [sha256.Size]byte
	match := -1
	for i := range max(2, len(toks)) {
		key, mech := dummy[:], ""
		if i < len(toks) {
			key, mech = toks[i].Hash, toks[i].Mechanism
		}
		want := htMAC(key, "Initiator", cb)
		if hmac.Equal(want, proof) && mech == s.name && i < len(toks) && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return nil, false, fail(CondNotAuthorized, "")
	}
	tok := toks[match]
	now := time.Now
	if s.fast.Now != nil {
		now = s.fast.Now
	}
	if !now().Before(tok.ExpiresAt) {
		return nil, false, fail(CondCredentialsExpired, "")
	}
	s.username, s.token = name, tok
	return htMAC(tok.Hash, "Responder", cb), true, nil
}

// htMAC is HMAC-SHA-256(key, label || cb). key is SHA-256 of the token,
// which for Parley's tokens gives the same MAC as the token itself (see
// FASTTokenBytes).
func htMAC(key []byte, label string, cb []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write(cb)
	return m.Sum(nil)
}

// parseHT splits "authcid NUL hash". The authcid is UTF-8 without NUL; the
// hash is exactly one SHA-256 output.
func parseHT(msg []byte) (authcid string, proof []byte, f *Failure) {
	if len(msg) == 0 || len(msg) > maxHTMessage {
		return "", nil, fail(CondMalformedRequest, "HT message missing or too long")
	}
	i := bytes.IndexByte(msg, 0)
	if i <= 0 {
		return "", nil, fail(CondMalformedRequest, "HT message has no authcid")
	}
	a, p := msg[:i], msg[i+1:]
	if !utf8.Valid(a) {
		return "", nil, fail(CondMalformedRequest, "authcid is not UTF-8")
	}
	if len(p) != sha256.Size {
		return "", nil, fail(CondMalformedRequest, "HT hash has the wrong length")
	}
	return string(a), p, nil
}
