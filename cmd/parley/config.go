package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"parley/internal/access"
	"parley/internal/config"
	"parley/internal/directory"
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
	if path == "" && cfg.Storage == "sqlite" {
		if _, err := os.Stat("parley.toml"); err != nil {
			// Run from another directory than the server's, this would
			// quietly work on a database of its own: say which.
			fmt.Fprintf(os.Stderr, "parley: no --config and no ./parley.toml: built-in defaults, database %s\n", cfg.SQLitePath)
		}
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
	if problems := checkPolicySources(cfg); len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintln(os.Stderr, "parley: config:", p)
		}
		return 1
	}
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

// checkPolicySources looks at what the file alone cannot show: the
// per-host policy values held in the directory (config_base), printed with
// the entry they came from, and whether every group the access rules
// name exists (members in storage, or a directory group on a directory
// host). It returns the problems; what could not be checked (storage or
// directory unreachable) is said on standard error without failing.
func checkPolicySources(cfg *config.Config) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	known := map[string]map[string]bool{}
	for _, h := range cfg.Hosts {
		known[h.Domain] = map[string]bool{}
	}
	// Nothing to look up: no storage is opened (config check has no side
	// effects on a configuration without group rules or config_base).
	needDirectory := cfg.Directory.ConfigBase != ""
	needGroups := needDirectory
	for i := range cfg.Hosts {
		if len(cfg.Hosts[i].RuleGroups()) > 0 {
			needGroups = true
			needDirectory = needDirectory || cfg.Hosts[i].AccountsInDirectory()
		}
	}
	if !needGroups {
		return nil
	}
	checkGroups := true
	if st, err := server.OpenStore(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "parley: config: storage not opened, stored groups not checked:", err)
		checkGroups = false
	} else {
		groups := access.KVGroups{Store: st}
		for _, h := range cfg.Hosts {
			members, err := groups.Members(ctx, h.Domain)
			if err != nil {
				fmt.Fprintln(os.Stderr, "parley: config: reading stored groups:", err)
				checkGroups = false
				break
			}
			for g := range members {
				known[h.Domain][g] = true
			}
		}
		st.Close()
	}
	var policies map[string]*access.Overrides
	if needDirectory && cfg.Directory.Enabled() {
		d, err := directory.New(cfg.Directory, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
		var snap *directory.Snapshot
		if err == nil {
			snap, err = d.Refresh(ctx)
			d.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "parley: config: directory not read, its groups and host policies not checked:", err)
			checkGroups = false
		} else {
			policies = snap.Policies
			for _, h := range cfg.Hosts {
				if h.AccountsInDirectory() {
					for g := range snap.Groups {
						known[h.Domain][g] = true
					}
				}
			}
		}
	}
	var problems []string
	if len(policies) > 0 {
		fmt.Println("\n# per-host policy held in the directory (config_base); these values replace the file's")
	}
	for i := range cfg.Hosts {
		h := &cfg.Hosts[i]
		o := policies[h.Domain]
		if o != nil {
			s := access.Effective(h, o)
			fmt.Printf("# host %s, from %s\n", h.Domain, o.Source)
			keys := make([]string, 0, len(s.From))
			for k := range s.From {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				fmt.Printf("#   %s = %s\n", k, policyValue(s, k))
			}
		}
		if checkGroups {
			for _, g := range access.UnknownGroups(h, o, known[h.Domain]) {
				problems = append(problems, config.AccessProblem(h.Domain, g))
			}
		}
	}
	for domain, o := range policies {
		if cfg.HostByDomain(domain) == nil {
			fmt.Fprintf(os.Stderr, "parley: config: directory entry %s names host %s, which this configuration does not serve\n", o.Source, domain)
		}
	}
	return problems
}

// policyValue prints one effective setting as TOML would.
func policyValue(s access.Settings, key string) string {
	list := func(l []string) string {
		q := make([]string, len(l))
		for i, v := range l {
			q[i] = strconv.Quote(v)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	switch key {
	case "admins":
		return list(s.Admins)
	case "admin_groups":
		return list(s.AdminGroups)
	case "allowed_users":
		return list(s.AllowedUsers)
	case "allowed_groups":
		return list(s.AllowedGroups)
	case "registration.enabled":
		return strconv.FormatBool(s.Registration)
	case "s2s.allowed_domains":
		return list(s.FederationAllow)
	case "s2s.blocked_domains":
		return list(s.FederationBlock)
	case "muc.room_creation":
		return strconv.Quote(s.RoomCreation)
	}
	return "?"
}

// listCommand parses the arguments of a read-only subcommand that prints
// a table or JSON ("parley s2s list", "parley cluster status"): args[0]
// must be sub, then --config and --json. It returns the loaded config, or
// nil and the exit code after printing why.
func listCommand(args []string, sub, name string) (cfg *config.Config, asJSON bool, code int) {
	usage := "usage: parley " + name + " [--config FILE] [--json]"
	if len(args) == 0 || args[0] != sub {
		fmt.Fprintln(os.Stderr, usage)
		return nil, false, 2
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "", "config file")
	js := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args[1:]); err != nil {
		return nil, false, 2
	}
	cfg, err := loadConfig(*path)
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley: config:", err)
		return nil, false, 1
	}
	return cfg, *js, 0
}
