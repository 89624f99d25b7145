package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"time"

	"parley/internal/buildinfo"
	"parley/internal/config"
	"parley/internal/server"
)

func newLogger(cfg *config.Config, level *slog.LevelVar) *slog.Logger {
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func cmdServe(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "", "config file (default: ./parley.toml if present, else built-in defaults)")
	if _, err := parseFlags(fs, args); err != nil {
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley: config:", err)
		return 1
	}
	level := new(slog.LevelVar)
	log := newLogger(cfg, level)
	ctx := context.Background()
	srv, err := server.New(ctx, cfg, server.Options{Log: log})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if err := srv.Start(ctx); err != nil {
		log.Error("cannot start", "err", err)
		srv.Shutdown(ctx)
		return 1
	}
	if cfg.Log.Format == "json" {
		// One record, so that every line of standard error stays JSON.
		var b strings.Builder
		printWelcome(&b, cfg, srv, *path)
		log.Info("started", "banner", strings.TrimSpace(b.String()))
	} else {
		printWelcome(os.Stderr, cfg, srv, *path)
	}

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	for s := range sig {
		if s == syscall.SIGHUP {
			reload(*path, cfg, level, srv, log)
			continue
		}
		log.Info("shutting down", "signal", s.String())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		srv.Shutdown(ctx)
		cancel()
		return 0
	}
	return 0
}

// reload re-reads the config file for what can change at run time (log
// level, certificates); other changes need a restart and are reported.
func reload(path string, running *config.Config, level *slog.LevelVar, srv *server.Server, log *slog.Logger) {
	cfg, err := loadConfig(path)
	if err != nil {
		log.Error("reload: config invalid, keeping the running one", "err", err)
		return
	}
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	if err := srv.Reload(); err != nil {
		log.Error("reload: certificates", "err", err)
		return
	}
	log.Info("reloaded certificates, client CA/CRLs and log level")
	if changed := restartNeeded(running, cfg); len(changed) > 0 {
		log.Warn("reload: these settings changed and need a restart to apply", "sections", strings.Join(changed, ", "))
	}
}

// restartNeeded lists the top-level sections (or keys) whose values differ
// between the running and the re-read config, leaving out what a reload
// applies (the log level).
func restartNeeded(running, next *config.Config) []string {
	// Unredacted: a changed secret (NATS credentials, say) needs a
	// restart too; only section names are printed.
	a, b := *running, *next
	a.Log.Level, b.Log.Level = "", ""
	ta, tb := reflect.TypeOf(a), reflect.ValueOf(b)
	va := reflect.ValueOf(a)
	var changed []string
	for i := 0; i < ta.NumField(); i++ {
		if !reflect.DeepEqual(va.Field(i).Interface(), tb.Field(i).Interface()) {
			name, _, _ := strings.Cut(ta.Field(i).Tag.Get("toml"), ",")
			changed = append(changed, name)
		}
	}
	return changed
}

// printWelcome writes the start banner: domains, listeners, services, data
// and how to create a first account.
func printWelcome(w io.Writer, cfg *config.Config, srv *server.Server, configPath string) {
	fmt.Fprintf(w, "\nParley %s is running.\n", buildinfo.Version())
	var dbHost string
	selfSigned := false
	for _, h := range cfg.Hosts {
		where := "accounts in the database"
		if h.AccountsInDirectory() {
			where = "accounts in the LDAP directory"
		} else if dbHost == "" {
			dbHost = h.Domain
		}
		fmt.Fprintf(w, "  domain:      %s (%s)\n", h.Domain, where)
		if h.CertFile == "" && cfg.TLS.CertFile == "" {
			selfSigned = true
		}
		if h.MUC.Enabled != nil && *h.MUC.Enabled {
			fmt.Fprintf(w, "  chat rooms:  %s\n", h.MUC.Domain)
		}
		if h.Upload.Enabled {
			fmt.Fprintf(w, "  file upload: %s (XEP-0363)\n", h.Upload.Domain)
		}
	}
	for i, a := range srv.C2SAddrs() {
		kind := "STARTTLS"
		if i >= len(cfg.C2S.Listen) {
			kind = "direct TLS, XEP-0368"
		}
		fmt.Fprintf(w, "  clients:     %s (%s)\n", a, kind)
	}
	if fed := srv.S2S(); fed != nil {
		for _, a := range fed.Addrs() {
			fmt.Fprintf(w, "  federation:  %s\n", a)
		}
	}
	// The XEP-0114 listener serves the external components only; client
	// proxies are internal services, answered by an account's resources.
	var external []string
	var proxies []config.ComponentService
	for _, c := range cfg.Component.Services {
		if c.Type == config.ComponentClientProxy {
			proxies = append(proxies, c)
		} else {
			external = append(external, c.Domain)
		}
	}
	if a := srv.ComponentAddr(); a != nil {
		fmt.Fprintf(w, "  components:  %s (XEP-0114: %s)\n", a, strings.Join(external, ", "))
	}
	for _, c := range proxies {
		fmt.Fprintf(w, "  IQ service:  %s (client proxy, answered by %s)\n", c.Domain, c.TargetAddress)
	}
	if cfg.Proxy65.Enabled {
		fmt.Fprintf(w, "  file proxy:  %s (SOCKS5 on %s)\n", cfg.Proxy65.Domain, cfg.Proxy65.Listen)
	}
	if a := srv.HTTPSAddr(); a != nil {
		fmt.Fprintf(w, "  https:       %s (public: %s)\n", a, strings.Join(httpsServices(cfg), ", "))
	}
	if a := srv.HTTPSPlainAddr(); a != nil {
		fmt.Fprintf(w, "  https proxy: %s (plain HTTP for %s only)\n", a, strings.Join(cfg.HTTPS.TrustedProxies, ", "))
	}
	if a := srv.HTTPAddr(); a != nil {
		fmt.Fprintf(w, "  metrics:     http://%s/metrics  health: http://%s/healthz\n", a, a)
	}
	if cfg.AdminSocket != "-" {
		fmt.Fprintf(w, "  admin:       %s\n", cfg.AdminSocket)
	}
	fmt.Fprintf(w, "  data:        %s\n", cfg.DataDir)
	if selfSigned {
		fmt.Fprintf(w, "  certificate: self-signed (%s) for hosts without their own; clients will ask you to accept it\n",
			filepath.Join(cfg.DataDir, "selfsigned.crt"))
	}
	if dbHost != "" {
		flag := ""
		if configPath != "" {
			flag = " --config " + configPath
		}
		fmt.Fprintf(w, "\nCreate an account, then log in with any XMPP client as user@%s:\n  parley user add alice@%s%s\n\n", dbHost, dbHost, flag)
	} else {
		fmt.Fprintln(w, "\nUsers log in with their directory accounts.")
	}
}

// httpsServices names what the public HTTPS listener serves, for the
// banner: the administrator sees why a port is open.
func httpsServices(cfg *config.Config) []string {
	var out []string
	for _, h := range cfg.Hosts {
		if h.Upload.Enabled {
			out = append(out, "file upload")
			break
		}
	}
	if cfg.HTTPS.WebSocket {
		out = append(out, "WebSocket")
	}
	if cfg.HTTPS.BOSH {
		out = append(out, "BOSH")
	}
	if cfg.Console.Admin {
		out = append(out, "admin console /admin/")
	}
	if cfg.Console.Account {
		out = append(out, "account page /account/")
	}
	return append(out, "host-meta")
}
