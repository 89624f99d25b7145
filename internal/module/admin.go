package module

import (
	"context"
	"slices"
	"sync"
	"time"

	"parley/internal/access"
	"parley/internal/xmpp/jid"
)

// AdminCheck decides whether a bare JID administers a host from sources
// other than the static admins list (admin_groups through the access
// policy: stored groups, directory groups). The server sets it; nil means
// only the static list counts.
type AdminCheck func(ctx context.Context, bare jid.JID) (bool, error)

// adminCache remembers AdminCheck answers briefly: modules ask on hot paths
// (the MUC asks for every affiliation lookup), and a group lookup is a
// storage or directory query. Bounded: it is emptied when full.
type adminCache struct {
	mu      sync.Mutex
	entries map[jid.JID]adminEntry
}

type adminEntry struct {
	admin bool
	until time.Time
}

const (
	adminCacheTTL  = 30 * time.Second
	adminCacheSize = 10000
)

// IsAdmin reports whether bare (a JID of any host) administers this host:
// listed in the host's admins, or, through the AdminCheck the server
// installed, a member of one of its admin_groups. Errors count as "no":
// administrative rights fail closed.
func (h *Host) IsAdmin(ctx context.Context, j jid.JID) bool {
	bare := j.Bare()
	if bare.Local() == "" {
		return false
	}
	admins := func() []string {
		if h.Access != nil {
			return h.Access.Effective().Admins
		}
		if h.HostCfg != nil {
			return h.HostCfg.Admins
		}
		return nil
	}
	if slices.Contains(admins(), bare.String()) {
		return true
	}
	if h.AdminCheck == nil || bare.Domain() != h.Domain {
		return false
	}
	now := time.Now()
	h.admins.mu.Lock()
	if e, ok := h.admins.entries[bare]; ok && now.Before(e.until) {
		h.admins.mu.Unlock()
		return e.admin
	}
	h.admins.mu.Unlock()
	ok, err := h.AdminCheck(ctx, bare)
	admin := ok && err == nil
	h.admins.mu.Lock()
	if h.admins.entries == nil || len(h.admins.entries) >= adminCacheSize {
		h.admins.entries = make(map[jid.JID]adminEntry)
	}
	h.admins.entries[bare] = adminEntry{admin: admin, until: now.Add(adminCacheTTL)}
	h.admins.mu.Unlock()
	return admin
}

// ForgetAdmins drops the cached IsAdmin answers: the server calls it when
// group membership or the directory's host policy changed, so a removed
// administrator loses the rights at once rather than after the cache's
// lifetime.
func (h *Host) ForgetAdmins() {
	h.admins.mu.Lock()
	h.admins.entries = nil
	h.admins.mu.Unlock()
}

// CheckAccess asks the host's access control whether who may use svc
// (nil without one: a bare host admits everyone). A refusal is a
// *access.Denied; access.ErrorFor gives the stanza error to answer with.
func (h *Host) CheckAccess(ctx context.Context, svc access.Service, who jid.JID) error {
	if h.Access == nil {
		return nil
	}
	return h.Access.Check(ctx, svc, who)
}

// AccessByDomain is provided on every host by the server: the access
// control of any local host by domain (nil if none), for services that
// serve the users of several hosts (the file-transfer proxy).
var AccessByDomain = NewServiceKey[func(domain string) *access.Control]("access-by-domain")
