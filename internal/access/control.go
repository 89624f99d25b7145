package access

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"parley/internal/config"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
)

// Service is one thing access control governs (seed 000's SACL services).
type Service string

// The services. Login and Admin are also reachable through CanLogin and
// IsAdmin, which existing callers use.
const (
	Login      Service = "login"
	MUCCreate  Service = "muc_create"
	MUCJoin    Service = "muc_join"
	Proxy65    Service = "proxy65"
	Upload     Service = "upload"
	Federation Service = "federation"
	Admin      Service = "admin"
)

// what a refused user is told, per service.
var refusalText = map[Service]string{
	Login:      "you may not log in to this server",
	MUCCreate:  "you are not allowed to create chat rooms on this service",
	MUCJoin:    "you are not allowed to join the chat rooms of this service",
	Proxy65:    "you are not allowed to use this file-transfer proxy",
	Upload:     "you are not allowed to upload files",
	Federation: "you are not allowed to talk to other servers",
	Admin:      "administrative rights are required",
}

// Overrides are one host's policy values held in the directory
// (config_base, seed 001). A nil slice or pointer, or an empty string,
// leaves the file's value; a non-nil empty slice replaces it with an empty
// list.
type Overrides struct {
	// Source names where the values came from (the entry's DN).
	Source                           string
	Admins, AdminGroups              []string
	AllowedUsers, AllowedGroups      []string
	Registration                     *bool
	FederationAllow, FederationBlock []string
	RoomCreation                     string
}

// Settings is a host's effective policy: the file's values with the
// directory's overrides applied. From maps each overridden key (as the
// config file spells it) to its source.
type Settings struct {
	Admins, AdminGroups         []string
	AllowedUsers, AllowedGroups []string
	Registration                bool
	// FederationAllow / FederationBlock are nil unless the directory set
	// them (then they replace the file's s2s lists for this host).
	FederationAllow, FederationBlock []string
	RoomCreation                     string
	From                             map[string]string
}

// Control is the access control of one host: every module asks it, with
// Check, whether someone may use a service. It applies the file's rules
// ([host.access], allowed_*, admins, admin_groups) and the directory's
// overrides (SetOverrides, called at every directory poll), and looks up
// group membership through a GroupResolver with a short cache (Invalidate
// empties it when the server notices a membership change).
type Control struct {
	host   *config.Host
	groups GroupResolver
	log    *slog.Logger
	over   atomic.Pointer[Overrides]

	cacheTTL time.Duration
	mu       sync.Mutex
	cache    map[string]groupEntry
	watchers map[int]func()
	nextID   int
}

type groupEntry struct {
	groups []string
	until  time.Time
}

// groupCacheSize bounds the cache; it is emptied when full.
const groupCacheSize = 10000

// NewControl builds the control of host; groups may be nil (no groups:
// group rules match nobody), log may be nil.
func NewControl(host *config.Host, groups GroupResolver, log *slog.Logger) *Control {
	if log == nil {
		log = slog.Default()
	}
	return &Control{host: host, groups: groups, log: log, cacheTTL: 5 * time.Second}
}

// Domain is the host's domain.
func (c *Control) Domain() string { return c.host.Domain }

// SetOverrides installs the directory's values (nil: none).
func (c *Control) SetOverrides(o *Overrides) { c.over.Store(o) }

// Overrides returns the directory's values in force, nil if none.
func (c *Control) Overrides() *Overrides { return c.over.Load() }

// Invalidate forgets cached group memberships.
func (c *Control) Invalidate() {
	c.mu.Lock()
	c.cache = nil
	c.mu.Unlock()
}

// GroupsChanged is called (by the server's poll of the stored change mark,
// see KVGroups.Touch) when the host's stored group membership changed:
// the cache is dropped and every OnGroupsChanged function runs, in the
// caller's goroutine (they must not block).
func (c *Control) GroupsChanged() {
	c.mu.Lock()
	c.cache = nil
	fns := make([]func(), 0, len(c.watchers))
	for _, fn := range c.watchers {
		fns = append(fns, fn)
	}
	c.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// OnGroupsChanged registers fn to run after each GroupsChanged; the
// returned function removes it.
func (c *Control) OnGroupsChanged(fn func()) (cancel func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.watchers == nil {
		c.watchers = map[int]func(){}
	}
	id := c.nextID
	c.nextID++
	c.watchers[id] = fn
	return func() {
		c.mu.Lock()
		delete(c.watchers, id)
		c.mu.Unlock()
	}
}

// Effective returns the host's policy in force now.
func (c *Control) Effective() Settings {
	return Effective(c.host, c.over.Load())
}

// Effective applies o (may be nil) to the file's values of h.
func Effective(h *config.Host, o *Overrides) Settings {
	s := Settings{
		Admins: h.Admins, AdminGroups: h.AdminGroups,
		AllowedUsers: h.AllowedUsers, AllowedGroups: h.AllowedGroups,
		Registration: h.Registration.Enabled, RoomCreation: h.MUC.RoomCreation,
		From: map[string]string{},
	}
	if o == nil {
		return s
	}
	set := func(key string, dst *[]string, v []string) {
		if v != nil {
			*dst = v
			s.From[key] = o.Source
		}
	}
	set("admins", &s.Admins, o.Admins)
	set("admin_groups", &s.AdminGroups, o.AdminGroups)
	set("allowed_users", &s.AllowedUsers, o.AllowedUsers)
	set("allowed_groups", &s.AllowedGroups, o.AllowedGroups)
	if o.Registration != nil {
		s.Registration = *o.Registration
		s.From["registration.enabled"] = o.Source
	}
	if o.FederationAllow != nil {
		s.FederationAllow = o.FederationAllow
		s.From["s2s.allowed_domains"] = o.Source
	}
	if o.FederationBlock != nil {
		s.FederationBlock = o.FederationBlock
		s.From["s2s.blocked_domains"] = o.Source
	}
	if o.RoomCreation != "" {
		s.RoomCreation = o.RoomCreation
		s.From["muc.room_creation"] = o.Source
	}
	return s
}

// S2SPolicy returns base (the file's federation policy of the host) with
// the directory's domain lists applied.
func (c *Control) S2SPolicy(base config.S2SPolicy) config.S2SPolicy {
	s := c.Effective()
	if _, ok := s.From["s2s.allowed_domains"]; ok {
		base.AllowedDomains = s.FederationAllow
	}
	if _, ok := s.From["s2s.blocked_domains"]; ok {
		base.BlockedDomains = s.FederationBlock
	}
	return base
}

// Denied is a refusal by the access policy. Reason is for the log; the
// client sees Text (StanzaError), or for logins the same failure as for a
// wrong password.
type Denied struct {
	Service Service
	Who     string
	Reason  string
}

func (d *Denied) Error() string { return "access denied: " + d.Reason }

// StanzaError is the XEP's answer to a refused use: not-allowed for room
// creation (XEP-0045 §10.1.1), forbidden otherwise (XEP-0045 §7.2.7,
// XEP-0065 §6.3.1, XEP-0363 §4.2, XEP-0050/0133), with a text.
func (d *Denied) StanzaError() *stanza.Error {
	cond := stanza.Forbidden
	if d.Service == MUCCreate {
		cond = stanza.NotAllowed
	}
	return &stanza.Error{Condition: cond, Text: refusalText[d.Service]}
}

// ErrorFor turns a Check error into the stanza error to answer with: the
// refusal's own, or internal-server-error (type wait) when the groups
// could not be looked up.
func ErrorFor(err error) *stanza.Error {
	var d *Denied
	if errors.As(err, &d) {
		return d.StanzaError()
	}
	return &stanza.Error{Condition: stanza.InternalServerError, Type: stanza.ErrorTypeWait, Text: "access control is unavailable; try again later"}
}

// rule returns the rule of svc with the effective settings folded in.
func (c *Control) rule(svc Service, s Settings) config.AccessRule {
	if svc == Admin {
		return config.AccessRule{Users: s.Admins, Groups: s.AdminGroups}
	}
	a := c.host.Access
	r := a.Rule(string(svc))
	if r == nil {
		return config.AccessRule{}
	}
	out := *r
	if svc == Login {
		out.Users = append(slices.Clip(s.AllowedUsers), r.Users...)
		out.Groups = append(slices.Clip(s.AllowedGroups), r.Groups...)
	}
	return out
}

// Check reports whether who may use svc on this host: nil, a *Denied
// (logged at info), or the error of a group lookup (callers refuse then
// too: failing open would bypass the policy). Users of other domains match
// only the rule's user lists.
func (c *Control) Check(ctx context.Context, svc Service, who jid.JID) error {
	err := c.decide(ctx, svc, who)
	var d *Denied
	switch {
	case err == nil:
	case errors.As(err, &d):
		c.log.Info("access: refused by the access policy", "service", string(svc), "user", d.Who, "reason", d.Reason)
	default:
		c.log.Warn("access: group lookup failed; refusing", "service", string(svc), "user", who.Bare().String(), "err", err)
	}
	return err
}

// CanLogin is Check(Login) for a localpart of this host, without logging
// (c2s logs the refusal with the connection's details).
func (c *Control) CanLogin(ctx context.Context, username string) error {
	j, err := jid.New(username, c.host.Domain, "")
	if err != nil {
		return &Denied{Service: Login, Who: username + "@" + c.host.Domain, Reason: "not a valid localpart"}
	}
	return c.decide(ctx, Login, j)
}

// IsAdmin reports whether who administers the host (admins, admin_groups,
// with the directory's overrides).
func (c *Control) IsAdmin(ctx context.Context, who jid.JID) (bool, error) {
	err := c.decide(ctx, Admin, who)
	var d *Denied
	if errors.As(err, &d) {
		return false, nil
	}
	return err == nil, err
}

func (c *Control) decide(ctx context.Context, svc Service, who jid.JID) error {
	bare := who.Bare()
	var s Settings
	if svc == Login || svc == Admin {
		// Only these rules read values the directory may override; the
		// others (every remote stanza for federation) skip building them.
		s = c.Effective()
	}
	r := c.rule(svc, s)
	denied := func(reason string) error {
		return &Denied{Service: svc, Who: bare.String(), Reason: bare.String() + " " + reason}
	}
	if bare.Local() == "" {
		if svc == Admin || r.Restricts() {
			return denied("is not a user")
		}
		return nil
	}
	local := bare.Domain() == c.host.Domain
	if slices.Contains(r.DenyUsers, bare.String()) {
		return denied("is in " + string(svc) + " deny_users")
	}
	needGroups := local && (len(r.DenyGroups) > 0 || (len(r.Groups) > 0 && !slices.Contains(r.Users, bare.String())))
	var groups []string
	if needGroups {
		var err error
		if groups, err = c.groupsOf(ctx, bare.Local()); err != nil {
			return err
		}
	}
	for _, g := range groups {
		if slices.Contains(r.DenyGroups, g) {
			return denied("is in group " + g + ", denied " + string(svc))
		}
	}
	if svc != Admin && len(r.Users) == 0 && len(r.Groups) == 0 {
		return nil
	}
	if slices.Contains(r.Users, bare.String()) {
		return nil
	}
	for _, g := range groups {
		if slices.Contains(r.Groups, g) {
			return nil
		}
	}
	if svc == Admin {
		return denied("is not an administrator")
	}
	return denied("is in none of the users and groups allowed " + string(svc))
}

func (c *Control) groupsOf(ctx context.Context, username string) ([]string, error) {
	if c.groups == nil {
		return nil, nil
	}
	now := time.Now()
	c.mu.Lock()
	if e, ok := c.cache[username]; ok && now.Before(e.until) {
		c.mu.Unlock()
		return e.groups, nil
	}
	c.mu.Unlock()
	gs, err := c.groups.Groups(ctx, c.host.Domain, username)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.cache == nil || len(c.cache) >= groupCacheSize {
		c.cache = map[string]groupEntry{}
	}
	c.cache[username] = groupEntry{groups: gs, until: now.Add(c.cacheTTL)}
	c.mu.Unlock()
	return gs, nil
}

// UnknownGroups returns the groups h's access rules and shared roster name
// (plus those the directory's overrides o name, o may be nil) that are not
// in known: `parley config check` reports them as errors, since a typo in
// a group name would otherwise silently refuse (or fail to admit) its
// members.
func UnknownGroups(h *config.Host, o *Overrides, known map[string]bool) []string {
	names := h.RuleGroups()
	if o != nil {
		names = append(names, o.AdminGroups...)
		names = append(names, o.AllowedGroups...)
	}
	var out []string
	for _, g := range names {
		if !known[g] && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}
