// Package dirroster pre-populates rosters from groups (seed 001 "Roster
// Pre-population", seed 000 "auto-buddy"): every member of a configured
// group finds the other members in a roster group of the configured name,
// with subscription "both" (RFC 6121 §2.1.2.5), so presence is shared
// without subscription requests.
//
// The groups come from the directory on a host with accounts = "directory"
// ([[directory.roster_group]]; static roster entries kept in the user's
// directory entry, directory.roster_attribute, are added the same way, in
// both rosters, under the roster group "Directory"), and from the stored
// groups of `parley group` on a database host ([[host.shared_roster]]).
//
// Membership changes are applied without a restart: the directory's
// polling (poll_interval) hands over new snapshots, and for stored groups
// the server's poll of their change mark (auth.groups_poll_interval, see
// access.KVGroups.Touch) calls the host's access control, which wakes this
// module up to re-read them. Items are added or removed through the roster
// module's Store, which sends the roster pushes to online users, and the
// current presence of newly added online contacts is delivered at once.
//
// What the module added is remembered per owner in a KV bucket
// ("directory.roster" or "shared.roster": contact → the groups it
// manages), so items and groups a user added by hand are never removed by
// it.
package dirroster

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"parley/internal/access"
	"parley/internal/directory"
	"parley/internal/mod/roster"
	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
)

// Bucket is the KV bucket of managed roster items on directory hosts.
const Bucket = "directory.roster"

// SharedBucket is the KV bucket of managed roster items on database hosts
// ([[host.shared_roster]]).
const SharedBucket = "shared.roster"

// StaticGroup is the roster group of static entries.
const StaticGroup = "Directory"

// Module is the roster pre-population of one host.
type Module struct {
	h      *module.Host
	dir    *directory.Directory
	store  *roster.Store
	bucket string
	cancel []func()

	// Stored groups (database hosts): wake is signalled when they change,
	// last is the view applied last.
	wake chan struct{}
	stop chan struct{}
	last *view

	mu sync.Mutex // serialises applying views
	wg sync.WaitGroup
}

var _ module.Module = (*Module)(nil)

// New builds the module for h; it does nothing unless h's accounts live in
// a directory or h has shared roster groups.
func New(h *module.Host) (module.Module, error) { return &Module{h: h}, nil }

// Name implements module.Module.
func (*Module) Name() string { return "dirroster" }

// Start watches the directory's snapshots, or the stored groups. It must
// start after the roster module.
func (m *Module) Start(context.Context) error {
	if d, ok := m.h.AccountSource.(*directory.Directory); ok {
		return m.startDirectory(d)
	}
	if m.h.HostCfg != nil && len(m.h.HostCfg.SharedRoster) > 0 {
		return m.startShared()
	}
	return nil
}

func (m *Module) startDirectory(d *directory.Directory) error {
	m.dir, m.bucket = d, Bucket
	m.store = roster.StoreOf(m.h)
	if m.store == nil {
		return errors.New("dirroster: the roster module must run (and start first)")
	}
	m.cancel = append(m.cancel, d.Watch(func(old, s *directory.Snapshot) {
		m.apply(m.directoryView(old), m.directoryView(s))
	}))
	if s := d.Current(); s != nil {
		// A snapshot taken before Start (e.g. by an access check) is
		// applied now; later ones arrive through Watch.
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.apply(nil, m.directoryView(s))
		}()
	}
	return nil
}

// startShared follows the stored groups: an initial sync, then one after
// every change the server notices, and after an account was deleted (its
// memberships went with it).
func (m *Module) startShared() error {
	m.bucket = SharedBucket
	m.store = roster.StoreOf(m.h)
	if m.store == nil {
		return errors.New("dirroster: the roster module must run (and start first)")
	}
	m.wake, m.stop = make(chan struct{}, 1), make(chan struct{})
	signal := func() {
		select {
		case m.wake <- struct{}{}:
		default:
		}
	}
	if m.h.Access != nil {
		m.cancel = append(m.cancel, m.h.Access.OnGroupsChanged(signal))
	}
	m.cancel = append(m.cancel, m.h.Accounts.On(module.EventAccountDeleted, 0, func(*module.AccountEvent) bool {
		signal()
		return false
	}))
	signal()
	stop, wake := m.stop, m.wake
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-wake:
			}
			m.syncShared()
		}
	}()
	return nil
}

// syncShared reads the stored groups and applies what changed since the
// last view (everything, the first time: managed items left from before a
// restart are compared with what storage remembers).
func (m *Module) syncShared() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	members, err := access.KVGroups{Store: m.h.Store}.Members(ctx, m.h.Domain)
	if err != nil {
		m.h.Log.Warn("dirroster: reading stored groups", "err", err)
		return
	}
	v := &view{groups: map[string][]string{}}
	for _, sr := range m.h.HostCfg.SharedRoster {
		ms := append([]string(nil), members[sr.Group]...)
		v.groups[sr.Name] = append(v.groups[sr.Name], ms...)
	}
	for name, ms := range v.groups {
		sort.Strings(ms)
		v.groups[name] = slices.Compact(ms)
	}
	if m.last == nil {
		m.last = m.loadView(ctx)
	}
	m.apply(m.last, v)
	m.last = v
	m.saveView(ctx, v)
}

// viewKey keeps, under the host in SharedBucket, the groups applied last,
// so that after a restart members removed while the server was down lose
// their items too (apply compares with it instead of only adding).
const viewKey = "applied-groups"

func (m *Module) loadView(ctx context.Context) *view {
	b, err := m.h.Store.KV().Get(ctx, SharedBucket, m.h.Domain, viewKey)
	if err != nil {
		return nil
	}
	v := &view{}
	if json.Unmarshal(b, &v.groups) != nil {
		return nil
	}
	return v
}

func (m *Module) saveView(ctx context.Context, v *view) {
	b, _ := json.Marshal(v.groups)
	if err := m.h.Store.KV().Set(ctx, SharedBucket, m.h.Domain, viewKey, b); err != nil {
		m.h.Log.Warn("dirroster: saving the applied groups", "err", err)
	}
}

// Stop stops watching.
func (m *Module) Stop(context.Context) error {
	for _, c := range m.cancel {
		c()
	}
	m.cancel = nil
	if m.stop != nil {
		close(m.stop)
		m.stop = nil
	}
	m.wg.Wait()
	return nil
}

// view is what the module builds rosters from: roster group name → member
// localparts (enabled accounts only), static entries per owner localpart
// (bare JIDs), and display names by localpart.
type view struct {
	groups map[string][]string
	static map[string][]string
	names  map[string]string
}

// directoryView turns a directory snapshot into a view (nil for nil).
func (m *Module) directoryView(s *directory.Snapshot) *view {
	if s == nil {
		return nil
	}
	v := &view{groups: map[string][]string{}, static: map[string][]string{}, names: map[string]string{}}
	for _, rg := range m.dir.Config().RosterGroups {
		for _, u := range s.Groups[rg.Group] {
			if s.Enabled(u) {
				v.groups[rg.Name] = append(v.groups[rg.Name], u)
			}
		}
	}
	for name, u := range s.Users {
		if u.Disabled {
			continue
		}
		if n := m.dir.DisplayName(u); n != "" {
			v.names[name] = n
		}
		for _, c := range m.dir.StaticRoster(s, u, m.h.Domain) {
			j, err := jid.Parse(c)
			if err != nil {
				continue
			}
			if j.Domain() == m.h.Domain && !s.Enabled(j.Local()) {
				continue
			}
			v.static[name] = append(v.static[name], j.String())
		}
	}
	return v
}

// want is, per owner localpart, contact bare JID → managed groups.
type want map[string]map[string][]string

// desired computes the managed roster items of every member.
func (m *Module) desired(v *view) want {
	out := want{}
	if v == nil {
		return out
	}
	host := m.h.Domain
	add := func(owner, contact, group string) {
		if owner+"@"+host == contact {
			return
		}
		if out[owner] == nil {
			out[owner] = map[string][]string{}
		}
		gs := append(out[owner][contact], group)
		sort.Strings(gs)
		out[owner][contact] = slices.Compact(gs)
	}
	for name, members := range v.groups {
		for _, o := range members {
			for _, c := range members {
				add(o, c+"@"+host, name)
			}
		}
	}
	for owner, contacts := range v.static {
		for _, c := range contacts {
			j, err := jid.Parse(c)
			if err != nil {
				continue
			}
			if j.Domain() == host {
				// Local contacts get the reverse entry so that presence
				// flows both ways.
				add(j.Local(), owner+"@"+host, StaticGroup)
			}
			add(owner, j.String(), StaticGroup)
		}
	}
	return out
}

// apply brings every roster whose managed items changed in line with v
// (old nil: every roster is checked against what storage remembers).
func (m *Module) apply(old, v *view) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	now := m.desired(v)
	var before want
	if old != nil {
		before = m.desired(old)
	}
	owners := map[string]bool{}
	for o := range now {
		owners[o] = true
	}
	for o := range before {
		owners[o] = true
	}
	for _, o := range slices.Sorted(maps.Keys(owners)) {
		if old != nil && maps.EqualFunc(now[o], before[o], slices.Equal) {
			continue
		}
		if err := m.sync(ctx, o, now[o], v); err != nil {
			m.h.Log.Warn("dirroster: roster update failed", "owner", o+"@"+m.h.Domain, "err", err)
		}
	}
}

// sync makes owner's managed items exactly w.
func (m *Module) sync(ctx context.Context, owner string, w map[string][]string, v *view) error {
	ownerJID, err := jid.New(owner, m.h.Domain, "")
	if err != nil {
		return err
	}
	kv := m.h.Store.KV()
	stored, err := kv.List(ctx, m.bucket, ownerJID.String())
	if err != nil {
		return err
	}
	managed := map[string][]string{}
	for c, v := range stored {
		managed[c] = strings.Split(string(v), "\n")
	}
	contacts := map[string]bool{}
	for c := range w {
		contacts[c] = true
	}
	for c := range managed {
		contacts[c] = true
	}
	var share []jid.JID
	for _, c := range slices.Sorted(maps.Keys(contacts)) {
		if slices.Equal(w[c], managed[c]) {
			continue
		}
		cj, err := jid.Parse(c)
		if err != nil {
			continue
		}
		added, err := m.syncItem(ctx, ownerJID, cj, managed[c], w[c], v)
		if err != nil {
			return err
		}
		if len(w[c]) > 0 {
			err = kv.Set(ctx, m.bucket, ownerJID.String(), c, []byte(strings.Join(w[c], "\n")))
		} else {
			err = kv.Delete(ctx, m.bucket, ownerJID.String(), c)
		}
		if err != nil {
			return err
		}
		if added {
			share = append(share, cj)
		}
	}
	// The subscription is now both ways: each side gets the other's
	// current presence (routed after the roster lock is released, as
	// roster.Store requires). Both directions matter: an owner who came
	// online before the item existed broadcast their presence to nobody,
	// and the contact's roster may have had the owner already, so no later
	// sync of the contact's roster would send it.
	for _, cj := range share {
		m.sharePresence(ctx, cj, ownerJID)
		m.sharePresence(ctx, ownerJID, cj)
	}
	return nil
}

// sharePresence sends the current presence of each available session of
// from to the bare JID to.
func (m *Module) sharePresence(ctx context.Context, from, to jid.JID) {
	for _, s := range m.h.Router.Sessions(from) {
		if p := s.Presence(); p != nil {
			m.h.Router.Route(ctx, p.WithAttr("from", s.JID().String()).WithAttr("to", to.String()))
		}
	}
}

// syncItem changes one roster item from the managed groups old to now,
// keeping groups the user added. It reports whether the contact's presence
// is newly shared.
func (m *Module) syncItem(ctx context.Context, owner, contact jid.JID, old, now []string, v *view) (bool, error) {
	unlock := m.store.Lock(owner)
	defer unlock()
	before, err := m.store.Load(ctx, owner, contact)
	if err != nil {
		return false, err
	}
	after := before
	var groups []string
	for _, g := range before.Groups {
		if !slices.Contains(old, g) {
			groups = append(groups, g)
		}
	}
	groups = append(groups, now...)
	sort.Strings(groups)
	after.Groups = slices.Compact(groups)
	shared := false
	switch {
	case len(now) > 0:
		shared = !before.InRoster || before.Subscription != storage.SubBoth
		after.InRoster = true
		after.Subscription = storage.SubBoth
		after.AskOut, after.PendingIn = false, false
		if after.Name == "" && v != nil && contact.Domain() == m.h.Domain {
			after.Name = v.names[contact.Local()]
		}
	case len(after.Groups) == 0:
		// Only the directory put it there: remove it.
		after.InRoster = false
	}
	if err := m.store.Save(ctx, owner, before, after, nil); err != nil {
		if errors.Is(err, roster.ErrRosterFull) {
			m.h.Log.Warn("dirroster: roster full; directory contact not added", "owner", owner.String(), "contact", contact.String())
			return false, nil
		}
		return false, err
	}
	return shared, nil
}
