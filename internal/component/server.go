// Package component serves XEP-0114 external components: trusted programs
// (gateways, bots, services) that connect to the server over a
// jabber:component:accept stream, authenticate with a shared secret, and are
// then routed every stanza addressed to their domain.
//
// One Server owns the listener and the table of configured external domains.
// While a component is disconnected its domain is served by a placeholder
// that answers service-unavailable, so the domain stays local (a stanza for
// it never leaks to federation) and senders learn at once that nobody is
// there. A component that connects again replaces the old connection, which
// is closed with <conflict/>.
package component

import (
	"context"
	"log/slog"
	"net"
	"sync"

	"parley/internal/config"
	"parley/internal/metrics"
	"parley/internal/module"
	"parley/internal/router"
	"parley/internal/stream"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Server accepts external component connections.
type Server struct {
	cfg     *config.Config
	router  *router.Router
	metrics *metrics.Metrics
	log     *slog.Logger
	// secrets maps each external component domain to its shared secret;
	// fixed after New.
	secrets map[string]string
	// accept runs the listener and tracks the open connections; its PerIP
	// bounds them per source address (limits.max_connections_per_ip): a
	// peer that cannot pass the handshake still cannot pile up sockets.
	accept stream.Acceptor[*conn]
	// drains runs the components' writers' drains (stream.DrainPool).
	drains *stream.DrainPool

	mu       sync.Mutex
	listener net.Listener
	active   map[string]*conn // domain → the authenticated connection serving it
	offline  map[string]*placeholder
	wg       sync.WaitGroup
}

// New returns a component server for the external services of cfg. It
// registers each domain with the router (served by a placeholder until its
// component connects) and lists the public ones in their parent host's
// disco#items.
func New(cfg *config.Config, r *router.Router, m *metrics.Metrics, log *slog.Logger) *Server {
	s := &Server{
		cfg: cfg, router: r, metrics: m, log: log,
		secrets: make(map[string]string),
		drains:  stream.NewDrainPool(stream.DefaultDrainIdle, stream.DefaultDrainLinger),
		active:  make(map[string]*conn),
		offline: make(map[string]*placeholder),
	}
	s.accept = stream.Acceptor[*conn]{
		WG: &s.wg, PerIP: stream.NewConnLimiter(cfg.Limits.MaxConnectionsPerIP),
		Gauge:       m.Connections.WithLabelValues("component"),
		AcceptError: func(err error) { log.Warn("component: accept", "err", err) },
		Refused: func(nc net.Conn, reason string) {
			if reason == stream.RefusedPerAddress {
				log.Debug("component: too many connections from one address", "remote", nc.RemoteAddr().String())
			}
		},
		Serve: (*conn).serve,
	}
	for _, sv := range cfg.Component.Services {
		if sv.Type != config.ComponentExternal {
			continue
		}
		s.secrets[sv.Domain] = sv.Secret
		p := &placeholder{domain: sv.Domain, router: r}
		s.offline[sv.Domain] = p
		r.AddComponent(sv.Domain, p)
		if *sv.Public {
			if h := r.Host(cfg.ParentHost(sv.Domain)); h != nil {
				h.AddItem(module.DiscoItem{JID: sv.Domain, Name: sv.Name})
			}
		}
	}
	return s
}

// Listen binds the component listener. Nothing is bound when no external
// component is configured or component.listen is empty.
func (s *Server) Listen() error {
	addr := *s.cfg.Component.Listen
	if addr == "" || len(s.secrets) == 0 {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.listener = l
	s.mu.Unlock()
	return nil
}

// Addr returns the bound address, or nil when not listening.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.listener == nil {
		return nil
	}
	return s.listener.Addr()
}

// Serve accepts connections until Shutdown.
func (s *Server) Serve() {
	s.mu.Lock()
	l := s.listener
	s.mu.Unlock()
	if l == nil {
		return
	}
	s.accept.Accept(l, s.open)
}

// open rate-limits an admitted connection.
func (s *Server) open(nc net.Conn) (*conn, bool) {
	rate := s.cfg.Component.RateBytesPerSecond
	burst := max(s.cfg.Limits.RateBurstBytes, rate)
	return &conn{srv: s, nc: stream.NewRateLimitedConn(nc, rate, burst)}, true
}

// attach makes c the connection serving domain and returns the one it
// replaces. The server mutex serialises attach and detach, so the router
// always ends up pointing at the newest connection or the placeholder.
func (s *Server) attach(domain string, c *conn) (replaced *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	replaced = s.active[domain]
	s.active[domain] = c
	s.router.AddComponent(domain, c)
	return replaced
}

// detach puts the placeholder back if c still serves domain.
func (s *Server) detach(domain string, c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[domain] != c {
		return
	}
	delete(s.active, domain)
	s.router.AddComponent(domain, s.offline[domain])
}

// Connected reports whether a component is authenticated for domain.
func (s *Server) Connected(domain string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active[domain] != nil
}

// Shutdown stops accepting, closes every component stream with
// <system-shutdown/> and waits for the connections to end (or ctx).
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	if s.listener != nil {
		_ = s.listener.Close()
	}
	s.mu.Unlock()
	for _, c := range s.accept.Close() {
		c.closeWith(stanza.StreamSystemShutdown, "")
	}
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// placeholder serves a configured domain while its component is away:
// requests and messages bounce with service-unavailable (RFC 6120 §8.3.3.19
// "the intended recipient is temporarily unavailable"), everything else is
// dropped.
type placeholder struct {
	domain string
	router *router.Router
}

func (p *placeholder) Deliver(ctx context.Context, el *xml.Element, from, to jid.JID) {
	switch el.Local {
	case stanza.KindPresence:
		return
	case stanza.KindIQ:
		if t := el.Attr("type"); t != stanza.TypeGet && t != stanza.TypeSet {
			return
		}
	}
	if reply := stanza.ErrorReply(el, stanza.ServiceUnavailable, "the component "+p.domain+" is not connected"); reply != nil {
		p.router.Route(ctx, reply)
	}
}
