package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"parley/internal/config"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
)

// userFAST runs `parley user fast list JID` and `parley user fast revoke
// JID [ID|all]`: an administrator (or a user who lost a phone) sees which
// clients hold XEP-0484 tokens and takes them away. Revoking stops future
// token logins; a session already open stays until it ends (`parley user
// passwd` does the same for passwords and tokens together).
func userFAST(ctx context.Context, cfg *config.Config, st storage.Store, args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: parley user fast list JID | parley user fast revoke JID [ID|all]")
	}
	sub, who := args[0], args[1]
	j, err := jid.Parse(who)
	if err != nil || j.Local() == "" || j.Resource() != "" {
		return fmt.Errorf("%q is not a bare JID user@host", who)
	}
	if cfg.HostByDomain(j.Domain()) == nil {
		return fmt.Errorf("%s is not a host of this server (see [[host]] in the config)", j.Domain())
	}
	switch sub {
	case "list":
		if len(args) > 2 {
			return fmt.Errorf("user fast list: unexpected %q", args[2])
		}
		toks, err := st.FAST().List(ctx, j.Domain(), j.Local())
		if err != nil {
			return err
		}
		if len(toks) == 0 {
			fmt.Printf("%s has no FAST tokens\n", j)
			return nil
		}
		tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tMECHANISM\tSTATE\tISSUED\tEXPIRES\tLAST USED\tCLIENT")
		now := time.Now()
		for _, t := range toks {
			state := "new"
			if t.Current {
				state = "current"
			}
			if !now.Before(t.ExpiresAt) {
				state = "expired"
			}
			used := "never"
			if !t.LastUsed.IsZero() {
				used = stamp(t.LastUsed)
			}
			client := t.ClientID
			if t.Software != "" || t.Device != "" {
				client = fmt.Sprintf("%s on %s (%s)", orDash(t.Software), orDash(t.Device), t.ClientID)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Mechanism, state, stamp(t.IssuedAt), stamp(t.ExpiresAt), used, client)
		}
		return tw.Flush()
	case "revoke":
		id := ""
		switch {
		case len(args) > 3:
			return fmt.Errorf("user fast revoke: unexpected %q", args[3])
		case len(args) == 3 && args[2] != "all":
			id = args[2]
		}
		n, err := st.FAST().Revoke(ctx, j.Domain(), j.Local(), id)
		if err != nil {
			return err
		}
		if id != "" && n == 0 {
			return fmt.Errorf("%s has no FAST token %s (see parley user fast list %s)", j, id, j)
		}
		fmt.Printf("revoked %d FAST token(s) of %s\n", n, j)
		return nil
	}
	return fmt.Errorf("unknown user fast command %q (list, revoke)", sub)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04Z") }

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
