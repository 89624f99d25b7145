package config

import (
	"fmt"
	"time"
)

// Archive configures the XEP-0313 message archives of one host
// ([host.archive]): its accounts' archives and those of the rooms of its
// chat-room service.
type Archive struct {
	// Enabled archives messages and answers archive queries (default true:
	// clients use the archive to show every message on every device).
	Enabled *bool `toml:"enabled"`
	// Default is the archiving preference of accounts that set none
	// (XEP-0441): "always" (default), "never", or "roster" (only messages
	// exchanged with contacts in the roster).
	Default string `toml:"default"`
	// Rooms keeps archives for the rooms of the host's chat-room service
	// (default true). Public rooms are archived unless their owner turns
	// it off; other rooms when their owner turns it on.
	Rooms *bool `toml:"rooms"`
	// MaxPageSize caps the messages one query returns, whatever the client
	// asks for (default 100, at most 1000): results are queued to the
	// client's session all at once.
	MaxPageSize int `toml:"max_page_size"`
	// MaxAge deletes messages older than this (default 0: kept until the
	// per-archive cap pushes them out).
	MaxAge Duration `toml:"max_age"`
	// MaxMessages caps one archive (an account's or a room's): the oldest
	// messages beyond it are deleted as new ones arrive (default 100000;
	// -1: no cap). It bounds the disk one account can fill.
	MaxMessages int `toml:"max_messages"`
	// PurgeInterval is how often max_age and compliance_max_age are
	// applied (default 1h).
	PurgeInterval Duration `toml:"purge_interval"`
	// Compliance keeps a log of every one-to-one and room message of the
	// host's users, whatever their archiving preferences, that they cannot
	// read or delete and that outlives their accounts, for administrators
	// to export (`parley archive export`). Default false. Independent of
	// Enabled.
	Compliance bool `toml:"compliance"`
	// ComplianceMaxAge deletes log records older than this (default 0:
	// kept until purged by a later setting).
	ComplianceMaxAge Duration `toml:"compliance_max_age"`
}

// On reports whether archiving is enabled.
func (a Archive) On() bool { return a.Enabled == nil || *a.Enabled }

// RoomsOn reports whether rooms keep archives.
func (a Archive) RoomsOn() bool { return a.On() && (a.Rooms == nil || *a.Rooms) }

// Keep is the per-archive cap as the storage layer takes it (0: none).
func (a Archive) Keep() int { return max(a.MaxMessages, 0) }

func (a *Archive) applyDefaults() {
	if a.Enabled == nil {
		a.Enabled = boolPtr(true)
	}
	if a.Rooms == nil {
		a.Rooms = boolPtr(true)
	}
	if a.Default == "" {
		a.Default = "always"
	}
	setInt(&a.MaxPageSize, 100)
	setInt(&a.MaxMessages, 100000)
	setDur(&a.PurgeInterval, time.Hour)
}

func (a Archive) validate(i int) []string {
	var p []string
	bad := func(format string, args ...any) {
		p = append(p, fmt.Sprintf("host[%d].archive.", i)+fmt.Sprintf(format, args...))
	}
	switch a.Default {
	case "always", "never", "roster":
	default:
		bad("default: %q is not always, never or roster", a.Default)
	}
	if a.MaxPageSize < 1 || a.MaxPageSize > 1000 {
		bad("max_page_size: %d is not between 1 and 1000", a.MaxPageSize)
	}
	if a.MaxMessages < -1 {
		bad("max_messages: %d is not a number of messages (-1: no cap)", a.MaxMessages)
	}
	if a.MaxAge.Duration < 0 {
		bad("max_age: must not be negative")
	}
	if a.ComplianceMaxAge.Duration < 0 {
		bad("compliance_max_age: must not be negative")
	}
	if a.PurgeInterval.Duration < time.Second {
		bad("purge_interval: %s is too short (at least 1s)", a.PurgeInterval.Duration)
	}
	return p
}
