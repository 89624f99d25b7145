package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"

	"parley/internal/config"
	"parley/internal/legacyauth"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
)

func cmdUser(args []string) int {
	return runStoreCommand("user", args, usage, userCommand)
}

func userCommand(ctx context.Context, cfg *config.Config, st storage.Store, cmd string, args []string) error {
	switch cmd {
	case "list":
		for _, h := range hostsOrAll(cfg, args) {
			if cfg.HostByDomain(h) == nil {
				return fmt.Errorf("%s is not a host of this server (see [[host]] in the config)", h)
			}
			if hc := cfg.HostByDomain(h); hc.AccountsInDirectory() {
				if err := listDirectoryUsers(ctx, cfg, h); err != nil {
					return err
				}
				continue
			}
			users, err := st.Accounts().List(ctx, h)
			if err != nil {
				return err
			}
			for _, u := range users {
				fmt.Printf("%s@%s\n", u, h)
			}
		}
		return nil
	case "fast":
		return userFAST(ctx, cfg, st, args)
	case "add", "passwd", "del", "disable", "enable":
	default:
		return fmt.Errorf("unknown user command %q (add, passwd, del, disable, enable, list, fast)", cmd)
	}
	if len(args) == 0 {
		return fmt.Errorf("user %s: JID required", cmd)
	}
	j, err := jid.Parse(args[0])
	if err != nil || j.Local() == "" || j.Resource() != "" {
		return fmt.Errorf("%q is not a bare JID user@host", args[0])
	}
	if cfg.HostByDomain(j.Domain()) == nil {
		return fmt.Errorf("%s is not a host of this server (see [[host]] in the config)", j.Domain())
	}
	inDirectory := cfg.HostByDomain(j.Domain()).AccountsInDirectory()
	if inDirectory && cmd != "passwd" {
		return errDirectoryHost(j.Domain())
	}
	if cmd == "disable" || cmd == "enable" {
		disable := cmd == "disable"
		if err := st.Accounts().SetDisabled(ctx, j.Domain(), j.Local(), disable); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no account %s", j)
			}
			return err
		}
		if !disable {
			fmt.Printf("enabled %s: it can log in again\n", j)
			return nil
		}
		fmt.Printf("disabled %s: it cannot log in; its data is kept\n", j)
		notifyServer(cfg, j, "/accounts/disabled", "disabled")
		return nil
	}
	if cmd == "del" {
		if err := st.Accounts().Delete(ctx, j.Domain(), j.Local()); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no account %s", j)
			}
			return err
		}
		fmt.Printf("deleted %s and all its data\n", j)
		notifyServer(cfg, j, "/accounts/deleted", "deleted")
		return nil
	}
	pw, err := password(args[1:])
	if err != nil {
		return err
	}
	if n := utf8.RuneCountInString(pw); n < cfg.Auth.MinPasswordLength {
		return fmt.Errorf("password too short: %d characters, at least %d required (auth.min_password_length)", n, cfg.Auth.MinPasswordLength)
	}
	if inDirectory {
		return setDirectoryPassword(ctx, cfg, j, pw)
	}
	// legacyauth keeps the XEP-0078 state (digest's cleartext copy, the
	// zero-knowledge chain) in step with the password, per host settings.
	if cmd == "add" {
		err = legacyauth.CreateAccount(ctx, st, cfg, storage.Account{Host: j.Domain(), Username: j.Local(), CreatedAt: time.Now().UTC()}, pw)
		if errors.Is(err, storage.ErrExists) {
			return fmt.Errorf("%s already exists", j)
		}
		if err == nil {
			fmt.Printf("created %s\n", j)
		}
		return err
	}
	err = legacyauth.SetPassword(ctx, st, cfg, j.Domain(), j.Local(), pw)
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("no account %s", j)
	}
	if err == nil {
		fmt.Printf("password of %s changed\n", j)
	}
	return err
}

// password takes the password from the arguments or reads one line from
// standard input (so it need not appear in the shell history).
func password(args []string) (string, error) {
	if len(args) > 0 {
		return args[0], nil
	}
	fd := int(os.Stdin.Fd())
	if term.IsTerminal(fd) {
		// Interactive: no echo, and typed twice so a typo does not lock
		// the user out.
		fmt.Fprint(os.Stderr, "Password: ")
		p1, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", err
		}
		fmt.Fprint(os.Stderr, "Again: ")
		p2, err := term.ReadPassword(fd)
		fmt.Fprintln(os.Stderr)
		if err != nil {
			return "", err
		}
		if string(p1) != string(p2) {
			return "", errors.New("the passwords differ")
		}
		return string(p1), nil
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password given")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// notifyServer tells a running server that account j was changed behind
// its back (path: /accounts/deleted or /accounts/disabled), so its
// sessions end now instead of acting (and writing data) for an account
// that no longer exists or may not log in. Without a running server there
// is nothing to tell.
func notifyServer(cfg *config.Config, j jid.JID, path, what string) {
	hc, running, err := adminClient(cfg)
	if errors.Is(err, errNoAdminSocket) {
		// Whether a server runs cannot be known; if one does, say what
		// this did not do.
		fmt.Fprintf(os.Stderr, "parley: note: admin_socket is off, so a running server was not told: open sessions of %s stay connected until they end (restart the server, or end them on the web console)\n", j)
		return
	}
	if err != nil || !running {
		return
	}
	body, ok := adminPost(hc, cfg.AdminSocket, path+"?jid="+url.QueryEscape(j.String()))
	if !ok {
		fmt.Fprintln(os.Stderr, "parley: warning: the account's open sessions stay connected until they log out")
		return
	}
	fmt.Printf("closed %s open session(s) of the %s account on the running server\n", strings.TrimSpace(body), what)
}
