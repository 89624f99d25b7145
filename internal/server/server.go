// Package server assembles a Parley server from a validated configuration:
// storage, certificates, hosts and their modules, the router and the
// listeners. Its lifecycle follows Caddy's rule: New builds and checks
// everything and opens no port; Start starts modules and then listeners, and
// a failure at any step undoes the steps before it.
package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"parley/internal/access"
	"parley/internal/bosh"
	"parley/internal/c2s"
	"parley/internal/certs"
	"parley/internal/cluster"
	"parley/internal/component"
	"parley/internal/config"
	"parley/internal/console"
	"parley/internal/httpfront"
	"parley/internal/logring"
	"parley/internal/memrelease"
	"parley/internal/metrics"
	"parley/internal/module"
	"parley/internal/router"
	"parley/internal/s2s"
	"parley/internal/storage"
	"parley/internal/storage/observed"
	"parley/internal/storage/postgres"
	"parley/internal/storage/sqlite"
	"parley/internal/stream"
	"parley/internal/websocket"
)

// Options are the non-config inputs of a server.
type Options struct {
	Log *slog.Logger
	// Modules overrides the default module set (tests).
	Modules []module.Factory
}

// Server is one running Parley instance.
type Server struct {
	cfg     *config.Config
	log     *slog.Logger
	store   storage.Store
	certs   *certs.Manager
	metrics *metrics.Metrics
	router  *router.Router
	c2s     *c2s.Server
	s2s     *s2s.Service // nil unless [s2s] enabled
	adminLn net.Listener
	groups  access.GroupResolver // stored groups, and the directory's on its hosts
	comp    *component.Server
	hosts   []*module.Host
	modules []module.Module
	started time.Time

	httpLn  net.Listener
	httpSrv *http.Server

	// perIP counts open connections per source address on the client
	// listeners and the public HTTPS listener together
	// (limits.max_connections_per_ip): a browser's WebSocket counts like a
	// TCP stream.
	perIP *stream.ConnLimiter
	// front is the public HTTPS listener (internal/httpfront), given to
	// modules as module.HTTPService.
	front *httpfront.Front
	// console is the web console (/admin/, /account/), nil when off;
	// logs keeps the recent log lines it shows.
	console *console.Console
	logs    *logring.Ring
	// memory hands back what a busy spell freed once the server is quiet
	// (limits.release_memory_after).
	memory *memrelease.Releaser

	mu      sync.Mutex
	running bool

	// directory is the LDAP directory, if configured (directory.go).
	directory dirState
	// groupWatch polls the stored groups' change mark (groups.go).
	groupWatch groupWatch

	// cluster is this node's membership of a cluster (cluster.go), nil
	// without [cluster].
	cluster    *cluster.Node
	clusterEng cluster.Engine
}

// New builds a server from cfg. It opens storage and loads certificates but
// binds no port.
func New(ctx context.Context, cfg *config.Config, opts Options) (*Server, error) {
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	var logs *logring.Ring
	if cfg.Console.Admin {
		// Everything the server logs from here on is also kept, bounded,
		// for the console's log page.
		logs = logring.New(cfg.Console.LogLines)
		log = slog.New(logring.Tee(log.Handler(), logs))
	}
	s := &Server{cfg: cfg, log: log, logs: logs, metrics: metrics.New(), started: time.Now()}
	var domains []string
	for _, h := range cfg.Hosts {
		domains = append(domains, h.Domain)
	}
	s.metrics.Init(domains)
	var err error
	if s.certs, err = certs.New(cfg); err != nil {
		return nil, err
	}
	if s.store, err = OpenStore(ctx, cfg); err != nil {
		return nil, err
	}
	s.store = observed.Wrap(s.store, s.metrics.ObserveStorage)
	fakeKey, err := serverSecret(ctx, s.store, "fake-salt-key")
	if err != nil {
		_ = s.store.Close()
		return nil, err
	}
	s.router = router.New(log, s.metrics, cfg.Limits.MaxSessionsPerAccount)
	s.perIP = stream.NewConnLimiter(cfg.Limits.MaxConnectionsPerIP)
	if s.front, err = httpfront.New(cfg, s.certs, s.perIP, s.metrics, log); err != nil {
		_ = s.store.Close()
		return nil, err
	}
	if err := s.newDirectory(); err != nil {
		_ = s.store.Close()
		return nil, err
	}
	factories := opts.Modules
	if factories == nil {
		factories = DefaultModules()
	}
	s.groups = s.groupSources()
	for i := range cfg.Hosts {
		hc := &cfg.Hosts[i]
		h := module.NewHost(hc.Domain)
		h.Config, h.HostCfg, h.Store, h.Started = cfg, hc, s.store, s.started
		h.Log = log.With("host", hc.Domain)
		h.Access = access.NewControl(hc, s.groups, h.Log)
		if hc.AccountsInDirectory() && s.directory.dir != nil {
			h.AccountSource = s.directory.dir
		}
		s.router.AddHost(h)
		// Before the module factories: a module may mount its handlers
		// from New.
		module.Provide(h, module.HTTPService, module.HTTP(s.front))
		module.Provide(h, module.AccessByDomain, s.accessOf)
		module.Provide(h, module.MetricsKey, s.metrics)
		s.hosts = append(s.hosts, h)
		for _, f := range factories {
			m, err := f(h)
			if err != nil {
				_ = s.store.Close()
				return nil, fmt.Errorf("host %s: %w", hc.Domain, err)
			}
			s.modules = append(s.modules, m)
		}
	}
	s.comp = component.New(cfg, s.router, s.metrics, log)
	s.c2s = c2s.New(cfg, s.router, s.certs, s.store, s.metrics, log, fakeKey, s.perIP)
	if cfg.HTTPS.WebSocket {
		lim := cfg.Limits
		h := websocket.NewHandler(s.c2s, websocket.Config{
			OriginPatterns:     cfg.HTTPS.WebSocketOrigins,
			PingInterval:       cfg.HTTPS.WebSocketPing.Duration,
			RateBytesPerSecond: lim.RateBytesPerSecond,
			RateBurstBytes:     lim.RateBurstBytes,
			WriteTimeout:       lim.WriteTimeout.Duration,
		}, log)
		if err := s.front.Mount(httpfront.WebSocketPath, h); err != nil {
			_ = s.store.Close()
			return nil, fmt.Errorf("websocket: %w", err)
		}
	}
	if hc := cfg.HTTPS; hc.BOSH {
		lim := cfg.Limits
		h := bosh.NewHandler(s.c2s, bosh.Config{
			MaxWait: hc.BOSHMaxWait.Duration, Inactivity: hc.BOSHInactivity.Duration,
			MaxPause: hc.BOSHMaxPause.Duration, Polling: hc.BOSHPolling.Duration,
			MaxHold: hc.BOSHMaxHold, MaxSessionsPerIP: hc.BOSHMaxSessionsPerIP,
			ReadTimeout:        hc.ReadTimeout.Duration,
			OriginPatterns:     hc.BOSHOrigins,
			RateBytesPerSecond: lim.RateBytesPerSecond, RateBurstBytes: lim.RateBurstBytes,
			WriteTimeout: lim.WriteTimeout.Duration,
		}, log)
		if err := s.front.Mount(httpfront.BOSHPath, h); err != nil {
			_ = s.store.Close()
			return nil, fmt.Errorf("bosh: %w", err)
		}
	}
	s.wireDirectory()
	s.wireAdmins()
	if cfg.S2S.Enabled {
		if s.s2s, err = s2s.New(cfg, s.router, s.certs, s.metrics, log); err != nil {
			_ = s.store.Close()
			return nil, err
		}
		s.router.SetRemote(s.s2s)
	}
	if err := s.c2s.LoadClientCerts(); err != nil {
		_ = s.store.Close()
		return nil, fmt.Errorf("c2s client certificates: %w", err)
	}
	if err := s.c2s.LoadKerberos(); err != nil {
		_ = s.store.Close()
		return nil, fmt.Errorf("kerberos: %w", err)
	}
	if err := s.newConsole(); err != nil {
		_ = s.store.Close()
		return nil, err
	}
	return s, nil
}

// accessOf returns the access control of a local host (nil if none). It
// reads s.hosts, complete once New returns, which is before any stanza.
func (s *Server) accessOf(domain string) *access.Control {
	for _, h := range s.hosts {
		if h.Domain == domain {
			return h.Access
		}
	}
	return nil
}

// OpenStore opens the configured storage backend.
func OpenStore(ctx context.Context, cfg *config.Config) (storage.Store, error) {
	switch cfg.Storage {
	case "postgres":
		return postgres.Open(ctx, cfg.PostgresDSN)
	default:
		// The zero-config server (and `parley user add` before the first
		// start) must work in an empty directory.
		if err := os.MkdirAll(filepath.Dir(cfg.SQLitePath), 0o700); err != nil {
			return nil, err
		}
		return sqlite.Open(ctx, cfg.SQLitePath)
	}
}

// serverSecret returns a random per-server secret kept in storage, created
// on first use, so it survives restarts and is shared by cluster nodes.
func serverSecret(ctx context.Context, st storage.Store, name string) ([]byte, error) {
	return storage.Secret(ctx, st.KV(), "server", "", name, 32)
}

// Start starts modules, then binds and serves every listener.
func (s *Server) Start(ctx context.Context) (err error) {
	// Each step that succeeds pushes its undo; a later failure runs them in
	// reverse, so a server that cannot start leaves nothing listening.
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	// Before the modules: changes from now on are noticed, and modules
	// read the membership as it is when they start.
	s.startGroupWatch()
	undo = append(undo, s.stopGroupWatch)
	s.loadPolicies(ctx)
	if err := s.startCluster(ctx); err != nil {
		return err
	}
	undo = append(undo, func() { s.stopCluster(ctx) })
	for _, m := range s.modules {
		if err := m.Start(ctx); err != nil {
			return fmt.Errorf("module %s: %w", m.Name(), err)
		}
		m := m
		undo = append(undo, func() { _ = m.Stop(ctx) })
	}
	if err := s.c2s.Listen(); err != nil {
		return err
	}
	undo = append(undo, func() { s.c2s.Shutdown(ctx) })
	if err := s.comp.Listen(); err != nil {
		return fmt.Errorf("component listener: %w", err)
	}
	undo = append(undo, func() { s.comp.Shutdown(ctx) })
	// After the modules started: they mount their handlers in Start, and
	// the listener is bound only if something was mounted.
	if err := s.front.Listen(); err != nil {
		return err
	}
	undo = append(undo, func() { s.front.Shutdown(ctx) })
	if err := s.startS2S(); err != nil {
		return err
	}
	undo = append(undo, func() { s.stopS2S(ctx) })
	if err := s.startAdmin(); err != nil {
		return err
	}
	undo = append(undo, s.stopAdmin)
	if addr := *s.cfg.HTTP.Listen; addr != "" {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return err
		}
		s.httpLn = ln
		s.httpSrv = &http.Server{Handler: s.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = s.httpSrv.Serve(ln) }()
	}
	s.startDirectory()
	if s.console != nil {
		s.console.Start()
	}
	s.memory = memrelease.New(s.cfg.Limits.ReleaseMemoryAfter.Duration, s.log)
	s.memory.Start()
	s.c2s.Serve()
	s.comp.Serve()
	s.front.Serve()
	s.mu.Lock()
	s.running = true
	s.mu.Unlock()
	return nil
}

func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(s.metrics.Registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := s.store.Accounts().List(ctx, "healthz.invalid"); err != nil {
			http.Error(w, "storage: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		if s.cluster != nil {
			if err := s.cluster.Healthy(); err != nil {
				http.Error(w, "cluster: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	if s.cfg.HTTP.Pprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
}

func (s *Server) stopModules(ctx context.Context) {
	for i := len(s.modules) - 1; i >= 0; i-- {
		if err := s.modules[i].Stop(ctx); err != nil {
			s.log.Warn("module stop", "module", s.modules[i].Name(), "err", err)
		}
	}
}

// Shutdown closes every session with <system-shutdown/>, stops modules and
// closes storage.
func (s *Server) Shutdown(ctx context.Context) {
	s.mu.Lock()
	running := s.running
	s.running = false
	s.mu.Unlock()
	if running {
		s.stopAdmin()
		// While every stream still carries stanzas: modules tell users,
		// local and remote, what the shutdown ends.
		for _, m := range s.modules {
			if n, ok := m.(module.ClosingNotifier); ok {
				n.ServerClosing(ctx)
			}
		}
		// Before federation stops: the error replies for IQ requests
		// queued to detached client sessions may be for other servers.
		s.c2s.BeginShutdown()
		s.stopS2S(ctx)
		s.c2s.Shutdown(ctx)
		s.comp.Shutdown(ctx)
		// Before the modules stop: an upload in flight finishes (or is cut
		// when ctx ends) while its module can still store it.
		s.front.Shutdown(ctx)
		if s.httpSrv != nil {
			_ = s.httpSrv.Shutdown(ctx)
		}
		s.stopGroupWatch()
		s.stopModules(ctx)
		if s.console != nil {
			s.console.Stop()
		}
		// After c2s: its sessions have released their JIDs.
		s.stopCluster(ctx)
		s.memory.Stop()
	}
	s.stopDirectory()
	_ = s.store.Close()
}

// Reload applies what can change without a restart: certificates.
func (s *Server) Reload() error {
	if err := s.certs.Reload(); err != nil {
		return err
	}
	// Client CA bundle and CRLs (XEP-0178 certificate login).
	return s.c2s.Reload()
}

// C2SAddrs returns the client listener addresses (STARTTLS first, then
// direct TLS).
func (s *Server) C2SAddrs() []net.Addr { return s.c2s.Addrs() }

// ComponentAddr returns the XEP-0114 listener address, or nil when no
// external component is configured.
func (s *Server) ComponentAddr() net.Addr { return s.comp.Addr() }

// C2S returns the client stream server (for transports that arrive on
// other listeners, and tests).
func (s *Server) C2S() *c2s.Server { return s.c2s }

// Components returns the XEP-0114 component server.
func (s *Server) Components() *component.Server { return s.comp }

// HTTPAddr returns the metrics/health listener address, or nil.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// HTTPSAddr returns the public HTTPS listener's address, or nil when it is
// not bound (off, or nothing to serve).
func (s *Server) HTTPSAddr() net.Addr { return s.front.Addr() }

// HTTPSPlainAddr returns the reverse-proxy (plain HTTP) listener's
// address, or nil.
func (s *Server) HTTPSPlainAddr() net.Addr { return s.front.PlainAddr() }

// HTTPS returns the public HTTPS front door, on which other parts of the
// server (the WebSocket and BOSH transports) mount their handlers.
func (s *Server) HTTPS() *httpfront.Front { return s.front }

// Store returns the storage backend (tests and admin tools).
func (s *Server) Store() storage.Store { return s.store }

// Router returns the router (tests).
func (s *Server) Router() *router.Router { return s.router }

// Hosts returns the virtual hosts.
func (s *Server) Hosts() []*module.Host { return s.hosts }

// Metrics returns the server's collectors.
func (s *Server) Metrics() *metrics.Metrics { return s.metrics }
