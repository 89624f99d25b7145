package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"parley/internal/config"
	"parley/internal/directory"
	"parley/internal/sasl"
	"parley/internal/xmpp/jid"
)

// errDirectoryHost is what `parley user add/del` says for a host
// whose accounts live in the LDAP directory.
func errDirectoryHost(host string) error {
	return fmt.Errorf("accounts of %s live in the LDAP directory (accounts = \"directory\" in its [[host]]): create, delete and disable them in the directory, not with parley user (parley user passwd changes a directory password)", host)
}

// setDirectoryPassword changes a directory user's password through the
// directory's service account: the password itself (RFC 3062 Password
// Modify) and the user's RFC 5803 SCRAM secrets, so the user can log in
// with SCRAM from then on.
func setDirectoryPassword(ctx context.Context, cfg *config.Config, j jid.JID, pw string) error {
	creds, err := sasl.DeriveCredentials(pw, cfg.Auth.ScramIterations)
	if err != nil {
		return err
	}
	d, err := directory.New(cfg.Directory, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})), nil)
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	err = d.SetPassword(ctx, j.Local(), pw, creds)
	if errors.Is(err, directory.ErrNoSuchUser) {
		return fmt.Errorf("no directory user %s", j)
	}
	if err == nil {
		fmt.Printf("password of %s changed in the directory (with SCRAM secrets)\n", j)
	}
	return err
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
