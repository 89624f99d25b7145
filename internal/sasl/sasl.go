// Package sasl implements the server side of the SASL mechanisms Parley
// offers to clients (RFC 6120 §6): SCRAM-SHA-{1,256,512} with and without
// channel binding (RFC 5802, RFC 7677, RFC 9266, RFC 5929), PLAIN
// (RFC 4616), and EXTERNAL (RFC 4422) for identities the caller established
// (XEP-0178 client certificates), and GSSAPI (RFC 4752) for Kerberos
// principals through internal/gssapi. It also derives the salted SCRAM
// credentials that storage keeps instead of passwords.
//
// The package knows nothing about XML or streams: the caller decodes the
// base64 payload of <auth/> and <response/>, feeds it to [Session.Next], and
// turns the result into <challenge/>, <success/> or <failure/>. Every error a
// Session returns is a *[Failure] whose Condition is the RFC 6120 §6.5 element
// name to put inside <failure/>.
//
// There is no package-level mutable state; everything a mechanism needs from
// the server or the connection comes in through [Env].
package sasl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"

	"parley/internal/gssapi"
	"parley/internal/storage"
)

// Mechanism names as advertised in <mechanisms/>.
const (
	SCRAMSHA512Plus = "SCRAM-SHA-512-PLUS"
	SCRAMSHA256Plus = "SCRAM-SHA-256-PLUS"
	SCRAMSHA1Plus   = "SCRAM-SHA-1-PLUS"
	SCRAMSHA512     = "SCRAM-SHA-512"
	SCRAMSHA256     = "SCRAM-SHA-256"
	SCRAMSHA1       = "SCRAM-SHA-1"
	Plain           = "PLAIN"
	External        = "EXTERNAL"
)

// Defined conditions of RFC 6120 §6.5, i.e. the child element names of
// <failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>.
const (
	CondAborted              = "aborted"
	CondAccountDisabled      = "account-disabled"
	CondCredentialsExpired   = "credentials-expired"
	CondEncryptionRequired   = "encryption-required"
	CondIncorrectEncoding    = "incorrect-encoding"
	CondInvalidAuthzid       = "invalid-authzid"
	CondInvalidMechanism     = "invalid-mechanism"
	CondMalformedRequest     = "malformed-request"
	CondMechanismTooWeak     = "mechanism-too-weak"
	CondNotAuthorized        = "not-authorized"
	CondTemporaryAuthFailure = "temporary-auth-failure"
)

// Failure is the error every Session and Start return. Condition is one of
// the Cond* constants; Text is an optional human-readable explanation that
// the caller may put in the <text/> child. Text never says whether an account
// exists, so it is safe to send to the client.
type Failure struct {
	Condition string
	Text      string
	// Negotiation is true when the exchange failed before any credential
	// was examined: a malformed message, or a channel-binding type or flag
	// the server cannot accept. Such a failure is not a password guess, so
	// callers need not count it towards brute-force limits. (Stock clients
	// hit it routinely: some ask for tls-unique, which TLS 1.3 lacks, and
	// then retry with another mechanism.)
	Negotiation bool
}

func (f *Failure) Error() string {
	if f.Text == "" {
		return "sasl: " + f.Condition
	}
	return "sasl: " + f.Condition + ": " + f.Text
}

func fail(cond, text string) *Failure { return &Failure{Condition: cond, Text: text} }

// Mechanism is anything with a SASL mechanism name. Every Session is one, so
// the caller can log which mechanism an exchange used.
type Mechanism interface {
	Name() string
}

// Session is one authentication exchange. It is not safe for concurrent use;
// a stream runs at most one exchange at a time anyway.
type Session interface {
	Mechanism

	// Next consumes one client message, already base64-decoded, and returns
	// the server's challenge or, when done is true, the additional data to
	// carry in <success/> (nil when the mechanism has none).
	//
	// For the first call, nil and empty are different (RFC 6120 §6.4.2): nil
	// means <auth/> carried no initial response, so the mechanism answers with
	// an empty challenge and waits; an empty non-nil slice means the client
	// sent "=", an initial response of zero length. After the first call,
	// nil and empty are the same.
	//
	// A non-nil error is always a *Failure and ends the exchange; further
	// calls fail too. Aborts (<abort/>) never reach the Session: the caller
	// drops it and answers <failure><aborted/></failure> itself.
	Next(clientMsg []byte) (serverMsg []byte, done bool, err error)

	// Username returns the authenticated authcid after success, normalized
	// by Env.Normalize when that is set. Before success its value is
	// meaningless.
	Username() string

	// Authzid returns the authorization identity the client asked for, ""
	// if none. The mechanism only reports it: the caller must check it (RFC
	// 6120 §6.4.6: empty, or the bare JID of Username, unless some admin
	// policy allows more) and answer <invalid-authzid/> otherwise.
	Authzid() string
}

// Env is what a mechanism needs from the server and the connection.
type Env struct {
	// TLS is the server side state of the connection, nil when the stream
	// is not encrypted. It decides whether PLAIN and the -PLUS mechanisms
	// are offered, and supplies tls-exporter channel binding data.
	TLS *tls.ConnectionState

	// ServerCert is the leaf certificate this server presented on the
	// connection. tls.ConnectionState only carries the peer's certificates,
	// so tls-server-end-point (RFC 5929) can only be offered when the caller
	// says which certificate it used (e.g. tls.Certificate.Leaf, or the one
	// its GetCertificate returned). nil disables tls-server-end-point.
	ServerCert *x509.Certificate

	// Lookup returns the stored credentials of a user of the virtual host
	// being authenticated against; storage.ErrNotFound for unknown users.
	// Any other error fails the exchange with temporary-auth-failure.
	Lookup func(ctx context.Context, username string) (storage.Credentials, error)

	// Normalize, when set, maps the authcid the client sent to the
	// canonical localpart (e.g. PRECIS UsernameCaseMapped) before Lookup
	// and Username see it. An error is treated like an unknown user, so a
	// malformed name and a non-existent one look the same.
	Normalize func(authcid string) (string, error)

	// Ctx bounds storage lookups; nil means context.Background().
	Ctx context.Context

	// FakeSaltKey is a per-server secret (at least 16 bytes, stable across
	// restarts and cluster nodes) from which SCRAM derives the salt it shows
	// for unknown users, so that probing a username answers with a salt
	// that looks real and never changes. See NewFakeSaltKey. Required for
	// the SCRAM mechanisms.
	FakeSaltKey []byte

	// Iterations is the iteration count shown to unknown users; it should be
	// what DeriveCredentials is called with for new accounts. 0 means
	// DefaultIterations.
	Iterations int

	// Advertised, when set, is what the stream offered (the mechanisms of
	// the SASL profile in use, the XEP-0440 channel-binding types): SCRAM
	// then adds XEP-0474's downgrade protection hash ("h") to its
	// server-first-message, so a client can tell that nobody in between
	// removed mechanisms or binding types. nil: no hash.
	Advertised *Advertised

	// AllowPlainWithoutTLS offers PLAIN on unencrypted streams. Only for
	// tests and loopback deployments: the password travels in the clear.
	AllowPlainWithoutTLS bool

	// External, when set, enables SASL EXTERNAL (RFC 4422 Appendix A,
	// XEP-0178): the caller has already authenticated the peer (a verified
	// TLS client certificate) and maps the requested authzid ("" for none)
	// to the localpart to log in as, or returns a *Failure (invalid-authzid,
	// not-authorized). Offered never lists EXTERNAL: the caller advertises it
	// only when it set External for the connection.
	External func(ctx context.Context, authzid string) (username string, err error)

	// CheckPassword, when set, makes an external authority (an LDAP bind)
	// check PLAIN passwords instead of Lookup's stored keys; it returns nil
	// or a *Failure (not-authorized, temporary-auth-failure). Such an
	// authority never hands out the salted keys SCRAM needs, so with
	// CheckPassword set Start accepts only PLAIN (and EXTERNAL), and the
	// caller should advertise OfferedPasswordCheck.
	CheckPassword func(ctx context.Context, username, password string) error

	// GSSAPI, when set, enables SASL GSSAPI (RFC 4752) with this
	// host's Kerberos acceptor, and MapPrincipal (required with it) turns
	// the authenticated principal into the localpart to log in as, or
	// returns a *Failure (not-authorized for a principal of another realm
	// or without an account, temporary-auth-failure when the account store
	// cannot answer). Like EXTERNAL, Offered never lists GSSAPI: the
	// caller advertises it when it set GSSAPI for the connection
	// (OfferGSSAPI).
	GSSAPI       *gssapi.Acceptor
	MapPrincipal func(ctx context.Context, p gssapi.Principal) (username string, err error)
	// RemoteIP is the client's address, which a Kerberos ticket may be
	// restricted to.
	RemoteIP net.IP

	// Log, when set, receives why an exchange failed where the client only
	// sees a condition (a rejected ticket, a malformed directory secret).
	// Nothing logged there is a secret.
	Log *slog.Logger

	// PasswordCheckSCRAM, with CheckPassword, also offers SCRAM-SHA-1 and
	// SCRAM-SHA-256 (and their -PLUS variants): the external authority
	// keeps RFC 5803 SCRAM secrets for some users, which Lookup returns.
	// A user whose entry lacks them fails SCRAM exactly like a wrong
	// password (a fake salt, then not-authorized) and can still use PLAIN.
	PasswordCheckSCRAM bool

	// Allowed is the host's mechanism policy (`[host] mechanisms`, see
	// Allow): Start refuses what it does not name, and a SCRAM client that
	// says "y" is believed when the policy hides every -PLUS mechanism.
	// Empty: every mechanism.
	Allowed []string
}

// plusOffered reports whether some -PLUS mechanism was advertised on this
// stream: a channel to bind to exists and the host's policy lets one
// through.
func (e *Env) plusOffered() bool {
	for _, m := range e.passwordMechanisms() {
		if strings.HasSuffix(m, "-PLUS") {
			return true
		}
	}
	return false
}

// passwordMechanisms is what Offered or OfferedDirectory lists for e,
// after the host's policy.
func (e *Env) passwordMechanisms() []string {
	if e.CheckPassword != nil {
		return Allow(e.Allowed, OfferedDirectory(e.TLS, e.ServerCert, e.AllowPlainWithoutTLS, e.PasswordCheckSCRAM))
	}
	return Allow(e.Allowed, Offered(e.TLS, e.ServerCert, e.AllowPlainWithoutTLS))
}

// OfferedPasswordCheck is Offered for a host whose passwords are checked by
// CheckPassword: PLAIN only, over TLS unless allowPlainWithoutTLS.
func OfferedPasswordCheck(tlsState *tls.ConnectionState, allowPlainWithoutTLS bool) []string {
	return OfferedDirectory(tlsState, nil, allowPlainWithoutTLS, false)
}

// OfferedDirectory is Offered for a host whose passwords an external
// authority checks (Env.CheckPassword): with scram, the SCRAM variants
// RFC 5803 stores secrets for (SHA-256 and SHA-1, -PLUS first when there
// is a channel to bind to), then PLAIN over TLS (or when
// allowPlainWithoutTLS).
func OfferedDirectory(tlsState *tls.ConnectionState, serverCert *x509.Certificate, allowPlainWithoutTLS, scram bool) []string {
	var out []string
	if scram {
		if len(ChannelBindingTypes(tlsState, serverCert)) > 0 {
			out = append(out, SCRAMSHA256Plus, SCRAMSHA1Plus)
		}
		out = append(out, SCRAMSHA256, SCRAMSHA1)
	}
	if encrypted(tlsState) || allowPlainWithoutTLS {
		out = append(out, Plain)
	}
	return out
}

func (e *Env) logInfo(msg string, args ...any) {
	if e.Log != nil {
		e.Log.Info(msg, args...)
	}
}

// OfferGSSAPI reports whether GSSAPI may be advertised on this stream: a
// Kerberos acceptor is set, and the stream is encrypted (or the caller
// allows cleartext authentication, as for PLAIN: RFC 4752 without a
// security layer leaves the stream after authentication unprotected).
func (e *Env) OfferGSSAPI() bool {
	return e.GSSAPI != nil && e.MapPrincipal != nil && (encrypted(e.TLS) || e.AllowPlainWithoutTLS) && Allowed(e.Allowed, GSSAPI)
}

func (e *Env) ctx() context.Context {
	if e.Ctx == nil {
		return context.Background()
	}
	return e.Ctx
}

func (e *Env) iterations() int {
	if e.Iterations <= 0 {
		return DefaultIterations
	}
	return e.Iterations
}

// encrypted reports whether st describes a finished TLS handshake; a state
// taken before the handshake completed protects nothing.
func encrypted(st *tls.ConnectionState) bool {
	return st != nil && st.HandshakeComplete
}

// Offered returns the mechanisms to advertise, strongest first, so clients
// that pick the first one they support pick the best:
// the -PLUS variants (only when TLS is up and at least one channel binding
// type is available, see ChannelBindingTypes), the plain SCRAM variants,
// then PLAIN (only over TLS unless allowPlainWithoutTLS).
//
// serverCert is the leaf certificate presented on the connection, as in
// Env.ServerCert; it may be nil.
func Offered(tlsState *tls.ConnectionState, serverCert *x509.Certificate, allowPlainWithoutTLS bool) []string {
	var out []string
	if len(ChannelBindingTypes(tlsState, serverCert)) > 0 {
		out = append(out, SCRAMSHA512Plus, SCRAMSHA256Plus, SCRAMSHA1Plus)
	}
	out = append(out, SCRAMSHA512, SCRAMSHA256, SCRAMSHA1)
	if encrypted(tlsState) || allowPlainWithoutTLS {
		out = append(out, Plain)
	}
	return out
}

// Start begins an exchange with the named mechanism. Only mechanisms that
// Offered would list for env, and that env.Allowed admits, are accepted, so a client cannot pick PLAIN on
// a cleartext stream or a -PLUS mechanism without a channel to bind to;
// anything else is *Failure{invalid-mechanism}. A server misconfiguration
// (no Lookup, no FakeSaltKey) is reported as temporary-auth-failure so the
// client can try again later rather than blame its credentials.
func Start(name string, env Env) (Session, error) {
	if !Allowed(env.Allowed, name) {
		return nil, fail(CondInvalidMechanism, "")
	}
	if name == GSSAPI {
		if !env.OfferGSSAPI() {
			return nil, fail(CondInvalidMechanism, "")
		}
		return &gssapiSession{env: env}, nil
	}
	if name == External {
		if env.External == nil {
			return nil, fail(CondInvalidMechanism, "")
		}
		return &externalSession{env: env}, nil
	}
	if !slices.Contains(env.passwordMechanisms(), name) {
		return nil, fail(CondInvalidMechanism, "")
	}
	if env.CheckPassword != nil && name == Plain {
		return &plainSession{env: env}, nil
	}
	if env.Lookup == nil {
		return nil, fail(CondTemporaryAuthFailure, "server has no credential lookup configured")
	}
	switch name {
	case Plain:
		return &plainSession{env: env}, nil
	default:
		fam, plus, ok := scramFamilyOf(name)
		if !ok {
			// Offered and this switch disagree: a programming error, but
			// the client only needs to know the mechanism is unusable.
			return nil, fail(CondInvalidMechanism, "")
		}
		if len(env.FakeSaltKey) < minFakeSaltKey {
			return nil, fail(CondTemporaryAuthFailure, fmt.Sprintf("server fake salt key shorter than %d bytes", minFakeSaltKey))
		}
		return newSCRAMSession(name, fam, plus, env), nil
	}
}
