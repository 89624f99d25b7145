package config

import "strings"

// DirectoryPolicy holds the [directory] keys for configuration kept in the
// directory (seed 001: the server's configuration managed in the
// directory) and for writing room changes back to it.
type DirectoryPolicy struct {
	// ConfigBase is the subtree of host policy entries ("" = none). Each
	// entry names its host in parleyHostDomain; the parley* attributes it
	// has override the file's policy of that host (admins, admin groups,
	// allowed users and groups, registration, federation lists, room
	// creation: docs/directory-schema.ldif). Re-read at every poll.
	// Listeners, storage and secrets always come from the file.
	ConfigBase string `toml:"config_base"`
	// ConfigFilter selects the policy entries under config_base; default
	// "(objectClass=parleyHostPolicy)".
	ConfigFilter string `toml:"config_filter"`
	// RoomWrite lets room owners' configuration changes to directory rooms
	// (name, description, members, admins) be written back to the room's
	// entry with the service account. Default false: such changes are
	// refused (not-allowed) and the directory stays the only place to
	// edit those rooms.
	RoomWrite bool `toml:"room_write"`
	// PasswordWrite lets users change their own directory password through
	// Parley (the self-service page, XEP-0077 in-band) and administrators
	// reset one (the web console, XEP-0133): the service account sets it
	// with RFC 3062 Password Modify and writes RFC 5803 SCRAM secrets, as
	// `parley user passwd` always does. Default false: those front ends say
	// the password is changed in the directory, and the service account
	// needs no write access.
	PasswordWrite bool `toml:"password_write"`
	// RoomTitleAttribute holds a directory room's natural-language name
	// (muc#roomconfig_roomname), e.g. "parleyRoomTitle" from the schema in
	// docs. Empty (default): the title is not kept in the directory; the
	// room's name attribute is its address and never changes.
	RoomTitleAttribute string `toml:"room_title_attribute"`
}

func (d *DirectoryPolicy) applyDefaults() {
	if d.ConfigFilter == "" {
		d.ConfigFilter = "(objectClass=parleyHostPolicy)"
	}
}

func (c *Config) validateDirectoryPolicy(bad func(string, ...any)) {
	d := c.Directory
	if !d.Enabled() {
		if d.ConfigBase != "" || d.RoomWrite || d.PasswordWrite {
			bad("directory: config_base, room_write and password_write need directory.servers")
		}
		return
	}
	if !balancedFilter(d.ConfigFilter) || strings.Contains(d.ConfigFilter, "%u") {
		bad("directory.config_filter: %q is not a parenthesised LDAP filter", d.ConfigFilter)
	}
	if d.RoomWrite && d.RoomBase == "" {
		bad("directory.room_write: needs room_base")
	}
}
