package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"parley/internal/config"
	"parley/internal/gssapi"
	"parley/internal/server"
	"parley/internal/storage"
)

// loadConfig loads --config, or the zero-config defaults when no file is
// given and ./parley.toml does not exist.
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		if _, err := os.Stat("parley.toml"); err == nil {
			path = "parley.toml"
		}
	}
	if path == "" {
		return config.Default(), nil
	}
	return config.Load(path)
}

// parseFlags parses flags that may appear anywhere among positional args.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// storeCommand is a subcommand that works on the configured storage
// offline (parley user ..., parley group ...): cmd is its first positional
// argument, args the rest.
type storeCommand func(ctx context.Context, cfg *config.Config, st storage.Store, cmd string, args []string) error

// runStoreCommand parses --config, loads the configuration, opens the
// store and runs run; usage is called when no subcommand is given. It
// returns the process exit code: 2 for usage errors, 1 for failures.
func runStoreCommand(name string, args []string, usage func(), run storeCommand) int {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "", "config file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) == 0 {
		usage()
		return 2
	}
	return withStore(*path, func(ctx context.Context, cfg *config.Config, st storage.Store) error {
		return run(ctx, cfg, st, pos[0], pos[1:])
	})
}

// withStore loads the configuration at path, opens its storage and runs
// fn on it, for the commands that work on storage directly while the
// server runs or not. It returns the process exit code: 1 when anything
// failed, with the reason on standard error.
func withStore(path string, fn func(ctx context.Context, cfg *config.Config, st storage.Store) error) int {
	cfg, err := loadConfig(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley: config:", err)
		return 1
	}
	ctx := context.Background()
	st, err := server.OpenStore(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley: storage:", err)
		return 1
	}
	defer st.Close()
	if err := fn(ctx, cfg, st); err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		return 1
	}
	return 0
}

// hostsOrAll returns the hosts named on the command line, or every
// configured host when none is.
func hostsOrAll(cfg *config.Config, named []string) []string {
	if len(named) > 0 {
		return named
	}
	hosts := make([]string, 0, len(cfg.Hosts))
	for _, h := range cfg.Hosts {
		hosts = append(hosts, h.Domain)
	}
	return hosts
}

func cmdConfig(args []string) int {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	path := fs.String("config", "", "config file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return 2
	}
	if len(pos) != 1 || pos[0] != "check" {
		fmt.Fprintln(os.Stderr, "usage: parley config check [--config FILE]")
		return 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley: config:", err)
		return 1
	}
	if err := checkKeytabs(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "parley: config:", err)
		return 1
	}
	b, err := cfg.Redacted().Encode()
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		return 1
	}
	fmt.Print("# effective configuration (valid)\n", string(b))
	return 0
}

// checkKeytabs loads each host's Kerberos keytab as serve would, so a
// keytab that is not one, or lacks the service principal, is reported by
// config check rather than at the first start.
func checkKeytabs(cfg *config.Config) error {
	for i, h := range cfg.Hosts {
		k := h.Kerberos
		if !k.Enabled() {
			continue
		}
		if _, err := gssapi.New(gssapi.Config{Keytab: k.Keytab, Principal: k.ServicePrincipal(), MaxTokenBytes: k.MaxTokenBytes,
			MaxClockSkew: k.MaxClockSkew.Duration, ReplayCacheSize: k.ReplayCacheSize}); err != nil {
			return fmt.Errorf("host[%d].kerberos.keytab: %w", i, err)
		}
	}
	return nil
}
