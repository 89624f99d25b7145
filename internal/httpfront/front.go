// Package httpfront is Parley's public HTTPS listener, the "front door" that
// every HTTP service of the server shares: XEP-0363 file upload, XEP-0156
// host-meta, and the XMPP-over-WebSocket and BOSH transports that mount
// here later. It exists so that no module opens a port of its own: one
// listener gets the hosts' certificates by SNI (so SIGHUP reloads apply),
// HTTP/1.1 and HTTP/2, one set of timeouts, and the per-address connection
// limit that the XMPP listeners enforce.
//
// Lifecycle, as for every listener (Caddy's rule): New checks and builds and
// binds nothing; modules Mount handlers from their New or Start; Listen, in
// the server's Start after the modules, binds the configured addresses, and
// only if something is served; Shutdown closes them.
//
// Behind a reverse proxy that terminates TLS, plain_listen serves plain
// HTTP to the proxies listed in trusted_proxies and to nobody else; their
// X-Forwarded-For and X-Forwarded-Proto headers are believed, everyone
// else's are removed before a handler sees the request.
package httpfront

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"parley/internal/certs"
	"parley/internal/config"
	"parley/internal/metrics"
	"parley/internal/module"
	"parley/internal/stream"
)

// Front is the public HTTPS listener and its handler registry.
type Front struct {
	cfg     *config.Config
	certs   *certs.Manager
	perIP   *stream.ConnLimiter
	gauge   prometheus.Gauge
	log     *slog.Logger
	trusted []netip.Prefix
	// byName maps a request's host name (a host domain, or the host part
	// of a host's public_url) to the host domain, for host-meta.
	byName map[string]string
	// mux routes every request that passed the front's own checks; it is
	// safe for concurrent Handle and ServeHTTP.
	mux *http.ServeMux

	mu sync.Mutex
	// mounted counts the patterns mounted through Mount: the listener is
	// bound only when it is not zero (or a transport is announced).
	mounted int
	// listened is set by Listen: a Mount after it is served only if the
	// listener was bound.
	listened         bool
	tlsLn, plainLn   net.Listener
	tlsSrv, plainSrv *http.Server
	onShutdown       []func()
}

var _ module.HTTP = (*Front)(nil)

// New builds the front door from a validated configuration. perIP is the
// per-address connection counter it shares with the XMPP listeners, so one
// address cannot hold max_connections_per_ip connections on each of them.
func New(cfg *config.Config, cm *certs.Manager, perIP *stream.ConnLimiter, m *metrics.Metrics, log *slog.Logger) (*Front, error) {
	f := &Front{
		cfg: cfg, certs: cm, perIP: perIP, log: log,
		gauge:   m.Connections.WithLabelValues("https"),
		trusted: cfg.HTTPS.TrustedProxyPrefixes(),
		byName:  make(map[string]string),
		mux:     http.NewServeMux(),
	}
	if len(f.trusted) != len(cfg.HTTPS.TrustedProxies) {
		return nil, errors.New("httpfront: https.trusted_proxies holds an entry that is not an address or prefix")
	}
	for _, h := range cfg.Hosts {
		f.byName[h.Domain] = h.Domain
	}
	for _, h := range cfg.Hosts {
		if h.HTTP.PublicURL == "" {
			continue
		}
		u, err := url.Parse(h.HTTP.PublicURL)
		if err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("httpfront: host %s: public_url %q is not an https URL", h.Domain, h.HTTP.PublicURL)
		}
		if _, taken := f.byName[strings.ToLower(u.Hostname())]; !taken {
			f.byName[strings.ToLower(u.Hostname())] = h.Domain
		}
	}
	f.mux.Handle(hostMetaPath, f.hostMeta(false))
	f.mux.Handle(hostMetaPath+".json", f.hostMeta(true))
	return f, nil
}

// Mount implements module.HTTP.
func (f *Front) Mount(pattern string, h http.Handler) (err error) {
	if h == nil {
		return fmt.Errorf("httpfront: mount %q: nil handler", pattern)
	}
	path := pattern
	if _, rest, ok := strings.Cut(pattern, " "); ok {
		path = strings.TrimLeft(rest, " ")
	}
	if !strings.HasPrefix(path, "/") {
		// Host patterns would route by a header the client chooses and
		// that a reverse proxy may rewrite; paths are what URLs carry.
		return fmt.Errorf("httpfront: mount %q: a pattern is a path starting with /", pattern)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.listened && f.tlsLn == nil && f.plainLn == nil {
		return fmt.Errorf("httpfront: mount %q after the server started with nothing to serve: mount from New or Start", pattern)
	}
	defer func() {
		// ServeMux panics on a duplicate or conflicting pattern; to a
		// module that is an error to report, not a crash.
		if r := recover(); r != nil {
			err = fmt.Errorf("httpfront: mount %q: %v", pattern, r)
		}
	}()
	f.mux.Handle(pattern, h)
	f.mounted++
	return nil
}

// BaseURL implements module.HTTP: the host's public_url, else https://
// with the domain and the port of https.listen (the bound port when it was
// 0), the port left out when it is 443.
func (f *Front) BaseURL(domain string) string {
	if hc := f.cfg.HostByDomain(domain); hc != nil && hc.HTTP.PublicURL != "" {
		return hc.HTTP.PublicURL
	}
	_, port, err := net.SplitHostPort(*f.cfg.HTTPS.Listen)
	if a, ok := f.Addr().(*net.TCPAddr); ok {
		port = fmt.Sprint(a.Port)
	} else if err != nil {
		port = "443"
	}
	if port == "443" {
		return "https://" + domain
	}
	return "https://" + net.JoinHostPort(domain, port)
}

// RegisterOnShutdown registers fn to run when Shutdown begins: handlers
// that hijack connections (WebSocket) close them there, since the HTTP
// server no longer tracks a hijacked connection.
func (f *Front) RegisterOnShutdown(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onShutdown = append(f.onShutdown, fn)
}

// serving reports whether the listener has anything to serve: a mounted
// handler, or a transport announced in host-meta.
func (f *Front) serving() bool {
	return f.mounted > 0 || f.cfg.HTTPS.WebSocket || f.cfg.HTTPS.BOSH
}

// Listen binds https.listen and https.plain_listen (those configured), or
// none when one fails, and nothing at all when nothing is served: a
// zero-config server opens no HTTPS port it has no use for.
func (f *Front) Listen() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.listened = true
	if !f.serving() {
		return nil
	}
	hc := f.cfg.HTTPS
	var addrs []string
	if *hc.Listen != "" {
		addrs = append(addrs, *hc.Listen)
	}
	if hc.PlainListen != "" {
		addrs = append(addrs, hc.PlainListen)
	}
	ls, err := stream.ListenAll(addrs...)
	if err != nil {
		return fmt.Errorf("https listener: %w", err)
	}
	f.gauge.Add(0)
	if *hc.Listen != "" {
		f.tlsLn, ls = f.limited(ls[0]), ls[1:]
		f.tlsSrv = f.server(false)
		f.tlsSrv.TLSConfig = f.certs.ServerConfig("h2", "http/1.1")
	}
	if hc.PlainListen != "" {
		f.plainLn = f.limited(ls[0])
		f.plainSrv = f.server(true)
	}
	return nil
}

func (f *Front) server(plain bool) *http.Server {
	hc := f.cfg.HTTPS
	return &http.Server{
		Handler:           f.handler(plain),
		ReadHeaderTimeout: hc.ReadHeaderTimeout.Duration,
		ReadTimeout:       hc.ReadTimeout.Duration,
		WriteTimeout:      hc.WriteTimeout.Duration,
		IdleTimeout:       hc.IdleTimeout.Duration,
		MaxHeaderBytes:    hc.MaxHeaderBytes,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: hc.MaxConcurrentStreams},
		// Failed TLS handshakes and malformed requests from the Internet
		// are routine: debug, not the error log.
		ErrorLog: slog.NewLogLogger(f.log.Handler(), slog.LevelDebug),
	}
}

// Serve starts serving the bound listeners, each in a goroutine of its own.
func (f *Front) Serve() {
	f.mu.Lock()
	defer f.mu.Unlock()
	serve := func(what string, run func() error) {
		go func() {
			if err := run(); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
				f.log.Error("https: serve", "listener", what, "err", err)
			}
		}()
	}
	if f.tlsLn != nil {
		ln, srv := f.tlsLn, f.tlsSrv
		serve("https", func() error { return srv.ServeTLS(ln, "", "") })
	}
	if f.plainLn != nil {
		ln, srv := f.plainLn, f.plainSrv
		serve("plain", func() error { return srv.Serve(ln) })
	}
}

// Shutdown closes the listeners and waits for requests in flight until ctx
// ends; then it closes the connections that remain (an upload still
// running), so the server's shutdown is never held up by a slow client.
func (f *Front) Shutdown(ctx context.Context) {
	f.mu.Lock()
	fns := f.onShutdown
	lns := []net.Listener{f.tlsLn, f.plainLn}
	srvs := []*http.Server{f.tlsSrv, f.plainSrv}
	f.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
	for i, srv := range srvs {
		if srv == nil {
			continue
		}
		// A listener is the server's only once Serve ran; close it here
		// too, for a Start that failed between Listen and Serve.
		_ = lns[i].Close()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close()
		}
	}
}

// Addr is the TLS listener's address, or nil when it is not bound.
func (f *Front) Addr() net.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tlsLn == nil {
		return nil
	}
	return f.tlsLn.Addr()
}

// PlainAddr is the plain (reverse-proxy) listener's address, or nil.
func (f *Front) PlainAddr() net.Addr {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.plainLn == nil {
		return nil
	}
	return f.plainLn.Addr()
}

// handler is what every request meets before the mux: the client's real
// address, the plain listener's proxies-only rule, and dot segments
// refused, so that no mounted handler has to get any of them right.
func (f *Front) handler(plain bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		r, fromProxy := f.resolveClient(r)
		if plain && !fromProxy {
			http.Error(w, "this port serves the reverse proxy only; use https", http.StatusForbidden)
			return
		}
		if hasDotSegment(r.URL.Path) {
			// The mux would redirect /a/../b to /b; a path that tries to
			// climb is refused outright instead, whatever its encoding
			// (%2e%2e and %2f are decoded in r.URL.Path).
			http.Error(w, "bad request: dot segments in the path", http.StatusBadRequest)
			return
		}
		f.mux.ServeHTTP(w, r)
	})
}

// hasDotSegment reports whether the decoded path has a "." or ".." segment,
// a backslash (a separator on some systems) or a NUL.
func hasDotSegment(p string) bool {
	if strings.ContainsAny(p, "\\\x00") {
		return true
	}
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}
