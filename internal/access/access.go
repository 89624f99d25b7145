// Package access is Parley's service access control (seed 000's SACL):
// who may log in to a virtual host, create and join its chat rooms, use
// the file-transfer proxy, upload files, talk to remote domains, and
// administer it. Control (control.go) is the one API modules ask, per
// host, from the host's [host.access] rules, allowed_users /
// allowed_groups, admins / admin_groups, and the overrides the directory
// holds (config_base).
//
// Group membership comes from a GroupResolver. KVGroups keeps it in the
// storage key/value store (managed with `parley group`, for accounts that
// live in the database), with a per-host change mark that lets a running
// server notice changes made by another process. The LDAP directory is the
// other resolver (directory.HostGroups, answering for the hosts with
// accounts = "directory" only): when a directory is configured, the server
// hands every Control the Union of the two. This package does not import
// the directory, so the policy stays testable without LDAP.
package access

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sort"

	"parley/internal/config"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
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

// Add puts an account in a group and marks the host's groups changed.
func (g KVGroups) Add(ctx context.Context, host, username, group string) error {
	if group == "" {
		return errors.New("access: empty group name")
	}
	if err := g.Store.KV().Set(ctx, GroupsBucket, username+"@"+host, group, []byte{1}); err != nil {
		return err
	}
	return g.Touch(ctx, host)
}

// Remove takes an account out of a group (no error if it was not in it)
// and marks the host's groups changed.
func (g KVGroups) Remove(ctx context.Context, host, username, group string) error {
	if err := g.Store.KV().Delete(ctx, GroupsBucket, username+"@"+host, group); err != nil {
		return err
	}
	return g.Touch(ctx, host)
}

// VersionBucket holds one change mark per host (owner = the host, key
// "v"): every membership change writes a new random value, so a running
// server notices changes made by another process (`parley group`) by
// reading one key per poll (see Watcher). A random value rather than a
// counter: two writers never need to read-modify-write it.
const VersionBucket = "groups.version"

// Touch marks host's group membership changed (also after an account's
// memberships disappeared with the account).
func (g KVGroups) Touch(ctx context.Context, host string) error {
	v := make([]byte, 16)
	_, _ = rand.Read(v)
	return g.Store.KV().Set(ctx, VersionBucket, host, "v", v)
}

// Version returns host's change mark (nil before any change).
func (g KVGroups) Version(ctx context.Context, host string) ([]byte, error) {
	v, err := g.Store.KV().Get(ctx, VersionBucket, host, "v")
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	return v, err
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

// Policy applies one host's access settings from the file alone (no
// directory overrides); the server gives modules a Control instead.
type Policy struct {
	Host   *config.Host
	Groups GroupResolver
}

// CanLogin returns nil when username may log in, a *Denied when the policy
// refuses it, or another error when group lookup failed (callers refuse the
// login then too: failing open would bypass the policy).
func (p Policy) CanLogin(ctx context.Context, username string) error {
	return NewControl(p.Host, p.Groups, nil).CanLogin(ctx, username)
}

// IsAdmin reports whether username administers the host: listed in admins,
// or a member of one of admin_groups.
func (p Policy) IsAdmin(ctx context.Context, username string) (bool, error) {
	j, err := jid.New(username, p.Host.Domain, "")
	if err != nil {
		return false, nil
	}
	return NewControl(p.Host, p.Groups, nil).IsAdmin(ctx, j)
}
