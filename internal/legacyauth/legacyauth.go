// Package legacyauth implements the server side of XEP-0078 Non-SASL
// Authentication (jabber:iq:auth) as jabberd 1.x served it (Programming
// Jabber ch. 7, seed 004): plaintext <password/>, <digest/> (hex SHA-1 of
// stream ID + password) and the zero-knowledge <sequence/>/<token/>/<hash/>
// method, which XEP-0078 itself dropped but old clients still send.
//
// The package decides; the c2s layer runs the stream and creates the
// session. It also owns the password-setting paths (CreateAccount,
// SetPassword) because those must maintain the legacy state: the cleartext
// copy digest needs (only when a host enables digest) and the
// zero-knowledge hash chain (only when a host enables it).
package legacyauth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"parley/internal/config"
	"parley/internal/sasl"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// NS is the jabber:iq:auth namespace; NSFeature the stream feature's.
const (
	NS        = "jabber:iq:auth"
	NSFeature = "http://jabber.org/features/iq-auth"
)

// zkBucket holds the zero-knowledge chain per account: owner is the bare
// JID (so account deletion removes it), key zkKey, value "seq token hash".
const (
	zkBucket = "legacyauth-0k"
	zkKey    = "chain"
)

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}

// ZeroKnowledgeHash computes what seed 004's 0k script prints: hash0 =
// sha1_hex(sha1_hex(password) + token), then sequence more sha1_hex rounds.
func ZeroKnowledgeHash(password, token string, sequence int) string {
	h := sha1Hex(sha1Hex(password) + token)
	for i := 0; i < sequence; i++ {
		h = sha1Hex(h)
	}
	return h
}

// Digest computes the XEP-0078 digest: lowercase hex SHA1(streamID + password).
func Digest(streamID, password string) string { return sha1Hex(streamID + password) }

type chain struct {
	seq   int    // links left; the server answers get with seq-1
	token string // per-password random token
	hash  string // ZeroKnowledgeHash(password, token, seq)
}

func parseChain(b []byte) (chain, bool) {
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return chain{}, false
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 0 {
		return chain{}, false
	}
	return chain{seq: n, token: f[1], hash: f[2]}, true
}

func (c chain) bytes() []byte { return []byte(fmt.Sprintf("%d %s %s", c.seq, c.token, c.hash)) }

func newToken() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return strings.ToUpper(hex.EncodeToString(b))
}

// NewCredentials derives what storage keeps for a new password on host:
// the SCRAM keys always, and the cleartext password only when the host
// enables digest authentication (an explicit, documented admin decision).
func NewCredentials(cfg *config.Config, host, password string) (storage.Credentials, error) {
	creds, err := sasl.DeriveCredentials(password, cfg.Auth.ScramIterations)
	if err != nil {
		return storage.Credentials{}, err
	}
	if hc := cfg.HostByDomain(host); hc != nil && hc.LegacyAuth.Digest {
		creds.Plain = password
	}
	return creds, nil
}

// CreateAccount creates a with credentials for password (see NewCredentials)
// and initialises its zero-knowledge chain when the host enables it.
// storage.ErrExists if the username is taken.
func CreateAccount(ctx context.Context, st storage.Store, cfg *config.Config, a storage.Account, password string) error {
	creds, err := NewCredentials(cfg, a.Host, password)
	if err != nil {
		return err
	}
	a.Creds = creds
	if a.CreatedAt.IsZero() {
		a.CreatedAt = time.Now().UTC()
	}
	if err := st.Accounts().Create(ctx, a); err != nil {
		return err
	}
	return resetChain(ctx, st, cfg, a.Host, a.Username, password)
}

// SetPassword replaces the password of an existing account (registration
// password change, `parley user passwd`): new SCRAM keys, the cleartext copy
// only if the host enables digest (and dropped otherwise), and a fresh
// zero-knowledge chain (new token, full sequence) if the host enables it
// (and none otherwise). storage.ErrNotFound if there is no such account.
func SetPassword(ctx context.Context, st storage.Store, cfg *config.Config, host, user, password string) error {
	creds, err := NewCredentials(cfg, host, password)
	if err != nil {
		return err
	}
	if err := st.Accounts().SetCredentials(ctx, host, user, creds); err != nil {
		return err
	}
	return resetChain(ctx, st, cfg, host, user, password)
}

func resetChain(ctx context.Context, st storage.Store, cfg *config.Config, host, user, password string) error {
	owner := user + "@" + host
	hc := cfg.HostByDomain(host)
	if hc == nil || !hc.LegacyAuth.ZeroKnowledge {
		return st.KV().Delete(ctx, zkBucket, owner, zkKey)
	}
	n := hc.LegacyAuth.ZeroKnowledgeSequence
	tok := newToken()
	c := chain{seq: n, token: tok, hash: ZeroKnowledgeHash(password, tok, n)}
	return st.KV().Set(ctx, zkBucket, owner, zkKey, c.bytes())
}

// Stream describes the stream a request arrived on.
type Stream struct {
	ID         string
	Encrypted  bool
	RequireTLS bool // c2s.require_tls
}

// Methods are the legacy methods usable on one stream.
type Methods struct{ Plaintext, Digest, ZeroKnowledge bool }

// Any reports whether any method is usable.
func (m Methods) Any() bool { return m.Plaintext || m.Digest || m.ZeroKnowledge }

// MethodsFor applies the host's settings and the TLS rules: on an
// unencrypted stream nothing when c2s.require_tls is set, and plaintext
// only when legacy_auth.allow_without_tls.
func MethodsFor(hc *config.Host, s Stream) Methods {
	la := hc.LegacyAuth
	m := Methods{Plaintext: la.Plaintext, Digest: la.Digest, ZeroKnowledge: la.ZeroKnowledge}
	if !s.Encrypted {
		if s.RequireTLS {
			return Methods{}
		}
		m.Plaintext = m.Plaintext && la.AllowWithoutTLS
	}
	return m
}

// Authenticator answers jabber:iq:auth for one server. It serialises
// zero-knowledge updates so one chain link cannot be spent twice.
type Authenticator struct {
	cfg     *config.Config
	st      storage.Store
	fakeKey []byte
	fake    storage.Credentials

	zkMu sync.Mutex
}

// New returns an Authenticator. fakeKey is the per-server secret that keys
// the fake zero-knowledge token shown for unknown users.
func New(cfg *config.Config, st storage.Store, fakeKey []byte) *Authenticator {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	// A validated config always has usable iterations; should derivation
	// fail anyway, the empty fake credential still matches no password.
	fake, _ := sasl.DeriveCredentials(hex.EncodeToString(b), cfg.Auth.ScramIterations)
	return &Authenticator{cfg: cfg, st: st, fakeKey: fakeKey, fake: fake}
}

// Fields answers an iq get: <username/> (echoing the one asked about), the
// methods usable on this stream and always <resource/> (XEP-0078 §3.1).
// Unknown users get the same fields, with a stable fake token, so the
// answer does not reveal whether an account exists.
func (a *Authenticator) Fields(ctx context.Context, hc *config.Host, s Stream, q *xml.Element) *xml.Element {
	m := MethodsFor(hc, s)
	out := xml.New(NS, "query")
	raw := strings.TrimSpace(q.ChildText(NS, "username"))
	out.Append(xml.New(NS, "username").AppendText(raw))
	if m.Plaintext {
		out.Append(xml.New(NS, "password"))
	}
	if m.Digest {
		out.Append(xml.New(NS, "digest"))
	}
	if m.ZeroKnowledge && raw != "" {
		if seq, tok, ok := a.sequence(ctx, hc, raw); ok {
			out.Append(xml.New(NS, "sequence").AppendText(strconv.Itoa(seq)))
			out.Append(xml.New(NS, "token").AppendText(tok))
		}
	}
	out.Append(xml.New(NS, "resource"))
	return out
}

// sequence returns what to announce for username: the stored chain's
// seq-1, or for unknown users a fake; ok false when the account has no
// usable chain (exhausted, or password set while the method was off).
func (a *Authenticator) sequence(ctx context.Context, hc *config.Host, raw string) (int, string, bool) {
	user, err := normalize(raw, hc.Domain)
	if err == nil {
		if _, err := a.st.Accounts().Get(ctx, hc.Domain, user); err == nil {
			c, ok := a.loadChain(ctx, hc.Domain, user)
			if !ok || c.seq < 1 {
				return 0, "", false
			}
			return c.seq - 1, c.token, true
		}
	}
	m := hmac.New(sha256.New, a.fakeKey)
	m.Write([]byte("parley legacyauth fake token\x00" + hc.Domain + "\x00" + raw))
	return hc.LegacyAuth.ZeroKnowledgeSequence - 1, strings.ToUpper(hex.EncodeToString(m.Sum(nil)[:4])), true
}

func (a *Authenticator) loadChain(ctx context.Context, host, user string) (chain, bool) {
	b, err := a.st.KV().Get(ctx, zkBucket, user+"@"+host, zkKey)
	if err != nil {
		return chain{}, false
	}
	return parseChain(b)
}

func normalize(raw, host string) (string, error) {
	j, err := jid.New(raw, host, "")
	if err != nil {
		return "", err
	}
	return j.Local(), nil
}

// Error is a refused iq set: the stanza condition to answer with, and
// whether it counts as a failed credential check (for brute-force
// accounting and the per-connection failure limit).
type Error struct {
	Cond      stanza.Condition
	Text      string
	BadSecret bool
	Mechanism string
}

func (e *Error) Error() string { return "legacyauth: " + string(e.Cond) + " " + e.Text }

// Result is a successful credential check.
type Result struct {
	Username  string // normalized localpart
	Resource  string // validated resourcepart
	Mechanism string // "iq-auth-plaintext", "iq-auth-digest", "iq-auth-0k"
}

// Mechanism names for logs and metrics.
const (
	MechPlaintext = "iq-auth-plaintext"
	MechDigest    = "iq-auth-digest"
	MechZeroK     = "iq-auth-0k"
)

// Authenticate checks an iq set. Missing username or resource, or no
// credential for a method usable on this stream: not-acceptable (406).
// Wrong credentials, unknown or disabled users, an exhausted
// zero-knowledge chain: not-authorized (401), all alike.
func (a *Authenticator) Authenticate(ctx context.Context, hc *config.Host, s Stream, q *xml.Element) (Result, *Error) {
	m := MethodsFor(hc, s)
	raw := strings.TrimSpace(q.ChildText(NS, "username"))
	res := strings.TrimSpace(q.ChildText(NS, "resource"))
	if raw == "" || res == "" {
		return Result{}, &Error{Cond: stanza.NotAcceptable, Text: "username and resource are required"}
	}
	var mech string
	var secret string
	switch {
	case m.ZeroKnowledge && q.Child(NS, "hash") != nil:
		mech, secret = MechZeroK, strings.ToLower(strings.TrimSpace(q.ChildText(NS, "hash")))
	case m.Digest && q.Child(NS, "digest") != nil:
		mech, secret = MechDigest, strings.ToLower(strings.TrimSpace(q.ChildText(NS, "digest")))
	case m.Plaintext && q.Child(NS, "password") != nil:
		mech, secret = MechPlaintext, q.ChildText(NS, "password")
	default:
		return Result{}, &Error{Cond: stanza.NotAcceptable, Text: "no credentials for an authentication method offered on this stream"}
	}
	denied := &Error{Cond: stanza.NotAuthorized, BadSecret: true, Mechanism: mech}
	user, err := normalize(raw, hc.Domain)
	if err != nil {
		if mech == MechPlaintext {
			sasl.VerifyPassword(a.fake, secret)
		}
		return Result{}, denied
	}
	full, err := jid.New(user, hc.Domain, res)
	if err != nil {
		return Result{}, &Error{Cond: stanza.NotAcceptable, Text: "invalid resource"}
	}
	acct, err := a.st.Accounts().Get(ctx, hc.Domain, user)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if mech == MechPlaintext {
			sasl.VerifyPassword(a.fake, secret) // same cost as a real check
		}
		return Result{}, denied
	case err != nil:
		return Result{}, &Error{Cond: stanza.InternalServerError, Mechanism: mech}
	}
	ok := false
	switch mech {
	case MechPlaintext:
		ok = sasl.VerifyPassword(acct.Creds, secret)
	case MechDigest:
		ok = acct.Creds.Plain != "" && subtle.ConstantTimeCompare([]byte(Digest(s.ID, acct.Creds.Plain)), []byte(secret)) == 1
	case MechZeroK:
		ok = a.spendLink(ctx, hc.Domain, user, secret)
	}
	if !ok || acct.Disabled {
		return Result{}, denied
	}
	return Result{Username: user, Resource: full.Resource(), Mechanism: mech}, nil
}

// spendLink verifies a zero-knowledge hash: sha1_hex(client hash) must be
// the stored hash; then the client's hash is stored and the sequence
// decremented, so a captured hash is useless next time. A chain at 0 is
// refused until the password is set again.
func (a *Authenticator) spendLink(ctx context.Context, host, user, clientHash string) bool {
	a.zkMu.Lock()
	defer a.zkMu.Unlock()
	c, ok := a.loadChain(ctx, host, user)
	if !ok || c.seq < 1 || len(clientHash) != 40 {
		return false
	}
	if subtle.ConstantTimeCompare([]byte(sha1Hex(clientHash)), []byte(c.hash)) != 1 {
		return false
	}
	next := chain{seq: c.seq - 1, token: c.token, hash: clientHash}
	return a.st.KV().Set(ctx, zkBucket, user+"@"+host, zkKey, next.bytes()) == nil
}
