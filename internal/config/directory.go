package config

import (
	"net"
	"os"
	"strings"
	"time"
)

// Directory configures the LDAP directory ([directory]) that hosts with
// accounts = "directory" take their users, passwords, profiles, roster
// groups and persistent rooms from (seeds 000 and 001). One directory serves
// every such host; the JID localpart is the user's localpart attribute.
type Directory struct {
	// Servers are tried in order ("host:port"; the port defaults to 389, or
	// 636 with tls = "ldaps"). Empty: no directory.
	Servers []string `toml:"servers"`
	// TLS is "starttls" (default), "ldaps" or "none". "none" sends the
	// service password and every user's password in clear: loopback only.
	TLS string `toml:"tls"`
	// CAFile: PEM CAs that sign the directory's certificate (default: the
	// system roots). ServerName overrides the name checked in it.
	CAFile     string `toml:"ca_file"`
	ServerName string `toml:"server_name"`
	// BindDN / BindPassword (or BindPasswordFile) are the service account
	// used for searches. Both empty: searches are made anonymously.
	BindDN           string `toml:"bind_dn"`
	BindPassword     string `toml:"bind_password"`
	BindPasswordFile string `toml:"bind_password_file"`
	// DialTimeout bounds connecting (TCP + TLS + service bind); default 5s.
	DialTimeout Duration `toml:"dial_timeout"`
	// RequestTimeout bounds one LDAP operation; default 10s.
	RequestTimeout Duration `toml:"request_timeout"`
	// PoolSize bounds the open connections to the directory; default 8.
	PoolSize int `toml:"pool_size"`
	// Retries: how many more rounds over all servers after the first fails
	// (default 1), RetryDelay apart (default 200ms).
	Retries    int      `toml:"retries"`
	RetryDelay Duration `toml:"retry_delay"`
	// PollInterval: how often groups (roster pre-population, access groups)
	// and rooms are re-read; default 1m.
	PollInterval Duration `toml:"poll_interval"`

	// UserBase is the subtree searched for users (required).
	UserBase string `toml:"user_base"`
	// UserFilter finds one user; %u is the escaped localpart (RFC 4515).
	// Default "(&(objectClass=inetOrgPerson)(uid=%u))"; Active Directory:
	// "(&(objectClass=user)(sAMAccountName=%u))".
	UserFilter string `toml:"user_filter"`
	// UserListFilter enumerates all users (group members, `parley user
	// list`); default: user_filter with %u replaced by *.
	UserListFilter string `toml:"user_list_filter"`
	// LocalpartAttribute holds the JID localpart (default "uid"; AD
	// "sAMAccountName").
	LocalpartAttribute string `toml:"localpart_attribute"`
	// DisabledAttribute marks disabled/locked accounts: the account is
	// disabled when the attribute has one of DisabledValues (case-insensitive)
	// or, with DisabledBitmask set, when its integer value has one of those
	// bits (AD: disabled_attribute = "userAccountControl", disabled_bitmask = 2).
	DisabledAttribute string   `toml:"disabled_attribute"`
	DisabledValues    []string `toml:"disabled_values"`
	DisabledBitmask   int64    `toml:"disabled_bitmask"`
	// CertificateAttribute: for SASL EXTERNAL, the attribute matched
	// against the certificate's address ("" = the localpart attribute, with
	// the address's localpart).
	CertificateAttribute string `toml:"certificate_attribute"`

	// GroupBase is the subtree searched for groups ("" = no groups).
	GroupBase string `toml:"group_base"`
	// GroupFilter selects groups; default any groupOfNames,
	// groupOfUniqueNames or posixGroup.
	GroupFilter string `toml:"group_filter"`
	// GroupNameAttribute names a group (default "cn").
	GroupNameAttribute string `toml:"group_name_attribute"`
	// GroupMemberAttributes hold members: DNs (member, uniqueMember) or
	// localparts (memberUid). Default all three.
	GroupMemberAttributes []string `toml:"group_member_attributes"`
	// MaxEntries bounds one enumeration (users, groups, rooms); default 10000.
	MaxEntries int `toml:"max_entries"`

	// RosterGroups are pre-populated into every member's roster.
	RosterGroups []DirectoryRosterGroup `toml:"roster_group"`
	// RosterAttribute holds static roster entries of a user: DNs of other
	// directory users or bare JIDs ("" = none).
	RosterAttribute string `toml:"roster_attribute"`

	// Profile maps vCard (XEP-0054) / XEP-0154 fields to the directory; a
	// field not listed keeps its default (XEP-0154's LDAP attribute in
	// readonly mode, or local when XEP-0154 maps it to no LDAP attribute).
	Profile map[string]DirectoryProfileField `toml:"profile"`
	// ProfileUpdateBind: "service" (default) writes update-mode fields with
	// the service account; "user" writes them with the user's authority
	// (RFC 4370 proxied authorization as the user's DN, so the directory's
	// own access rules decide).
	ProfileUpdateBind string `toml:"profile_update_bind"`

	// RoomBase is the subtree of persistent room entries ("" = none).
	RoomBase string `toml:"room_base"`
	// RoomFilter selects rooms; default "(objectClass=groupOfNames)".
	RoomFilter string `toml:"room_filter"`
	// Room attributes: name (the room's localpart; default "cn"),
	// description ("description"), members ("member") and admins ("owner"):
	// DNs of directory users or bare JIDs.
	RoomNameAttribute        string `toml:"room_name_attribute"`
	RoomDescriptionAttribute string `toml:"room_description_attribute"`
	RoomMemberAttribute      string `toml:"room_member_attribute"`
	RoomAdminAttribute       string `toml:"room_admin_attribute"`

	// Directory-held policy and room write-back: see dirpolicy.go.
	DirectoryPolicy
}

// DirectoryRosterGroup is one directory group pre-populated into its
// members' rosters under a roster group name.
type DirectoryRosterGroup struct {
	Group string `toml:"group"` // the directory group's name (group_name_attribute)
	Name  string `toml:"name"`  // the roster group shown to users (default: Group)
}

// DirectoryProfileField is the mode of one profile field.
type DirectoryProfileField struct {
	// Mode: "readonly", "update", "static" or "local" (seed 001).
	Mode string `toml:"mode"`
	// Attribute overrides the LDAP attribute (readonly, update).
	Attribute string `toml:"attribute"`
	// Value is the fixed value (static).
	Value string `toml:"value"`
}

// Profile modes.
const (
	ProfileReadonly = "readonly"
	ProfileUpdate   = "update"
	ProfileStatic   = "static"
	ProfileLocal    = "local"
)

// DirectoryProfileFieldNames lists the profile fields Parley maps (XEP-0154
// field names); internal/directory holds their vCard paths and default
// attributes.
func DirectoryProfileFieldNames() []string {
	return []string{"display_name", "family_name", "given_name", "middle_name",
		"name_prefix", "name_suffix", "nickname", "email", "landline", "mobile",
		"fax", "pager", "job_title", "org_name", "org_unit", "org_role",
		"street", "locality", "region", "postalcode", "country", "postalbox",
		"homepage", "description", "photo_data", "birthday", "jid"}
}

// Host account sources.
const (
	AccountsDatabase  = "database"
	AccountsDirectory = "directory"
)

// Enabled reports whether a directory is configured.
func (d Directory) Enabled() bool { return len(d.Servers) > 0 }

// ServiceBindPassword returns bind_password, or the first line of
// bind_password_file.
func (d Directory) ServiceBindPassword() (string, error) {
	if d.BindPasswordFile == "" {
		return d.BindPassword, nil
	}
	b, err := os.ReadFile(d.BindPasswordFile)
	if err != nil {
		return "", err
	}
	s, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimRight(s, "\r"), nil
}

func (c *Config) applyDirectoryDefaults() {
	for i := range c.Hosts {
		if c.Hosts[i].Accounts == "" {
			c.Hosts[i].Accounts = AccountsDatabase
		}
	}
	d := &c.Directory
	if d.TLS == "" {
		d.TLS = "starttls"
	}
	setDur(&d.DialTimeout, 5*time.Second)
	setDur(&d.RequestTimeout, 10*time.Second)
	setInt(&d.PoolSize, 8)
	if d.Retries == 0 {
		d.Retries = 1
	}
	setDur(&d.RetryDelay, 200*time.Millisecond)
	setDur(&d.PollInterval, time.Minute)
	if d.UserFilter == "" {
		d.UserFilter = "(&(objectClass=inetOrgPerson)(uid=%u))"
	}
	if d.UserListFilter == "" {
		d.UserListFilter = strings.ReplaceAll(d.UserFilter, "%u", "*")
	}
	if d.LocalpartAttribute == "" {
		d.LocalpartAttribute = "uid"
	}
	if d.GroupFilter == "" {
		d.GroupFilter = "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames)(objectClass=posixGroup))"
	}
	if d.GroupNameAttribute == "" {
		d.GroupNameAttribute = "cn"
	}
	if d.GroupMemberAttributes == nil {
		d.GroupMemberAttributes = []string{"member", "uniqueMember", "memberUid"}
	}
	setInt(&d.MaxEntries, 10000)
	for i := range d.RosterGroups {
		if d.RosterGroups[i].Name == "" {
			d.RosterGroups[i].Name = d.RosterGroups[i].Group
		}
	}
	if d.ProfileUpdateBind == "" {
		d.ProfileUpdateBind = "service"
	}
	if d.RoomFilter == "" {
		d.RoomFilter = "(objectClass=groupOfNames)"
	}
	if d.RoomNameAttribute == "" {
		d.RoomNameAttribute = "cn"
	}
	if d.RoomDescriptionAttribute == "" {
		d.RoomDescriptionAttribute = "description"
	}
	if d.RoomMemberAttribute == "" {
		d.RoomMemberAttribute = "member"
	}
	if d.RoomAdminAttribute == "" {
		d.RoomAdminAttribute = "owner"
	}
	d.DirectoryPolicy.applyDefaults()
}

func (c *Config) validateDirectory(bad func(string, ...any)) {
	d := c.Directory
	uses := false
	for i, h := range c.Hosts {
		switch h.Accounts {
		case AccountsDatabase:
		case AccountsDirectory:
			uses = true
		default:
			bad("host[%d].accounts: %q is not \"database\" or \"directory\"", i, h.Accounts)
		}
	}
	if uses && !d.Enabled() {
		bad("directory.servers: required when a host has accounts = \"directory\"")
	}
	if !d.Enabled() {
		return
	}
	for _, s := range d.Servers {
		if strings.Contains(s, "://") {
			bad("directory.servers: %q: give host:port (the scheme comes from directory.tls)", s)
			continue
		}
		if _, _, err := net.SplitHostPort(s); err != nil && !strings.Contains(err.Error(), "missing port") {
			bad("directory.servers: %q: %v", s, err)
		}
	}
	switch d.TLS {
	case "starttls", "ldaps", "none":
	default:
		bad("directory.tls: %q is not \"starttls\", \"ldaps\" or \"none\"", d.TLS)
	}
	if d.BindPassword != "" && d.BindPasswordFile != "" {
		bad("directory: bind_password and bind_password_file are exclusive")
	}
	if d.BindDN == "" && (d.BindPassword != "" || d.BindPasswordFile != "") {
		bad("directory.bind_dn: required with a bind password")
	}
	// bind_password_file is read when the server starts (paths are
	// resolved against the config file only after validation).
	if d.BindDN != "" && d.BindPassword == "" && d.BindPasswordFile == "" {
		// RFC 4513 §5.1.2: a DN with an empty password is an
		// unauthenticated bind that many servers accept as anonymous.
		bad("directory.bind_password: required with bind_dn (an empty password is an unauthenticated bind)")
	}
	if d.DialTimeout.Duration <= 0 || d.RequestTimeout.Duration <= 0 || d.PollInterval.Duration < time.Second || d.RetryDelay.Duration < 0 {
		bad("directory: dial_timeout and request_timeout must be positive, poll_interval at least 1s")
	}
	if d.PoolSize < 1 || d.PoolSize > 1000 {
		bad("directory.pool_size: %d is not between 1 and 1000", d.PoolSize)
	}
	if d.Retries < 0 || d.Retries > 10 {
		bad("directory.retries: %d is not between 0 and 10", d.Retries)
	}
	if d.MaxEntries < 1 {
		bad("directory.max_entries: must be at least 1")
	}
	if d.UserBase == "" {
		bad("directory.user_base: required")
	}
	if strings.Count(d.UserFilter, "%u") != 1 || !balancedFilter(d.UserFilter) {
		bad("directory.user_filter: %q must be a parenthesised LDAP filter with exactly one %%u", d.UserFilter)
	}
	for k, f := range map[string]string{"user_list_filter": d.UserListFilter, "group_filter": d.GroupFilter, "room_filter": d.RoomFilter} {
		if !balancedFilter(f) || strings.Contains(f, "%u") {
			bad("directory.%s: %q is not a parenthesised LDAP filter", k, f)
		}
	}
	if d.DisabledBitmask != 0 && d.DisabledAttribute == "" {
		bad("directory.disabled_bitmask: needs disabled_attribute")
	}
	if len(d.DisabledValues) > 0 && d.DisabledAttribute == "" {
		bad("directory.disabled_values: needs disabled_attribute")
	}
	if len(d.RosterGroups) > 0 && d.GroupBase == "" {
		bad("directory.roster_group: needs group_base")
	}
	for i, g := range d.RosterGroups {
		if strings.TrimSpace(g.Group) == "" {
			bad("directory.roster_group[%d].group: empty", i)
		}
	}
	known := map[string]bool{}
	for _, n := range DirectoryProfileFieldNames() {
		known[n] = true
	}
	for name, f := range d.Profile {
		if !known[name] {
			bad("directory.profile: unknown field %q (known: %s)", name, strings.Join(DirectoryProfileFieldNames(), ", "))
			continue
		}
		switch f.Mode {
		case ProfileReadonly, ProfileUpdate:
			if f.Value != "" {
				bad("directory.profile.%s: value is only for mode = \"static\"", name)
			}
		case ProfileStatic:
			if f.Attribute != "" {
				bad("directory.profile.%s: attribute is not used with mode = \"static\"", name)
			}
		case ProfileLocal:
			if f.Attribute != "" || f.Value != "" {
				bad("directory.profile.%s: attribute and value are not used with mode = \"local\"", name)
			}
		default:
			bad("directory.profile.%s.mode: %q is not readonly, update, static or local", name, f.Mode)
		}
	}
	switch d.ProfileUpdateBind {
	case "service", "user":
	default:
		bad("directory.profile_update_bind: %q is not \"service\" or \"user\"", d.ProfileUpdateBind)
	}
}

// balancedFilter is a cheap syntax check of an LDAP filter template:
// parenthesised with balanced parentheses. The LDAP library compiles the
// expanded filter and reports anything finer at first use.
func balancedFilter(f string) bool {
	if !strings.HasPrefix(f, "(") || !strings.HasSuffix(f, ")") {
		return false
	}
	depth := 0
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '\\':
			i++
		case '(':
			depth++
		case ')':
			depth--
			if depth < 0 {
				return false
			}
		}
	}
	return depth == 0
}

// resolveDirectoryPaths resolves the directory's file paths against the config
// file's directory.
func (c *Config) resolveDirectoryPaths(abs func(*string)) {
	abs(&c.Directory.CAFile)
	abs(&c.Directory.BindPasswordFile)
}

// AccountsInDirectory reports whether the host's accounts live in the
// directory rather than the database.
func (h Host) AccountsInDirectory() bool { return h.Accounts == AccountsDirectory }
