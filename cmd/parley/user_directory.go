package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"parley/internal/config"
	"parley/internal/directory"
)

// errDirectoryHost is what `parley user add/passwd/del` says for a host
// whose accounts live in the LDAP directory.
func errDirectoryHost(host string) error {
	return fmt.Errorf("accounts of %s live in the LDAP directory (accounts = \"directory\" in its [[host]]): create, delete, disable them and change passwords in the directory, not with parley user", host)
}

// listDirectoryUsers prints the enabled users of a directory host, after a
// note on stderr saying where they come from.
func listDirectoryUsers(ctx context.Context, cfg *config.Config, host string) error {
	fmt.Fprintf(os.Stderr, "# %s: accounts live in the LDAP directory (%s)\n", host, cfg.Directory.UserBase)
	d, err := directory.New(cfg.Directory, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})), nil)
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	s, err := d.Refresh(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", host, err)
	}
	var names []string
	for name, u := range s.Users {
		if !u.Disabled {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Printf("%s@%s\n", n, host)
	}
	return nil
}
