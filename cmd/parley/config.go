package main

import (
	"flag"
	"fmt"
	"os"

	"parley/internal/config"
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
	b, err := cfg.Redacted().Encode()
	if err != nil {
		fmt.Fprintln(os.Stderr, "parley:", err)
		return 1
	}
	fmt.Print("# effective configuration (valid)\n", string(b))
	return 0
}
