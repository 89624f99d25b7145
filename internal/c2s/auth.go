package c2s

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"
	"time"

	"parley/internal/access"
	"parley/internal/bruteforce"
	"parley/internal/clientcert"
	"parley/internal/config"
	"parley/internal/legacyauth"
	"parley/internal/metrics"
	"parley/internal/sasl"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// This file holds what authentication needs beyond the SASL exchange
// itself: client certificates (XEP-0178), XEP-0078 legacy authentication,
// the per-IP brute-force limiter and the per-host access policy.

// LoadClientCerts reads c2s.client_ca_file and c2s.crl_files. It is a no-op
// without a CA file. Call it once after New, before Listen.
func (s *Server) LoadClientCerts() error {
	if s.cfg.C2S.ClientCAFile == "" {
		return nil
	}
	v, err := clientcert.New(s.cfg.C2S.ClientCAFile, s.cfg.C2S.CRLFiles, nil)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.clientCerts = v
	s.mu.Unlock()
	return nil
}

// Reload rereads the client CA bundle and CRLs (SIGHUP). Connections that
// already verified a certificate keep their result; new ones see the new
// lists.
func (s *Server) Reload() error {
	s.mu.Lock()
	v := s.clientCerts
	s.mu.Unlock()
	if v == nil {
		return nil
	}
	return v.Reload()
}

// SetGroupResolver replaces the source of group membership for access
// control (default: the storage KV groups of `parley group`); the server
// sets access.Union{access.KVGroups{...}, directory.HostGroups{...}} when
// a directory is configured.
func (s *Server) SetGroupResolver(r access.GroupResolver) {
	s.mu.Lock()
	s.groups = r
	s.mu.Unlock()
}

func (s *Server) verifier() *clientcert.Verifier {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clientCerts
}

func (s *Server) groupResolver() access.GroupResolver {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.groups == nil {
		return access.KVGroups{Store: s.store}
	}
	return s.groups
}

// tlsConfigs returns the configs of STARTTLS and of direct TLS (ALPN
// xmpp-client, XEP-0368): the certificate manager's, asking for (never
// requiring) a client certificate when client certificates are configured.
// The TLS layer does not verify it (tls.RequestClientCert): verifyPeer does,
// so an untrusted or revoked certificate only means EXTERNAL is not offered
// (XEP-0178 §3 step 9) and the client can still use a password.
//
// They are built once and shared by every connection: a config holds the
// session ticket keys, so with one per connection no client could resume a
// TLS session on its next connection (a full handshake every time), and
// each connection kept a config of its own. Certificates are still chosen
// per handshake (GetCertificate), so reloaded ones apply at once.
func (s *Server) tlsConfigs() (starttls, direct *tls.Config) {
	s.tlsOnce.Do(func() {
		build := func(alpn ...string) *tls.Config {
			cfg := s.certs.ServerConfig(alpn...)
			if s.cfg.C2S.ClientCAFile != "" {
				cfg.ClientAuth = tls.RequestClientCert
			}
			return cfg
		}
		s.tlsStartTLS, s.tlsDirect = build(), build("xmpp-client")
	})
	return s.tlsStartTLS, s.tlsDirect
}

// verifyPeer checks the client certificate, if any, after a handshake.
func (c *conn) verifyPeer() {
	c.clientCert = nil
	v := c.srv.verifier()
	if v == nil || c.tls == nil || len(c.tls.PeerCertificates) == 0 {
		return
	}
	leaf, err := v.Verify(c.tls.PeerCertificates)
	if err != nil {
		c.srv.log.Info("c2s: client certificate refused", "remote", c.t.RemoteAddr().String(), "subject", c.tls.PeerCertificates[0].Subject.String(), "err", err)
		return
	}
	c.clientCert = leaf
}

// offered lists the SASL mechanisms for this stream: EXTERNAL first when the
// client presented a verified certificate (XEP-0178 §3: the client should
// prefer it), GSSAPI where the host has a keytab, then the password
// mechanisms, all filtered by the host's
// `mechanisms` policy (sasl.Allow). Every advertisement and every check of
// a client's choice uses this list.
func (c *conn) offered() []string {
	var out []string
	if c.clientCert != nil {
		out = append(out, sasl.External)
	}
	if env := c.srv.mechanismEnv(c); env.OfferGSSAPI() {
		out = append(out, sasl.GSSAPI)
	}
	return sasl.Allow(c.hostCfg().Mechanisms, append(out, c.passwordMechanisms()...))
}

// external maps the EXTERNAL authzid to an account (XEP-0178 §3 step 10).
// Only the certificate's identities on this host count. No authzid: the
// certificate must name exactly one (several: invalid-authzid; none:
// not-authorized). An authzid must be one of them (else invalid-authzid).
// The account must exist and be enabled (else not-authorized).
func (c *conn) external(cert *x509.Certificate) func(ctx context.Context, authzid string) (string, error) {
	return func(ctx context.Context, authzid string) (string, error) {
		var mine []jid.JID
		for _, j := range clientcert.Identities(cert) {
			if j.Domain() == c.host.Domain {
				mine = append(mine, j)
			}
		}
		var pick jid.JID
		switch {
		case authzid != "":
			az, err := jid.Parse(authzid)
			if err != nil {
				return "", sasl.NewFailure(sasl.CondInvalidAuthzid, "")
			}
			for _, j := range mine {
				if j == az.Bare() && az.Resource() == "" {
					pick = j
				}
			}
			if pick.IsZero() {
				return "", sasl.NewFailure(sasl.CondInvalidAuthzid, "the certificate does not name this address")
			}
		case len(mine) == 1:
			pick = mine[0]
		case len(mine) > 1:
			return "", sasl.NewFailure(sasl.CondInvalidAuthzid, "the certificate names several addresses: give an authorization identity")
		default:
			return "", sasl.NewFailure(sasl.CondNotAuthorized, "")
		}
		if d := c.directory(); d != nil {
			return c.directoryExternal(ctx, d, pick)
		}
		a, err := c.srv.store.Accounts().Get(ctx, c.host.Domain, pick.Local())
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return "", sasl.NewFailure(sasl.CondNotAuthorized, "")
		case err != nil:
			return "", sasl.NewFailure(sasl.CondTemporaryAuthFailure, "")
		case a.Disabled:
			return "", sasl.NewFailure(sasl.CondNotAuthorized, "")
		}
		return pick.Local(), nil
	}
}

// beginAttempt takes the brute-force limiter's slot for one step of a
// credential check from this connection's address (bruteforce.Limiter.
// Begin), waiting for one until the pre-authentication deadline at most.
// It returns "" when admitted, else the text of the refusal: the address
// is paused, or its checks in progress left no slot free in time; the
// credentials are then not looked at. The slot covers the server's side of
// one step only: it is given back (endAttempt) before a challenge goes to
// the client, so a client that stalls in the middle of an exchange holds
// none. The limiter's delay is waited before the answer that gives a
// verdict (verdictDelay), not before negotiation failures, which examine
// no credential.
func (c *conn) beginAttempt() (refusal string) {
	at, d := c.srv.limiter.Begin(c.t.RemoteAddr(), c.authBy)
	switch {
	case d.Busy:
		c.srv.log.Info("c2s: login attempt refused: too many attempts in progress from the address", "remote", c.t.RemoteAddr().String())
		return "too many login attempts in progress from your address; try again later"
	case d.Refuse:
		c.srv.log.Info("c2s: login attempt from a paused address refused", "remote", c.t.RemoteAddr().String())
		return "too many failed logins from your address; try again later"
	}
	c.attempt, c.attemptDelay = at, d.Delay
	return ""
}

// attemptRefused answers a SASL step the limiter refused (beginAttempt):
// temporary-auth-failure tells the client to try later rather than that
// its password is wrong.
func (c *conn) attemptRefused(text string) error {
	c.failures++
	c.saslFailed = true
	if err := c.saslFailure(sasl.CondTemporaryAuthFailure, text); err != nil {
		return err
	}
	return c.tooManyFailures()
}

// endAttempt ends the attempt beginAttempt started: its failure, if
// countFailure marked one, is recorded and its slot freed.
func (c *conn) endAttempt() {
	c.attempt.End()
	c.attempt, c.attemptDelay = nil, 0
}

// verdictDelay waits the brute-force limiter's delay, once per attempt,
// before an answer that tells whether the credentials were right
// (success or failure alike, so that timing does not tell them apart).
func (c *conn) verdictDelay() {
	if d := c.attemptDelay; d > 0 {
		c.attemptDelay = 0
		time.Sleep(d)
	}
}

// admit applies the host's access policy after the credentials were
// verified. A refusal is logged with its reason and reported to the caller
// as an error; the client must see the same failure as for a wrong
// password.
func (c *conn) admit(user, mech string) bool {
	var err error
	if c.host.Access != nil {
		// The host's control: [host.access] rules and the directory's
		// overrides (config_base) as well as the file's allowed_* lists.
		err = c.host.Access.CanLogin(c.ctx, user)
	} else {
		err = access.Policy{Host: c.hostCfg(), Groups: c.srv.groupResolver()}.CanLogin(c.ctx, user)
	}
	if err == nil {
		return true
	}
	c.srv.log.Info("c2s: login refused by access policy", "remote", c.t.RemoteAddr().String(), "user", user+"@"+c.host.Domain, "mechanism", mech, "reason", err.Error())
	return false
}

func (c *conn) hostCfg() *config.Host {
	if c.host.HostCfg != nil {
		return c.host.HostCfg
	}
	if hc := c.srv.cfg.HostByDomain(c.host.Domain); hc != nil {
		return hc
	}
	return &config.Host{Domain: c.host.Domain}
}

// legacyStream describes this stream to the legacy authenticator.
func (c *conn) legacyStream() legacyauth.Stream {
	return legacyauth.Stream{ID: c.id, Encrypted: c.secure(), RequireTLS: c.tlsRequired()}
}

// legacyFeature is the XEP-0078 §4 stream feature, offered when some
// legacy method is usable on this stream.
func (c *conn) legacyFeature() *xml.Element {
	if c.directory() != nil {
		return nil // XEP-0078 checks stored secrets; directory hosts have none
	}
	if !legacyauth.MethodsFor(c.hostCfg(), c.legacyStream()).Any() {
		return nil
	}
	return xml.New(legacyauth.NSFeature, "auth")
}

// handleLegacyAuth answers a jabber:iq:auth IQ before authentication
// (XEP-0078 §3). done is true when a session was created.
func (c *conn) handleLegacyAuth(iq, q *xml.Element) (done bool, err error) {
	hc := c.hostCfg()
	if !hc.LegacyAuth.Enabled() || c.directory() != nil {
		return false, c.writeEl(stanza.ErrorReply(iq, stanza.ServiceUnavailable, ""))
	}
	if c.saslFailed {
		// XEP-0078 §8: after a failed SASL attempt, iq:auth is refused.
		return false, &streamErr{cond: "policy-violation", text: "SASL authentication failed on this stream"}
	}
	switch iq.Attr("type") {
	case "get":
		return false, c.writeEl(stanza.IQResult(iq, c.srv.legacy.Fields(c.ctx, hc, c.legacyStream(), q)))
	case "set":
	default:
		return false, c.writeEl(stanza.ErrorReply(iq, stanza.BadRequest, ""))
	}
	if !legacyauth.MethodsFor(hc, c.legacyStream()).Any() {
		return false, c.writeEl(stanza.ErrorReply(iq, stanza.NotAcceptable, "encryption is required before authentication"))
	}
	if text := c.beginAttempt(); text != "" {
		c.failures++
		if err := c.writeEl(stanza.ErrorReply(iq, stanza.NotAuthorized, text)); err != nil {
			return false, err
		}
		return false, c.tooManyFailures()
	}
	defer c.endAttempt()
	res, lerr := c.srv.legacy.Authenticate(c.ctx, hc, c.legacyStream(), q)
	if lerr == nil && !c.admit(res.Username, res.Mechanism) {
		lerr = &legacyauth.Error{Cond: stanza.NotAuthorized, BadSecret: true, Mechanism: res.Mechanism}
	}
	if lerr != nil {
		if !lerr.BadSecret {
			return false, c.writeEl(stanza.ErrorReply(iq, lerr.Cond, lerr.Text))
		}
		c.countFailure(lerr.Mechanism, string(lerr.Cond))
		if err := c.writeEl(stanza.ErrorReply(iq, lerr.Cond, "")); err != nil {
			return false, err
		}
		return false, c.tooManyFailures()
	}
	c.verdictDelay()
	c.user, c.mech = res.Username, res.Mechanism
	c.srv.metrics.AuthSuccesses.WithLabelValues(res.Mechanism).Inc()
	c.srv.log.Info("c2s: authenticated", "remote", c.t.RemoteAddr().String(), "user", res.Username+"@"+c.host.Domain, "mechanism", res.Mechanism)
	// XEP-0078: success creates the session directly, no separate bind. An
	// existing session with the same resource is replaced (the XEP's
	// RECOMMENDED behaviour), exactly as with resource binding.
	return c.bindResource(iq, res.Resource, func(jid.JID) *xml.Element { return stanza.IQResult(iq, nil) }), nil
}

// countFailure records a failed credential check: per connection (the
// failure delay and limits.max_auth_failures), per source address (the
// brute-force limiter) and in metrics.
func (c *conn) countFailure(mech, cond string) {
	c.failures++
	c.attempt.Fail() // recorded when the attempt ends (nil: an address the limiter does not track)
	c.srv.metrics.AuthFailures.WithLabelValues(mech).Inc()
	c.srv.log.Info("c2s: authentication failed", "remote", c.t.RemoteAddr().String(), "mechanism", mech, "condition", cond, "failures", c.failures)
	delay := c.srv.cfg.Limits.AuthFailureDelay.Duration << (c.failures - 1)
	if max := 8 * c.srv.cfg.Limits.AuthFailureDelay.Duration; delay > max {
		delay = max
	}
	time.Sleep(delay + c.attemptDelay) // this connection's, then the address's
	c.attemptDelay = 0
}

func (c *conn) tooManyFailures() error {
	if c.failures >= c.srv.cfg.Limits.MaxAuthFailures {
		return &streamErr{cond: "policy-violation", text: "too many failed authentication attempts"}
	}
	return nil
}

func newLimiter(cfg *config.Config, m *metrics.Metrics) *bruteforce.Limiter {
	bf := cfg.Auth.BruteForce
	return bruteforce.New(bruteforce.Config{
		Window: bf.Window.Duration, DelayAfter: bf.DelayAfter, Delay: bf.Delay.Duration,
		PauseAfter: bf.PauseAfter, Pause: bf.Pause.Duration, MaxSources: bf.MaxSources,
	}, bruteforce.Observer{
		Delayed: func() { m.AuthThrottle.WithLabelValues("delayed").Inc() },
		Refused: func() { m.AuthThrottle.WithLabelValues("refused").Inc() },
		Paused:  func() { m.AuthThrottle.WithLabelValues("paused").Inc() },
		Tracked: func(n int) { m.AuthTrackedSources.Set(float64(n)) },
	}, nil)
}

// isPreXMPP reports a stream header without version 1.0 (RFC 6120 §4.7.5:
// no version attribute means 0.9).
func isPreXMPP(version string) bool { return !versionAtLeast1(strings.TrimSpace(version)) }
