// Package access decides who may log in to a virtual host and who
// administers it, from the host's allowed_users / allowed_groups / admins /
// admin_groups settings and group membership.
//
// Group membership comes from a GroupResolver. KVGroups keeps it in the
// storage key/value store (managed with `parley group`, for accounts that
// live in the database). The LDAP directory is the other resolver
// (directory.HostGroups, answering for the hosts with accounts =
// "directory" only): when a directory is configured, the server hands
// logins (c2s) and admin checks the Union of the two (internal/server,
// wireDirectory and wireAdmins); without one, KVGroups alone. This package
// does not import the directory, so the policy stays testable without LDAP.
package access

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"parley/internal/config"
	"parley/internal/storage"
)

// GroupResolver returns the groups an account belongs to.
type GroupResolver interface {
	Groups(ctx context.Context, host, username string) ([]string, error)
}

// Union asks every resolver and merges the answers; the first error wins.
type Union []GroupResolver

// Groups implements GroupResolver.
func (u Union) Groups(ctx context.Context, host, username string) ([]string, error) {
	var out []string
	for _, r := range u {
		g, err := r.Groups(ctx, host, username)
		if err != nil {
			return nil, err
		}
		out = append(out, g...)
	}
	sort.Strings(out)
	return slices.Compact(out), nil
}

// GroupsBucket is the KV bucket of stored group membership: owner is the
// member's bare JID (so deleting the account removes its memberships), key
// the group name.
const GroupsBucket = "groups"

// KVGroups keeps group membership in the storage KV store.
type KVGroups struct{ Store storage.Store }

// Groups implements GroupResolver.
func (g KVGroups) Groups(ctx context.Context, host, username string) ([]string, error) {
	m, err := g.Store.KV().List(ctx, GroupsBucket, username+"@"+host)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

// Add puts an account in a group.
func (g KVGroups) Add(ctx context.Context, host, username, group string) error {
	if group == "" {
		return errors.New("access: empty group name")
	}
	return g.Store.KV().Set(ctx, GroupsBucket, username+"@"+host, group, []byte{1})
}

// Remove takes an account out of a group (no error if it was not in it).
func (g KVGroups) Remove(ctx context.Context, host, username, group string) error {
	return g.Store.KV().Delete(ctx, GroupsBucket, username+"@"+host, group)
}

// Members lists the accounts of host in group (group "" lists every
// membership as "group user" pairs via the map).
func (g KVGroups) Members(ctx context.Context, host string) (map[string][]string, error) {
	users, err := g.Store.Accounts().List(ctx, host)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, u := range users {
		gs, err := g.Groups(ctx, host, u)
		if err != nil {
			return nil, err
		}
		for _, grp := range gs {
			out[grp] = append(out[grp], u)
		}
	}
	return out, nil
}

// Policy applies one host's access settings.
type Policy struct {
	Host   *config.Host
	Groups GroupResolver
}

// Denied is the reason a login was refused; it is for the log, never for
// the client (which gets the same failure as for a wrong password).
type Denied struct{ Reason string }

func (d *Denied) Error() string { return "access denied: " + d.Reason }

// CanLogin returns nil when username may log in, a *Denied when the policy
// refuses it, or another error when group lookup failed (callers refuse the
// login then too: failing open would bypass the policy).
func (p Policy) CanLogin(ctx context.Context, username string) error {
	h := p.Host
	if len(h.AllowedUsers) == 0 && len(h.AllowedGroups) == 0 {
		return nil
	}
	bare := username + "@" + h.Domain
	if slices.Contains(h.AllowedUsers, bare) {
		return nil
	}
	if len(h.AllowedGroups) > 0 && p.Groups != nil {
		gs, err := p.Groups.Groups(ctx, h.Domain, username)
		if err != nil {
			return fmt.Errorf("access: group lookup for %s: %w", bare, err)
		}
		for _, g := range gs {
			if slices.Contains(h.AllowedGroups, g) {
				return nil
			}
		}
	}
	return &Denied{Reason: bare + " is not in allowed_users and in none of allowed_groups"}
}

// IsAdmin reports whether username administers the host: listed in admins,
// or a member of one of admin_groups.
func (p Policy) IsAdmin(ctx context.Context, username string) (bool, error) {
	h := p.Host
	if slices.Contains(h.Admins, username+"@"+h.Domain) {
		return true, nil
	}
	if len(h.AdminGroups) == 0 || p.Groups == nil {
		return false, nil
	}
	gs, err := p.Groups.Groups(ctx, h.Domain, username)
	if err != nil {
		return false, err
	}
	for _, g := range gs {
		if slices.Contains(h.AdminGroups, g) {
			return true, nil
		}
	}
	return false, nil
}
