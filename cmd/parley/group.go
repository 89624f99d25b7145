package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sort"

	"parley/internal/access"
	"parley/internal/config"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
)

// cmdGroup manages group membership kept in storage (the groups that
// allowed_groups and admin_groups name, for hosts whose accounts live in the
// database; directory hosts take groups from LDAP).
func cmdGroup(args []string) int {
	return runStoreCommand("group", args, func() {
		fmt.Fprintln(os.Stderr, "usage: parley group add|del GROUP JID | parley group list [HOST]")
	}, groupCommand)
}

func groupCommand(ctx context.Context, cfg *config.Config, st storage.Store, cmd string, args []string) error {
	groups := access.KVGroups{Store: st}
	switch cmd {
	case "list":
		for _, h := range hostsOrAll(cfg, args) {
			members, err := groups.Members(ctx, h)
			if err != nil {
				return err
			}
			names := make([]string, 0, len(members))
			for g := range members {
				names = append(names, g)
			}
			sort.Strings(names)
			for _, g := range names {
				users := members[g]
				sort.Strings(users)
				for _, u := range users {
					fmt.Printf("%s\t%s@%s\n", g, u, h)
				}
			}
		}
		return nil
	case "add", "del":
	default:
		return fmt.Errorf("unknown group command %q (add, del, list)", cmd)
	}
	if len(args) != 2 || args[0] == "" {
		return fmt.Errorf("usage: parley group %s GROUP JID", cmd)
	}
	group := args[0]
	j, err := jid.Parse(args[1])
	if err != nil || j.Local() == "" || j.Resource() != "" {
		return fmt.Errorf("%q is not a bare JID user@host", args[1])
	}
	if cfg.HostByDomain(j.Domain()) == nil {
		return fmt.Errorf("%s is not a host of this server", j.Domain())
	}
	if _, err := st.Accounts().Get(ctx, j.Domain(), j.Local()); err != nil {
		return fmt.Errorf("no account %s", j)
	}
	if cmd == "add" {
		if err := groups.Add(ctx, j.Domain(), j.Local(), group); err != nil {
			return err
		}
		fmt.Printf("added %s to %s\n", j, group)
		return nil
	}
	in, err := groups.Groups(ctx, j.Domain(), j.Local())
	if err != nil {
		return err
	}
	if !slices.Contains(in, group) {
		return fmt.Errorf("%s is not a member of %s", j, group)
	}
	if err := groups.Remove(ctx, j.Domain(), j.Local(), group); err != nil {
		return err
	}
	fmt.Printf("removed %s from %s\n", j, group)
	return nil
}
