// Package c2s serves client-to-server streams (RFC 6120): TCP with STARTTLS
// and direct TLS (XEP-0368), SASL authentication, resource binding, and the
// bound session's read loop. Routing is the router's business; this package
// only validates and stamps what a client sends.
package c2s

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/access"
	"parley/internal/bruteforce"
	"parley/internal/certs"
	"parley/internal/clientcert"
	"parley/internal/config"
	"parley/internal/directory"
	"parley/internal/gssapi"
	"parley/internal/idlewait"
	"parley/internal/legacyauth"
	"parley/internal/metrics"
	"parley/internal/module"
	"parley/internal/router"
	"parley/internal/sasl"
	"parley/internal/storage"
	"parley/internal/stream"
	"parley/internal/tlsfrag"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Namespaces undelivered recognises.
const (
	nsCarbons = "urn:xmpp:carbons:2"
	// nsMAMPrefix starts every version's namespace of XEP-0313.
	nsMAMPrefix = "urn:xmpp:mam:"
)

// Server accepts client connections.
type Server struct {
	cfg     *config.Config
	router  *router.Router
	certs   *certs.Manager
	store   storage.Store
	metrics *metrics.Metrics
	log     *slog.Logger
	fakeKey []byte
	limiter *bruteforce.Limiter
	legacy  *legacyauth.Authenticator

	// accept runs the listeners and tracks the open connections; its
	// PerIP bounds the connections per source address on all the client
	// listeners together (limits.max_connections_per_ip).
	accept stream.Acceptor[*conn]

	// tlsOnce builds the two TLS configs every connection shares
	// (tlsConfigs).
	tlsOnce                sync.Once
	tlsStartTLS, tlsDirect *tls.Config

	mu        sync.Mutex
	listeners []net.Listener
	wg        sync.WaitGroup
	// clientCerts verifies client certificates (nil: EXTERNAL is off);
	// groups resolves group membership for access control.
	clientCerts *clientcert.Verifier
	groups      access.GroupResolver
	// dir is the LDAP directory of hosts with accounts = "directory"
	// (directory.go); nil without one.
	dir *directory.Directory
	// kerberos holds the GSSAPI acceptor of each host with a keytab
	// (kerberos.go).
	kerberos map[string]*gssapi.Acceptor

	// resumable finds XEP-0198 sessions by resumption id (sm.go).
	resumable resumableSessions
	// stopping is set by BeginShutdown: a connection lost from then on ends
	// its session instead of detaching it.
	stopping atomic.Bool
	// idle is the set parked readers wait in (idlewait): no goroutine per
	// idle session. Nil where there is none (not Linux, or parking off):
	// a parked reader then waits in a goroutine of its own.
	idle *idlewait.Set
	// drains runs the sessions' writers' drains on goroutines kept
	// between bursts (stream.DrainPool).
	drains *stream.DrainPool
}

// New returns a c2s server. fakeSaltKey keys the fake SCRAM salts that make
// unknown users indistinguishable from known ones. perIP counts
// connections per source address (limits.max_connections_per_ip); the
// server shares one with its HTTPS listener, so a client's WebSocket and
// TCP streams count against the same bound. Nil: a count of its own.
func New(cfg *config.Config, r *router.Router, cm *certs.Manager, st storage.Store, m *metrics.Metrics, log *slog.Logger, fakeSaltKey []byte, perIP *stream.ConnLimiter) *Server {
	if perIP == nil {
		perIP = stream.NewConnLimiter(cfg.Limits.MaxConnectionsPerIP)
	}
	s := &Server{cfg: cfg, router: r, certs: cm, store: st, metrics: m, log: log, fakeKey: fakeSaltKey,
		limiter: newLimiter(cfg, m), legacy: legacyauth.New(cfg, st, fakeSaltKey),
		drains: stream.NewDrainPool(stream.DefaultDrainIdle, stream.DefaultDrainLinger)}
	s.accept = stream.Acceptor[*conn]{
		WG: &s.wg, PerIP: perIP, Gauge: m.Connections.WithLabelValues("c2s"),
		AcceptError: func(err error) { log.Warn("c2s: accept", "err", err) },
		Refused: func(nc net.Conn, reason string) {
			if reason == stream.RefusedPerAddress {
				// Closed before anything is read or allocated: answering
				// with a stream error would cost a TLS handshake on the
				// direct port.
				log.Debug("c2s: too many connections from one address", "remote", nc.RemoteAddr().String())
			}
		},
		Serve: (*conn).serve,
		Gate: stream.NewLoginGate(cfg.Limits.MaxConcurrentLogins, cfg.Limits.MaxConcurrentLoginsPerIP,
			cfg.Limits.LoginSlotTimeout.Duration, stream.LoginGateMetrics{InUse: m.LoginSlots, Expired: m.LoginSlotExpiries}),
		GateWait: cfg.Limits.PreAuthTimeout.Duration,
		Gated:    func(c *conn, slot *stream.LoginSlot) { c.loginSlot = slot },
	}
	return s
}

// Listen binds the configured addresses; it fails before serving anything
// if one of them cannot be bound.
func (s *Server) Listen() error {
	// STARTTLS addresses first: Serve tells direct TLS listeners by index.
	ls, err := stream.ListenAll(append(slices.Clone(s.cfg.C2S.Listen), s.cfg.C2S.DirectTLSListen...)...)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.listeners = ls
	s.mu.Unlock()
	if s.cfg.Limits.ParkIdleAfter.Duration > 0 && parkSupported {
		idle, err := idlewait.New()
		if err != nil {
			s.log.Info("c2s: parked readers wait in a goroutine each", "reason", err)
		}
		s.idle = idle
	}
	return nil
}

// Addrs returns the bound addresses: STARTTLS listeners first, then direct TLS.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// Serve accepts connections on every listener until Shutdown.
func (s *Server) Serve() {
	s.mu.Lock()
	ls := s.listeners
	s.mu.Unlock()
	for i, l := range ls {
		direct := i >= len(s.cfg.C2S.Listen)
		s.accept.Accept(l, func(nc net.Conn) (*conn, bool) { return s.open(nc, direct) })
	}
}

// open sets up an admitted connection: rate limiting and, on a direct TLS
// port, the handshake. It reports false (having closed nc) when the
// handshake fails.
func (s *Server) open(nc net.Conn, direct bool) (*conn, bool) {
	lim := s.cfg.Limits
	c := &conn{srv: s, direct: direct, authBy: time.Now().Add(lim.PreAuthTimeout.Duration)}
	cw := &closeWatch{Conn: stream.NewRateLimitedConn(nc, lim.RateBytesPerSecond, lim.RateBurstBytes)}
	t := &tcpTransport{raw: cw, nc: cw, cw: cw, idle: s.idle, ir: idleReader{nc: cw}, lim: s.streamLimits(), writeTimeout: lim.WriteTimeout.Duration}
	c.t = t
	if direct {
		// TLS runs over the rate-limited connection, so encrypted bytes
		// are what counts, as after STARTTLS. The handshake is part of the
		// pre-authentication time: without a deadline a peer that never
		// finishes its ClientHello would hold a goroutine and a socket
		// forever (slowloris on the handshake).
		_, direct := s.tlsConfigs()
		tc := tls.Server(tlsfrag.Server(cw), direct)
		_ = tc.SetDeadline(c.authBy)
		if err := tc.HandshakeContext(context.Background()); err != nil {
			_ = nc.Close()
			return nil, false
		}
		_ = tc.SetWriteDeadline(time.Time{})
		st := tc.ConnectionState()
		t.nc, t.ir.nc, t.tls = tc, tc, &st
		c.tls = t.tls
		c.verifyPeer()
	}
	return c, true
}

// ServeTransport runs a client stream that arrived on another listener
// (XMPP over WebSocket) until it ends, with the same negotiation, limits,
// sessions and shutdown as the TCP listeners. It reports false when the
// server is shutting down; the caller then closes t itself.
func (s *Server) ServeTransport(t Transport) bool {
	c := &conn{srv: s, t: t, tls: t.TLS(), authBy: time.Now().Add(s.cfg.Limits.PreAuthTimeout.Duration)}
	if c.tls != nil {
		c.verifyPeer()
	}
	return s.accept.ServeConn(c)
}

// StreamLimits are the XML limits of a client stream (limits.*), for
// transports in other packages.
func (s *Server) StreamLimits() xml.Limits { return s.streamLimits() }

// streamLimits are the XML limits of a client stream (limits.*).
func (s *Server) streamLimits() xml.Limits {
	lim := s.cfg.Limits
	return xml.Limits{
		MaxStanzaBytes: lim.MaxStanzaBytes,
		MaxDepth:       lim.MaxDepth,
		MaxAttrs:       lim.MaxAttrs,
		MaxHeaderBytes: 8 * 1024,
	}
}

// BeginShutdown is the first step of a shutdown, for the server to take
// while the rest of it still routes (before federation stops): the client
// listeners stop accepting, a connection lost from now on ends its session
// instead of detaching it, and every session waiting for a resumption ends
// now, as if its resumption timeout had run out. Its unacknowledged
// messages go to offline storage and the senders of its unacknowledged IQ
// requests get their error replies (RFC 6120 §8.3, XEP-0198 §5) while
// their streams, local or federated, are still open to carry them: ended
// after the client streams closed and federation stopped, as they used to
// be, the replies found nobody. Shutdown calls it too; once is enough.
func (s *Server) BeginShutdown() {
	s.mu.Lock()
	for _, l := range s.listeners {
		_ = l.Close()
	}
	s.mu.Unlock()
	s.stopping.Store(true)
	for _, sess := range s.resumable.all() {
		sess.endDetached(string(stanza.StreamSystemShutdown))
	}
}

// Shutdown stops accepting, ends the detached sessions (BeginShutdown),
// closes every stream with <system-shutdown/> and waits for the
// connections to finish (or ctx to expire).
func (s *Server) Shutdown(ctx context.Context) {
	s.BeginShutdown()
	for _, c := range s.accept.Close() {
		c.closeWith("system-shutdown", "")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	// Every session has ended and left the idle set, unless ctx ran out
	// first: then closing it wakes the readers still parked, to find
	// their connections closed.
	if s.idle != nil {
		s.idle.Close()
	}
	// Sessions that detached while BeginShutdown was looking (their
	// connection lost just before stopping was set), and those whose
	// connection did not end before ctx: they end now, so their
	// unacknowledged stanzas are stored or bounced while storage is still
	// open.
	for _, sess := range s.resumable.all() {
		sess.Close(stanza.StreamSystemShutdown, "")
	}
}

// undelivered handles stanzas that were sent to a session which ended
// before its client acknowledged them (or that reached it after it ended)
// the way RFC 6121 treats stanzas for a resource that is not available:
// messages are routed again to the address they had, which now finds the
// account's other resources or offline storage (§8.5.3.2: a full JID
// without a session is handled as the bare JID); IQ requests get
// service-unavailable; presence, IQ responses and error or headline
// messages are dropped as they would have been. Three kinds of message are
// not routed again: carbon copies (XEP-0280; the original went to another
// resource), results of archive queries this session sent (XEP-0313: of
// its account's archive, isQueryResult, or of a room's or another archive's,
// session.answersQuery), which answered a question only this session
// asked, and messages the recipient's archive already holds (marked with
// our <stanza-id/>), which the client finds there.
func (s *Server) undelivered(sess *session, els []*xml.Element) {
	s.undeliveredIn(sess.ctx, sess, els)
}

// undeliveredIn is undelivered, routing in ctx.
func (s *Server) undeliveredIn(ctx context.Context, sess *session, els []*xml.Element) {
	for _, el := range els {
		if el.Space != "" {
			continue
		}
		switch el.Local {
		case "message":
			switch stanza.Type(el) {
			case "error", "headline":
				continue
			}
			if isCarbon(el) || isQueryResult(el, sess.jid.Bare()) || sess.answersQuery(el) || module.ArchivedFor(el, sess.jid.Bare()) {
				continue
			}
			s.router.Route(ctx, el)
		case "iq":
			if t := el.Attr("type"); t == "get" || t == "set" {
				if reply := stanza.ErrorReply(el, stanza.ServiceUnavailable, ""); reply != nil {
					s.router.Route(ctx, reply)
				}
			}
		}
	}
}

// isCarbon reports whether el is an XEP-0280 copy.
func isCarbon(el *xml.Element) bool {
	for _, ch := range el.Children {
		if e, ok := ch.(*xml.Element); ok && e.Space == nsCarbons && (e.Local == "received" || e.Local == "sent") {
			return true
		}
	}
	return false
}

// isQueryResult reports whether el is one result of an XEP-0313 query of
// owner's archive: an answer to that session's query, which no other
// session (and no later login, from offline storage) asked for. Only the
// account's own archive sends them from its bare JID, so a contact cannot
// make its message look like one.
func isQueryResult(el *xml.Element, owner jid.JID) bool {
	return el.Attr("from") == owner.String() && mamResult(el) != nil
}

// mamResult returns el's XEP-0313 <result/>, nil if it has none.
func mamResult(el *xml.Element) *xml.Element {
	for _, ch := range el.Children {
		if e, ok := ch.(*xml.Element); ok && e.Local == "result" && strings.HasPrefix(e.Space, nsMAMPrefix) {
			return e
		}
	}
	return nil
}

func (s *Server) saslEnv(c *conn) sasl.Env {
	env := s.mechanismEnv(c)
	// XEP-0474: what the features offered, as the client saw them. Both
	// SASL profiles list the same mechanisms (conn.offered).
	adv := &sasl.Advertised{Mechanisms: c.offered()}
	if cbs := sasl.ChannelBindingTypes(c.tls, c.serverCert()); len(cbs) > 0 {
		adv.ChannelBindings = cbs
	}
	env.Advertised = adv
	return env
}

// mechanismEnv is saslEnv without the advertised lists, which are built
// from it (conn.offered asks it whether GSSAPI can be offered).
func (s *Server) mechanismEnv(c *conn) sasl.Env {
	host := c.host.Domain
	env := sasl.Env{
		TLS:         c.tls,
		ServerCert:  c.serverCert(),
		Ctx:         context.Background(),
		FakeSaltKey: s.fakeKey,
		Iterations:  s.cfg.Auth.ScramIterations,
		// A stream encrypted by a trusted proxy has no TLS state of ours
		// but is as safe for PLAIN as one that has.
		AllowPlainWithoutTLS: s.cfg.C2S.AllowPlainWithoutTLS || c.secure(),
		Normalize: func(authcid string) (string, error) {
			j, err := jid.New(authcid, host, "")
			if err != nil {
				return "", err
			}
			return j.Local(), nil
		},
		Lookup: func(ctx context.Context, username string) (storage.Credentials, error) {
			a, err := s.store.Accounts().Get(ctx, host, username)
			if err != nil {
				return storage.Credentials{}, err
			}
			if a.Disabled {
				return storage.Credentials{}, storage.ErrNotFound
			}
			return a.Creds, nil
		},
		CheckPassword: directoryPasswordCheck(c),
		Allowed:       c.hostCfg().Mechanisms,
		Log:           s.log.With("remote", c.t.RemoteAddr().String()),
		RemoteIP:      c.remoteIP(),
	}
	if d := c.directory(); d != nil {
		env.Lookup = c.directorySCRAM(d)
		env.PasswordCheckSCRAM = d.SCRAMOffered(c.ctx)
	}
	if a := c.kerberos(); a != nil {
		env.GSSAPI, env.MapPrincipal = a, c.mapPrincipal
	}
	return env
}

// directoryPasswordCheck is nil unless c's host keeps its accounts in the
// directory (directory.go).
func directoryPasswordCheck(c *conn) func(context.Context, string, string) error {
	if d := c.directory(); d != nil {
		return c.directoryCheckPassword(d)
	}
	return nil
}
