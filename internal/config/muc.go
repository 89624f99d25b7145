package config

import (
	"fmt"
	"strings"
)

// MUC configures the XEP-0045 multi-user chat service of one host
// ([host.muc]). The service runs on its own domain, a subdomain of the host
// by default, and is on unless disabled.
type MUC struct {
	// Enabled runs the service (default true).
	Enabled *bool `toml:"enabled"`
	// Domain is the service's address (default "conference.<host domain>").
	Domain string `toml:"domain"`
	// Name is the service's disco#info identity name (default "Chatrooms").
	Name string `toml:"name"`
	// RoomCreation says who may create rooms: "anyone" (any JID, remote
	// ones included), "local" (accounts of this host; default) or "admins"
	// (the host's admins only).
	RoomCreation string `toml:"room_creation"`
	// MaxRooms bounds the rooms of the service (default 1000).
	MaxRooms int `toml:"max_rooms"`
	// MaxRoomsPerUser bounds the live rooms one user may have created
	// (default 20; host admins are exempt), so nobody can take every slot
	// of max_rooms.
	MaxRoomsPerUser int `toml:"max_rooms_per_user"`
	// MaxOccupants is the ceiling an owner may configure for one room
	// (muc#roomconfig_maxusers; default 200).
	MaxOccupants int `toml:"max_occupants"`
	// DefaultOccupants is a new room's occupant limit (default 50).
	DefaultOccupants int `toml:"default_occupants"`
	// HistoryDefault is a new room's history length in messages (default 20).
	HistoryDefault int `toml:"history_default"`
	// HistoryMax is the most messages a room may keep (default 100).
	HistoryMax int `toml:"history_max"`
	// HistoryMaxBytes bounds the serialized size of one room's history
	// (default 262144): with max_rooms it bounds the service's memory.
	HistoryMaxBytes int `toml:"history_max_bytes"`
	// MaxNickLength bounds a room nickname in characters (default 64).
	MaxNickLength int `toml:"max_nick_length"`
	// MaxAffiliations bounds the owner/admin/member/outcast entries of one
	// room (default 1000).
	MaxAffiliations int `toml:"max_affiliations"`
}

// On reports whether the MUC service is enabled.
func (m MUC) On() bool { return m.Enabled == nil || *m.Enabled }

func (m *MUC) applyDefaults(host string) {
	if m.Enabled == nil {
		m.Enabled = boolPtr(true)
	}
	if m.Domain == "" && host != "" {
		m.Domain = "conference." + strings.ToLower(strings.TrimSuffix(host, "."))
	}
	m.Domain = strings.ToLower(strings.TrimSuffix(m.Domain, "."))
	if m.Name == "" {
		m.Name = "Chatrooms"
	}
	if m.RoomCreation == "" {
		m.RoomCreation = "local"
	}
	setInt(&m.MaxRooms, 1000)
	setInt(&m.MaxRoomsPerUser, 20)
	setInt(&m.MaxOccupants, 200)
	setInt(&m.DefaultOccupants, 50)
	setInt(&m.HistoryDefault, 20)
	setInt(&m.HistoryMax, 100)
	setInt(&m.HistoryMaxBytes, 256*1024)
	setInt(&m.MaxNickLength, 64)
	setInt(&m.MaxAffiliations, 1000)
}

// validateMUC checks every host's [host.muc] table; host domains are
// already normalised.
func (c *Config) validateMUC() []string {
	var p []string
	bad := func(format string, a ...any) { p = append(p, fmt.Sprintf(format, a...)) }
	hosts := map[string]bool{}
	for _, h := range c.Hosts {
		hosts[h.Domain] = true
	}
	seen := map[string]bool{}
	for i, h := range c.Hosts {
		m := h.MUC
		if !m.On() {
			continue
		}
		switch {
		case m.Domain == "" || strings.ContainsAny(m.Domain, "@/ "):
			bad("host[%d].muc.domain: %q is not a domain", i, m.Domain)
		case hosts[m.Domain]:
			bad("host[%d].muc.domain: %q is also a virtual host", i, m.Domain)
		case seen[m.Domain]:
			bad("host[%d].muc.domain: %q is used by two hosts", i, m.Domain)
		}
		seen[m.Domain] = true
		switch m.RoomCreation {
		case "anyone", "local", "admins":
		default:
			bad("host[%d].muc.room_creation: %q is not anyone, local or admins", i, m.RoomCreation)
		}
		for k, v := range map[string]int{
			"max_rooms": m.MaxRooms, "max_rooms_per_user": m.MaxRoomsPerUser, "max_occupants": m.MaxOccupants,
			"default_occupants": m.DefaultOccupants, "history_default": m.HistoryDefault,
			"history_max": m.HistoryMax, "history_max_bytes": m.HistoryMaxBytes,
			"max_nick_length": m.MaxNickLength, "max_affiliations": m.MaxAffiliations,
		} {
			if v < 0 {
				bad("host[%d].muc.%s: must be positive, got %d", i, k, v)
			}
		}
		if m.DefaultOccupants > m.MaxOccupants {
			bad("host[%d].muc.default_occupants (%d) exceeds max_occupants (%d)", i, m.DefaultOccupants, m.MaxOccupants)
		}
		if m.HistoryDefault > m.HistoryMax {
			bad("host[%d].muc.history_default (%d) exceeds history_max (%d)", i, m.HistoryDefault, m.HistoryMax)
		}
	}
	return p
}
