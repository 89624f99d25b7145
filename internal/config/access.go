package config

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"parley/internal/xmpp/jid"
)

// HostAccess is the service access control of one host ([host.access],
// seed 000's SACL): who may use each service. A rule with no allow list
// admits everyone not denied. Logging in also honours the host's
// allowed_users / allowed_groups, and administering its admins /
// admin_groups (internal/access).
type HostAccess struct {
	// Login: who may log in (added to allowed_users / allowed_groups).
	Login AccessRule `toml:"login"`
	// MUCCreate: who may create chat rooms on the host's service (on top of
	// [host.muc] room_creation).
	MUCCreate AccessRule `toml:"muc_create"`
	// MUCJoin: who may join the rooms of the host's chat service.
	MUCJoin AccessRule `toml:"muc_join"`
	// Proxy65: which of the host's users may use the file-transfer proxy.
	Proxy65 AccessRule `toml:"proxy65"`
	// Upload: who may upload files (XEP-0363) to the host's upload service.
	Upload AccessRule `toml:"upload"`
	// Federation: which of the host's users may talk to remote domains.
	Federation AccessRule `toml:"federation"`
}

// AccessRule admits a user when it is in neither deny list and, if either
// allow list is set, in Users or a member of one of Groups. Users are bare
// JIDs; groups are `parley group` groups (and, on directory hosts, the
// directory's groups).
type AccessRule struct {
	Users      []string `toml:"users"`
	Groups     []string `toml:"groups"`
	DenyUsers  []string `toml:"deny_users"`
	DenyGroups []string `toml:"deny_groups"`
}

// Restricts reports whether the rule refuses anyone at all.
func (r AccessRule) Restricts() bool {
	return len(r.Users)+len(r.Groups)+len(r.DenyUsers)+len(r.DenyGroups) > 0
}

// AccessServices names the rules of HostAccess in the order of the config
// keys; Rule returns one by name.
func AccessServices() []string {
	return []string{"login", "muc_create", "muc_join", "proxy65", "upload", "federation"}
}

// Rule returns the rule of a service named as in AccessServices.
func (a *HostAccess) Rule(service string) *AccessRule {
	switch service {
	case "login":
		return &a.Login
	case "muc_create":
		return &a.MUCCreate
	case "muc_join":
		return &a.MUCJoin
	case "proxy65":
		return &a.Proxy65
	case "upload":
		return &a.Upload
	case "federation":
		return &a.Federation
	}
	return nil
}

// RuleGroups returns every group name the host's access settings mention
// (allowed_groups, admin_groups, every rule's groups), sorted and unique:
// the names `parley config check` must find.
func (h *Host) RuleGroups() []string {
	set := map[string]bool{}
	for _, g := range h.AllowedGroups {
		set[g] = true
	}
	for _, g := range h.AdminGroups {
		set[g] = true
	}
	for _, s := range AccessServices() {
		r := h.Access.Rule(s)
		for _, g := range append(append([]string(nil), r.Groups...), r.DenyGroups...) {
			set[g] = true
		}
	}
	for _, sr := range h.SharedRoster {
		set[sr.Group] = true
	}
	out := make([]string, 0, len(set))
	for g := range set {
		out = append(out, g)
	}
	sort.Strings(out)
	return out
}

// SharedRosterGroup is one auto-buddy group of a host whose accounts live
// in the database ([[host.shared_roster]]): every member of the `parley
// group` Group gets the other members in its roster under Name.
type SharedRosterGroup struct {
	// Group is the stored group (parley group add GROUP JID).
	Group string `toml:"group"`
	// Name is the roster group users see (default: Group).
	Name string `toml:"name"`
}

func (h *Host) applyAccessDefaults() {
	for i := range h.SharedRoster {
		if h.SharedRoster[i].Name == "" {
			h.SharedRoster[i].Name = h.SharedRoster[i].Group
		}
	}
}

func (c *Config) applyAccessDefaults() {
	setDur(&c.Auth.GroupsPollInterval, 5*time.Second)
	for i := range c.Hosts {
		c.Hosts[i].applyAccessDefaults()
	}
}

// validateAccess checks the access rules and shared roster groups of host
// i; group names must exist, which only `parley config check` and the
// server can tell (they see storage and the directory: see
// internal/access.CheckGroups).
func (h *Host) validateAccess(i int, bad func(string, ...any)) {
	for _, s := range AccessServices() {
		r := h.Access.Rule(s)
		for _, u := range append(append([]string(nil), r.Users...), r.DenyUsers...) {
			if j, err := jid.Parse(u); err != nil || j.Local() == "" || j.Resource() != "" {
				bad("host[%d].access.%s: %q is not a bare JID (user@domain)", i, s, u)
			}
		}
		for _, g := range append(append([]string(nil), r.Groups...), r.DenyGroups...) {
			if strings.TrimSpace(g) == "" {
				bad("host[%d].access.%s: empty group name", i, s)
			}
		}
	}
	seen := map[string]bool{}
	for j, sr := range h.SharedRoster {
		switch {
		case strings.TrimSpace(sr.Group) == "":
			bad("host[%d].shared_roster[%d]: group is required", i, j)
		case seen[sr.Group]:
			bad("host[%d].shared_roster[%d]: group %q listed twice", i, j, sr.Group)
		}
		seen[sr.Group] = true
	}
	if len(h.SharedRoster) > 0 && h.AccountsInDirectory() {
		bad("host[%d].shared_roster: the host's accounts live in the directory: use [[directory.roster_group]] (directory groups) instead", i)
	}
}

func (c *Config) validateAccessSettings(bad func(string, ...any)) {
	if c.Auth.GroupsPollInterval.Duration < 100*time.Millisecond {
		bad("auth.groups_poll_interval: %s is too short (at least 100ms)", c.Auth.GroupsPollInterval.Duration)
	}
	for i := range c.Hosts {
		c.Hosts[i].validateAccess(i, bad)
	}
	c.validateDirectoryPolicy(bad)
}

// AccessProblem formats an unknown-group finding the way validation
// problems read.
func AccessProblem(host, group string) string {
	return fmt.Sprintf("host %s: the configuration names group %q (in admin_groups, allowed_groups, an access rule or a shared roster), which has no member in storage (parley group add %s JID) and is not a directory group", host, group, group)
}
