package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
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
	printWelcome(cfg, srv)

	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	for s := range sig {
		if s == syscall.SIGHUP {
			reload(*path, level, srv, log)
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
func reload(path string, level *slog.LevelVar, srv *server.Server, log *slog.Logger) {
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
	log.Info("reloaded certificates and log level")
}

func printWelcome(cfg *config.Config, srv *server.Server) {
	fmt.Fprintf(os.Stderr, "\nParley %s is running.\n", buildinfo.Version())
	for _, h := range cfg.Hosts {
		fmt.Fprintf(os.Stderr, "  domain:      %s\n", h.Domain)
	}
	for i, a := range srv.C2SAddrs() {
		kind := "STARTTLS"
		if i >= len(cfg.C2S.Listen) {
			kind = "direct TLS (XEP-0368)"
		}
		fmt.Fprintf(os.Stderr, "  clients:     %s (%s)\n", a, kind)
	}
	if a := srv.HTTPAddr(); a != nil {
		fmt.Fprintf(os.Stderr, "  metrics:     http://%s/metrics  health: http://%s/healthz\n", a, a)
	}
	fmt.Fprintf(os.Stderr, "  data:        %s\n", cfg.DataDir)
	if cfg.TLS.CertFile == "" {
		fmt.Fprintf(os.Stderr, "  certificate: self-signed (%s/selfsigned.crt); clients will ask you to accept it\n", cfg.DataDir)
	}
	fmt.Fprintf(os.Stderr, "\nCreate an account, then log in with any XMPP client as user@%s:\n  parley user add alice@%s\n\n", cfg.Hosts[0].Domain, cfg.Hosts[0].Domain)
}
