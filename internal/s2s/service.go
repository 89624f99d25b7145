// Package s2s federates Parley with other XMPP servers (RFC 6120
// server-to-server streams). It authenticates peers with TLS + SASL
// EXTERNAL (XEP-0178) when their certificate is valid for their domain,
// with Server Dialback (XEP-0220, keys per XEP-0185) over TLS when the
// certificate is not trusted and the policy accepts that, and with plain
// dialback only where encryption is not required. Outgoing streams are found
// through SRV (_xmpps-server per XEP-0368, then _xmpp-server, then the
// domain on 5269) or a static route table. SASL EXTERNAL vouches for the
// one domain in a stream's header, so a local domain whose certificate
// would pass it has an outgoing stream of its own to each remote domain;
// local domains that can only use dialback share a stream to the same
// remote domain, each pair verified on its own.
//
// The package plugs into the router as its router.Remote (outgoing) and
// hands verified incoming stanzas to Router.Route.
package s2s

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/net/idna"

	"parley/internal/certs"
	"parley/internal/config"
	"parley/internal/metrics"
	"parley/internal/router"
	"parley/internal/s2s/dialback"
	"parley/internal/stream"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Authentication methods, as logged, listed and counted.
const (
	MethodExternal    = "sasl-external"
	MethodDialbackTLS = "dialback-tls"
	MethodDialback    = "dialback" // without TLS
)

// Service runs incoming and outgoing server-to-server streams.
type Service struct {
	cfg      *config.Config
	router   *router.Router
	certs    *certs.Manager
	metrics  *metrics.Metrics
	log      *slog.Logger
	keys     *dialback.Keys
	roots    *x509.CertPool
	resolver Resolver
	now      func() time.Time
	// accept runs the listeners and tracks the incoming streams; its PerIP
	// bounds them per source address, its Max is s2s.max_incoming.
	accept stream.Acceptor[*inConn]
	// drains runs the outgoing streams' writers' drains (stream.DrainPool).
	drains *stream.DrainPool
	// verifications holds a token per dialback verification in progress
	// (s2s.max_verifications).
	verifications chan struct{}
	// lingerNanos is how long a stream opened only for db:verify stays
	// after its last verification (defaultVerifyLinger; tests change it);
	// lingering counts the streams doing so, at most max_verifications
	// (outConn.settle).
	lingerNanos atomic.Int64
	lingering   atomic.Int64

	conns    *prometheus.CounterVec // authenticated pairs by direction and method
	failures *prometheus.CounterVec // by direction and reason

	mu        sync.Mutex
	listeners []net.Listener
	direct    map[net.Listener]bool
	// out holds the outgoing streams by remote domain, then by the local
	// domain in the stream header (the one SASL EXTERNAL would
	// authenticate); other local domains may ride along with dialback.
	out     map[string]map[string]*outConn
	closing bool // no new outgoing streams
	wg      sync.WaitGroup
}

var _ router.Remote = (*Service)(nil)

// New builds the service; it binds nothing. The dialback secret is the
// configured one or 32 random bytes, so keys never survive a restart
// unless the administrator asks for that (e.g. for a cluster).
func New(cfg *config.Config, r *router.Router, cm *certs.Manager, m *metrics.Metrics, log *slog.Logger) (*Service, error) {
	roots, err := loadRoots(cfg.S2S.CAFile)
	if err != nil {
		return nil, err
	}
	secret := []byte(cfg.S2S.DialbackSecret)
	if len(secret) == 0 {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret)
	}
	s := &Service{
		cfg: cfg, router: r, certs: cm, metrics: m, log: log.With("component", "s2s"),
		keys: dialback.NewKeys(secret), roots: roots, resolver: net.DefaultResolver, now: time.Now,
		drains:        stream.NewDrainPool(stream.DefaultDrainIdle, stream.DefaultDrainLinger),
		verifications: make(chan struct{}, max(cfg.S2S.MaxVerifications, 1)),
		direct:        make(map[net.Listener]bool), out: make(map[string]map[string]*outConn),
		conns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_s2s_authenticated_total", Help: "Server-to-server domain pairs authenticated, by direction and method.",
		}, []string{"direction", "method"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "parley_s2s_failures_total", Help: "Server-to-server streams or domain pairs that failed, by direction and reason.",
		}, []string{"direction", "reason"}),
	}
	if err := m.Registry.Register(s.conns); err != nil {
		return nil, err
	}
	if err := m.Registry.Register(s.failures); err != nil {
		return nil, err
	}
	s.accept = stream.Acceptor[*inConn]{
		WG: &s.wg,
		// One address may not take every incoming slot (max_incoming is
		// shared by all peers): limits.max_connections_per_ip applies to
		// servers as it does to clients.
		PerIP: stream.NewConnLimiter(cfg.Limits.MaxConnectionsPerIP),
		Max:   cfg.S2S.MaxIncoming,
		Gauge: m.Connections.WithLabelValues("s2s-in"),
		AcceptError: func(err error) {
			s.log.Warn("accept", "err", err)
			time.Sleep(50 * time.Millisecond)
		},
		Refused: func(_ net.Conn, reason string) {
			if reason == stream.RefusedPerAddress {
				s.failures.WithLabelValues("in", "too-many-from-address").Inc()
			} else {
				s.failures.WithLabelValues("in", "too-many-streams").Inc()
			}
		},
		Serve: (*inConn).serve,
	}
	s.lingerNanos.Store(int64(defaultVerifyLinger))
	return s, nil
}

// defaultVerifyLinger is how long a stream opened to send db:verify stays
// open after its last verification: long enough for the claims a peer
// makes one after another for its domains, and for the reply to the
// message whose sender was just verified, to find it set up; short enough
// that claims of made-up domains do not pile up idle streams.
const defaultVerifyLinger = 5 * time.Second

func (s *Service) verifyLinger() time.Duration { return time.Duration(s.lingerNanos.Load()) }

// takeLingerSlot reserves one of max_verifications places for a lingering
// stream; false when all are taken.
func (s *Service) takeLingerSlot() bool {
	for {
		n := s.lingering.Load()
		if n >= int64(cap(s.verifications)) {
			return false
		}
		if s.lingering.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// SetResolver replaces DNS (tests). Call before Listen.
func (s *Service) SetResolver(r Resolver) { s.resolver = r }

// Listen binds the incoming listeners.
func (s *Service) Listen() error {
	ls, err := stream.ListenAll(append(slices.Clone(s.cfg.S2S.Listen), s.cfg.S2S.DirectTLSListen...)...)
	if err != nil {
		return err
	}
	direct := map[net.Listener]bool{}
	for i, l := range ls {
		direct[l] = i >= len(s.cfg.S2S.Listen)
	}
	s.mu.Lock()
	s.listeners, s.direct = ls, direct
	s.mu.Unlock()
	for _, l := range ls {
		d := direct[l]
		s.accept.Accept(l, func(nc net.Conn) (*inConn, bool) { return newInConn(s, nc, d), true })
	}
	return nil
}

// Addrs returns the bound listener addresses (STARTTLS first).
func (s *Service) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []net.Addr
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// Shutdown closes listeners and every stream with <system-shutdown/>.
func (s *Service) Shutdown(ctx context.Context) {
	s.mu.Lock()
	s.closing = true
	for _, l := range s.listeners {
		_ = l.Close()
	}
	outs := s.outStreamsLocked()
	s.mu.Unlock()
	for _, c := range s.accept.Close() {
		c.close(stanza.StreamSystemShutdown, "")
	}
	for _, o := range outs {
		o.fail(errShutdown, stanza.StreamSystemShutdown)
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

var errShutdown = errors.New("s2s: server shutting down")

// policy returns the effective policy of a local domain; a component
// domain (conference.example.com) uses its parent host's.
func (s *Service) policy(local string) policy {
	host := local
	if s.router.Host(local) == nil {
		host = ""
		for _, h := range s.cfg.Hosts {
			if len(local) > len(h.Domain) && local[len(local)-len(h.Domain)-1:] == "."+h.Domain && len(h.Domain) > len(host) {
				host = h.Domain
			}
		}
	}
	p := s.cfg.S2SPolicyFor(host)
	if h := s.router.Host(host); h != nil && h.Access != nil {
		// The directory may hold the host's domain lists (config_base).
		p = h.Access.S2SPolicy(p)
	}
	return policy{
		requireTLS: *p.RequireEncryption, selfSigned: *p.AcceptSelfSigned, dialback: *p.Dialback,
		allowed: p.AllowedDomains, blocked: p.BlockedDomains,
	}
}

type policy struct {
	requireTLS, selfSigned, dialback bool
	allowed, blocked                 []string
}

// permits reports whether remote may federate with the local domain, and
// the failure reason if not.
func (p policy) permits(remote string) (bool, string) {
	if slices.Contains(p.blocked, remote) {
		return false, "blocked-domain"
	}
	if len(p.allowed) > 0 && !slices.Contains(p.allowed, remote) {
		return false, "not-approved"
	}
	return true, ""
}

// trusts reports whether a peer certificate verdict is acceptable: valid
// always; untrusted ones only when accept_self_signed is on; and without a
// usable TLS identity only when encryption is not required (then the
// stream counts as unauthenticated transport and dialback decides).
func (p policy) trusts(v string) bool {
	switch v {
	case VerdictValid:
		return true
	case VerdictNone:
		return !p.requireTLS
	default:
		return p.selfSigned || !p.requireTLS
	}
}

// isLocal reports whether domain is served here (host or component).
func (s *Service) isLocal(domain string) bool { return s.router.IsLocal(domain) }

// Send is the router's hook for stanzas to remote domains. Refusals by
// policy return an error (the router bounces remote-server-not-found);
// connection failures bounce later from the queue.
func (s *Service) Send(ctx context.Context, el *xml.Element, from, to jid.JID) error {
	local, remote := from.Domain(), to.Domain()
	if !s.isLocal(local) {
		return errors.New("s2s: from is not a local domain")
	}
	if ok, reason := s.policy(local).permits(remote); !ok {
		s.failures.WithLabelValues("out", reason).Inc()
		s.log.Info("refused outgoing stanza by policy", "local", local, "remote", remote, "reason", reason)
		return errors.New("s2s: " + reason)
	}
	// A stream found here may end before the stanza is on it (a
	// verification stream's linger running out, idle_timeout): then a
	// new one is started.
	for range 3 {
		o, err := s.outFor(remote, local)
		if err != nil {
			return err
		}
		if o.send(local, el) {
			return nil
		}
	}
	s.bounce(el, stanza.RemoteServerNotFound, "")
	return nil
}

// outFor returns the outgoing stream that carries stanzas from local to
// remote, starting one when needed. SASL EXTERNAL authenticates only the
// domain in a stream's header (RFC 6120 §6.4, XEP-0178), so a local domain
// whose own certificate would pass it gets a stream of its own, with
// from=local: a peer that allows only EXTERNAL could not authenticate it
// on another domain's stream. A domain that can only use dialback joins
// any stream to remote (XEP-0220 piggybacking) and starts one only when
// there is none.
func (s *Service) outFor(remote, local string) (*outConn, error) {
	s.mu.Lock()
	o, closing := s.joinedLocked(remote, local), s.closing
	s.mu.Unlock()
	switch {
	case closing:
		return nil, errShutdown
	case o != nil:
		return o, nil
	}
	// Judging our certificate parses and verifies a chain: not under s.mu,
	// and only for a pair no stream carries yet.
	external := s.ownVerdict(local) == VerdictValid
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, errShutdown
	}
	if o := s.joinedLocked(remote, local); o != nil {
		return o, nil // another goroutine got there first
	}
	if !external {
		if o := s.anyOutLocked(remote); o != nil {
			return o, nil
		}
	}
	return s.startOutLocked(remote, local, false), nil
}

// joinedLocked returns the live stream to remote that already carries
// local, its own or the one it joined for dialback, or nil.
func (s *Service) joinedLocked(remote, local string) *outConn {
	streams := s.out[remote]
	if o := streams[local]; o != nil && !o.isClosed() {
		return o
	}
	for _, o := range streams {
		if o.carries(local) {
			return o
		}
	}
	return nil
}

// anyOutLocked returns a live stream to remote, the same one every time
// (lowest header domain) so dialback-only domains gather on one stream.
func (s *Service) anyOutLocked(remote string) *outConn {
	var best *outConn
	for first, o := range s.out[remote] {
		if !o.isClosed() && (best == nil || first < best.first) {
			best = o
		}
	}
	return best
}

// startOutLocked starts an outgoing stream to remote with local in its
// header, for local's stanzas or forVerify for db:verify only, and
// forgets it when it ends.
func (s *Service) startOutLocked(remote, local string, forVerify bool) *outConn {
	o := newOutConn(s, remote, local, forVerify)
	if s.out[remote] == nil {
		s.out[remote] = map[string]*outConn{}
	}
	s.out[remote][local] = o
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.metrics.Connections.WithLabelValues("s2s-out").Inc()
		o.run()
		s.metrics.Connections.WithLabelValues("s2s-out").Dec()
		s.mu.Lock()
		if s.out[remote][local] == o {
			delete(s.out[remote], local)
			if len(s.out[remote]) == 0 {
				delete(s.out, remote)
			}
		}
		s.mu.Unlock()
	}()
	return o
}

// outStreamsLocked lists every outgoing stream.
func (s *Service) outStreamsLocked() []*outConn {
	var outs []*outConn
	for _, streams := range s.out {
		for _, o := range streams {
			outs = append(outs, o)
		}
	}
	return outs
}

// verify asks the authoritative server of remote whether key is the one
// it generated for (local, remote, streamID) (XEP-0220 §2.3), over our
// outgoing stream to remote, which applies our policy to its certificate.
//
// db:verify needs a stream to the authoritative server, not an
// authenticated pair, so any live stream to remote will do; only when
// there is none is one started, with local in its header. That stream
// authenticates no pair of ours (nothing is to be sent) and ends soon
// after its last verification unless a stanza comes for it
// (outConn.settle): a peer claiming one domain after another must not
// leave the server with a stream to each of them.
//
// local and remote are prepared domains, which find the stream to the
// authoritative server; wireLocal and wireRemote are the same domains as
// the originating server wrote them, which the db:verify carries (the
// key was computed over those strings).
func (s *Service) verify(ctx context.Context, local, remote, wireLocal, wireRemote, streamID, key string) (bool, error) {
	for try := 0; ; try++ {
		s.mu.Lock()
		o, closing := s.anyOutLocked(remote), s.closing
		if o == nil && !closing {
			o = s.startOutLocked(remote, local, true)
		}
		s.mu.Unlock()
		if closing {
			return false, errShutdown
		}
		ok, err := o.verify(ctx, local, wireLocal, wireRemote, streamID, key)
		if errors.Is(err, errStreamGone) && try < 2 {
			continue // it ended between being found and being used
		}
		return ok, err
	}
}

// bounce returns an error to the sender of a stanza that could not leave.
func (s *Service) bounce(el *xml.Element, cond stanza.Condition, text string) {
	reply := stanza.ErrorReply(el, cond, text)
	if reply == nil {
		return
	}
	s.router.Route(context.Background(), reply)
}

// serverTLS is the TLS config for incoming streams: the host certificate
// by SNI and a request (not a requirement) for the peer's certificate,
// which SASL EXTERNAL needs.
func (s *Service) serverTLS() *tls.Config {
	c := s.certs.ServerConfig("xmpp-server")
	c.ClientAuth = tls.RequestClientCert
	return c
}

// clientTLS is the TLS config for outgoing streams. Verification is done
// by verdict() after the handshake, because an untrusted certificate is
// not always fatal (accept_self_signed) and the verdict is reported.
func (s *Service) clientTLS(local, remote string, direct bool) *tls.Config {
	minV := uint16(tls.VersionTLS12)
	if s.cfg.TLS.MinVersion == "1.3" {
		minV = tls.VersionTLS13
	}
	sni := remote
	if a, err := idna.Lookup.ToASCII(remote); err == nil {
		sni = a // SNI carries A-labels (RFC 6066 §3)
	}
	c := &tls.Config{
		ServerName:         sni,
		MinVersion:         minV,
		InsecureSkipVerify: true, // checked by verdict(); see above
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := s.certs.ForName(local); c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil
		},
	}
	if direct {
		c.NextProtos = []string{"xmpp-server"}
	}
	return c
}

// newDecoder returns a decoder for a jabber:server stream.
func (s *Service) newDecoder(nc net.Conn) *xml.Decoder {
	lim := s.cfg.Limits
	d := xml.NewDecoder(nc, xml.Limits{
		MaxStanzaBytes: lim.MaxStanzaBytes, MaxDepth: lim.MaxDepth, MaxAttrs: lim.MaxAttrs, MaxHeaderBytes: 8 * 1024,
	})
	d.SetContentNamespace(stanza.NSServer)
	return d
}

func (s *Service) rateLimit(nc net.Conn) net.Conn {
	// A peer server carries many users' traffic: ten times a client's rate.
	lim := s.cfg.Limits
	return stream.NewRateLimitedConn(nc, 10*lim.RateBytesPerSecond, max(lim.RateBurstBytes, 10*lim.RateBytesPerSecond))
}
