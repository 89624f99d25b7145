// Package gssapi is the acceptor (server) side of the Kerberos V5 GSS-API
// mechanism (RFC 4121) that SASL GSSAPI (RFC 4752) needs: it verifies a
// client's AP-REQ against a service keytab, answers mutual authentication
// with an AP-REP, and makes and checks the Wrap tokens of the SASL
// security-layer negotiation. Ticket and authenticator decryption and the
// Kerberos crypto come from github.com/jcmturner/gokrb5; this package adds
// the GSS-API framing, the pinned service principal, a bounded replay
// cache, keytab reloading and error classes the SASL layer maps to
// RFC 6120 conditions.
//
// Only the RFC 4121 token formats are implemented, so the AES encryption
// types (aes128/256-cts-hmac-sha1-96 and -sha256-128/-sha384-192) work;
// single-DES and RC4 keys, whose tokens follow RFC 1964, are refused.
package gssapi

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	gofork "github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
)

// Error classes. Every error Accept and Context return wraps one of them.
var (
	// ErrDefective: the token is not a well-formed Kerberos GSS-API token
	// (garbage, truncated, another mechanism, oversized). No credential
	// was examined.
	ErrDefective = errors.New("gssapi: defective token")
	// ErrRejected: a well-formed token that does not authenticate anyone:
	// a ticket not for our principal or not decryptable with our keys,
	// expired, from a skewed clock, replayed, or a bad checksum.
	ErrRejected = errors.New("gssapi: authentication rejected")
	// ErrUnavailable: the server cannot check right now (keytab
	// unreadable, replay cache full). Not the client's fault.
	ErrUnavailable = errors.New("gssapi: unavailable")
)

// GSS-API checksum of the authenticator (RFC 4121 §4.1.1).
const (
	gssChecksumType = 0x8003
	gssMutualFlag   = 2
)

// Config is one acceptor's configuration.
type Config struct {
	// Keytab is the keytab file; it is read again when it changes.
	Keytab string
	// Principal is the service principal without realm,
	// "<service>/<hostname>". Tickets for anything else are rejected even
	// when the keytab holds its key.
	Principal string
	// MaxTokenBytes bounds the client's tokens.
	MaxTokenBytes int
	// MaxClockSkew is the tolerated clock difference.
	MaxClockSkew time.Duration
	// ReplayCacheSize bounds the replay cache.
	ReplayCacheSize int
}

// Acceptor accepts contexts for one service principal. It is safe for
// concurrent use.
type Acceptor struct {
	cfg    Config
	sname  types.PrincipalName
	replay *replayCache

	mu      sync.Mutex
	kt      *keytab.Keytab
	ktMod   time.Time
	ktSize  int64
	ktError error
}

// New loads the keytab and checks that it holds a key for the principal,
// so a wrong path or principal stops the server at start.
func New(cfg Config) (*Acceptor, error) {
	if cfg.MaxTokenBytes <= 0 || cfg.MaxClockSkew <= 0 || cfg.ReplayCacheSize <= 0 {
		return nil, errors.New("gssapi: MaxTokenBytes, MaxClockSkew and ReplayCacheSize must be positive")
	}
	parts := strings.Split(cfg.Principal, "/")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return nil, fmt.Errorf("gssapi: principal %q is not service/hostname", cfg.Principal)
	}
	a := &Acceptor{
		cfg:    cfg,
		sname:  types.PrincipalName{NameType: 2 /* KRB_NT_SRV_HST */, NameString: parts},
		replay: newReplayCache(cfg.ReplayCacheSize),
	}
	if _, err := a.keytab(); err != nil {
		return nil, err
	}
	return a, nil
}

// keytab returns the current keytab, reading the file again when its size
// or modification time changed (a rotated key needs no restart). A keytab
// that cannot be read keeps the previous one in use when there was one.
func (a *Acceptor) keytab() (*keytab.Keytab, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, err := os.Stat(a.cfg.Keytab)
	if err == nil && a.kt != nil && st.ModTime().Equal(a.ktMod) && st.Size() == a.ktSize {
		return a.kt, nil
	}
	if err == nil {
		var kt *keytab.Keytab
		kt, err = keytab.Load(a.cfg.Keytab)
		if err == nil && !hasPrincipal(kt, a.sname.NameString) {
			err = fmt.Errorf("holds no key for %s", a.cfg.Principal)
		}
		if err == nil {
			a.kt, a.ktMod, a.ktSize, a.ktError = kt, st.ModTime(), st.Size(), nil
			return kt, nil
		}
	}
	err = fmt.Errorf("gssapi: keytab %s: %v", a.cfg.Keytab, err)
	a.ktError = err
	if a.kt != nil {
		return a.kt, nil
	}
	return nil, err
}

// KeytabProblem reports why the keytab file could not be (re)read, nil
// when the last read succeeded. The acceptor goes on with the previous
// keys meanwhile.
func (a *Acceptor) KeytabProblem() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ktError
}

func hasPrincipal(kt *keytab.Keytab, name []string) bool {
	for _, e := range kt.Entries {
		if len(e.Principal.Components) == len(name) {
			same := true
			for i := range name {
				same = same && e.Principal.Components[i] == name[i]
			}
			if same {
				return true
			}
		}
	}
	return false
}

// Principal is an authenticated client principal: name components and
// realm as the KDC put them in the ticket.
type Principal struct {
	Components []string
	Realm      string
}

// String is the principal's usual text form, name/instance@REALM.
func (p Principal) String() string { return strings.Join(p.Components, "/") + "@" + p.Realm }

// Context is an established security context.
type Context struct {
	// Principal is who the client proved to be.
	Principal Principal
	// Mutual is set when the client asked for mutual authentication; the
	// AP-REP Accept returned must then reach it before anything else.
	Mutual bool

	key            types.EncryptionKey
	acceptorSubkey bool
	seq            uint64
}

// Wrap makes a Wrap token (integrity only) carrying payload.
func (c *Context) Wrap(payload []byte) ([]byte, error) {
	out, err := wrap(c.key, c.acceptorSubkey, c.seq, payload)
	if err != nil {
		return nil, fmt.Errorf("%w: wrap: %v", ErrUnavailable, err)
	}
	c.seq++
	return out, nil
}

// Unwrap checks a client's Wrap token and returns its payload.
func (c *Context) Unwrap(tok []byte) ([]byte, error) {
	p, err := unwrap(c.key, c.acceptorSubkey, tok)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRejected, err)
	}
	return p, nil
}

// Accept verifies a client's initial context token. remote is the client's
// address, checked against addresses a ticket may be restricted to. The
// returned token is the AP-REP for mutual authentication, nil otherwise.
func (a *Acceptor) Accept(tok []byte, remote net.IP) (ctx *Context, out []byte, err error) {
	if len(tok) > a.cfg.MaxTokenBytes {
		return nil, nil, fmt.Errorf("%w: %d bytes, more than %d", ErrDefective, len(tok), a.cfg.MaxTokenBytes)
	}
	inner, err := parseInitialToken(tok)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: not a Kerberos V5 initial context token", ErrDefective)
	}
	var req messages.APReq
	if err := unmarshalGuarded(func() error { return req.Unmarshal(inner) }); err != nil {
		return nil, nil, fmt.Errorf("%w: AP-REQ: %v", ErrDefective, err)
	}
	kt, err := a.keytab()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	if !req.Ticket.SName.Equal(a.sname) {
		return nil, nil, fmt.Errorf("%w: ticket is for %s, not %s", ErrRejected, req.Ticket.SName.PrincipalNameString(), a.cfg.Principal)
	}
	if types.IsFlagSet(&req.APOptions, flags.APOptionUseSessionKey) {
		return nil, nil, fmt.Errorf("%w: user-to-user tickets are not supported", ErrRejected)
	}
	var ok bool
	verr := unmarshalGuarded(func() error {
		var e error
		ok, e = req.Verify(kt, a.cfg.MaxClockSkew, types.HostAddressFromNetIP(remote), &a.sname)
		return e
	})
	if verr != nil || !ok {
		return nil, nil, fmt.Errorf("%w: %v", ErrRejected, verr)
	}
	auth := req.Authenticator
	enc := req.Ticket.DecryptedEncPart
	if auth.Cksum.CksumType != gssChecksumType || len(auth.Cksum.Checksum) < 24 || binary.LittleEndian.Uint32(auth.Cksum.Checksum) != 16 {
		return nil, nil, fmt.Errorf("%w: authenticator lacks the GSS-API checksum (RFC 4121 §4.1.1)", ErrRejected)
	}
	gssFlags := binary.LittleEndian.Uint32(auth.Cksum.Checksum[20:24])
	if !enc.CName.Equal(auth.CName) || enc.CRealm != auth.CRealm {
		return nil, nil, fmt.Errorf("%w: authenticator and ticket name different clients", ErrRejected)
	}
	if _, err := crypto.GetEtype(enc.Key.KeyType); err != nil || legacyEtype(enc.Key.KeyType) {
		return nil, nil, fmt.Errorf("%w: encryption type %d is not supported (AES only)", ErrRejected, enc.Key.KeyType)
	}

	// Replay: the same authenticator (client, time) a second time.
	ct := auth.CTime.Add(time.Duration(auth.Cusec) * time.Microsecond)
	key := fmt.Sprintf("%s@%s|%d", enc.CName.PrincipalNameString(), enc.CRealm, ct.UnixMicro())
	now := time.Now()
	replay, full := a.replay.add(key, ct.Add(a.cfg.MaxClockSkew).Add(time.Second), now)
	switch {
	case replay:
		return nil, nil, fmt.Errorf("%w: authenticator replayed", ErrRejected)
	case full:
		return nil, nil, fmt.Errorf("%w: replay cache full (kerberos.replay_cache_size)", ErrUnavailable)
	}

	ctx = &Context{
		Principal: Principal{Components: append([]string(nil), enc.CName.NameString...), Realm: enc.CRealm},
		Mutual:    gssFlags&gssMutualFlag != 0 || types.IsFlagSet(&req.APOptions, flags.APOptionMutualRequired),
		key:       enc.Key,
		seq:       uint64(uint32(auth.SeqNumber)),
	}
	// RFC 4121 §2: without an acceptor subkey, per-message tokens use the
	// initiator's subkey when the authenticator has one.
	if len(auth.SubKey.KeyValue) > 0 {
		if legacyEtype(auth.SubKey.KeyType) {
			return nil, nil, fmt.Errorf("%w: subkey encryption type %d is not supported (AES only)", ErrRejected, auth.SubKey.KeyType)
		}
		ctx.key = auth.SubKey
	}
	if !ctx.Mutual {
		return ctx, nil, nil
	}
	var seq [4]byte
	if _, err := rand.Read(seq[:]); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	ctx.seq = uint64(binary.BigEndian.Uint32(seq[:]) & 0x3fffffff)
	rep, err := apRep(enc.Key, auth.CTime, auth.Cusec, int64(ctx.seq))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: AP-REP: %v", ErrUnavailable, err)
	}
	return ctx, initialToken(tokAPRep, rep), nil
}

// legacyEtype reports the encryption types whose GSS-API tokens follow
// RFC 1964 rather than RFC 4121 (DES, 3DES, RC4), which this package does
// not implement.
func legacyEtype(t int32) bool {
	switch t {
	case 1, 2, 3, 16, 23, 24: // des-cbc-*, des3-cbc-sha1, rc4-hmac(-exp)
		return true
	}
	return false
}

// apRep builds the KRB_AP_REP (RFC 4120 §5.5.2) for mutual
// authentication: the client's time, encrypted in the session key, proves
// we hold the service key. No acceptor subkey is sent, so both sides keep
// the initiator's.
func apRep(sessionKey types.EncryptionKey, ctime time.Time, cusec int, seq int64) ([]byte, error) {
	part := messages.EncAPRepPart{CTime: ctime, Cusec: cusec, SequenceNumber: seq}
	b, err := gofork.Marshal(part)
	if err != nil {
		return nil, err
	}
	b = asn1tools.AddASNAppTag(b, asnAppTag.EncAPRepPart)
	ed, err := crypto.GetEncryptedData(b, sessionKey, keyusage.AP_REP_ENCPART, 0)
	if err != nil {
		return nil, err
	}
	rep := messages.APRep{PVNO: 5, MsgType: msgtype.KRB_AP_REP, EncPart: ed}
	b, err = gofork.Marshal(rep)
	if err != nil {
		return nil, err
	}
	return asn1tools.AddASNAppTag(b, asnAppTag.APREP), nil
}

// unmarshalGuarded runs a decoder of the Kerberos library on untrusted
// bytes and turns a panic into an error, so no input can take the server
// down.
func unmarshalGuarded(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("decoder panic: %v", r)
		}
	}()
	return f()
}
