// Package dirroster pre-populates rosters from the directory (seed 001
// "Roster Pre-population", seed 000 "auto-buddy"): on a host with accounts =
// "directory", every member of a configured directory group
// ([[directory.roster_group]]) finds the other members in a roster group of
// the configured name, with subscription "both" (RFC 6121 §2.1.2.5), so
// presence is shared without subscription requests. Static roster entries
// kept in the user's directory entry (directory.roster_attribute) are added
// the same way, in both rosters, under the roster group "Directory".
//
// Membership changes found by the directory's polling (poll_interval) are
// applied without a restart: items are added or removed through the roster
// module's Store, which sends the roster pushes to online users, and the
// current presence of newly added online contacts is delivered at once.
//
// What the module added is remembered per owner in the KV bucket
// "directory.roster" (contact → the groups it manages), so items and
// groups a user added by hand are never removed by it.
package dirroster

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"parley/internal/directory"
	"parley/internal/mod/roster"
	"parley/internal/module"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
)

// Bucket is the KV bucket of managed roster items.
const Bucket = "directory.roster"

// StaticGroup is the roster group of static entries.
const StaticGroup = "Directory"

// Module is the roster pre-population of one host.
type Module struct {
	h      *module.Host
	dir    *directory.Directory
	store  *roster.Store
	cancel func()

	mu sync.Mutex // serialises applying snapshots
	wg sync.WaitGroup
}

var _ module.Module = (*Module)(nil)

// New builds the module for h; it does nothing unless h's accounts live in
// a directory.
func New(h *module.Host) (module.Module, error) { return &Module{h: h}, nil }

// Name implements module.Module.
func (*Module) Name() string { return "dirroster" }

// Start watches the directory's snapshots. It must start after the roster
// module.
func (m *Module) Start(context.Context) error {
	d, ok := m.h.AccountSource.(*directory.Directory)
	if !ok {
		return nil
	}
	m.dir = d
	m.store = roster.StoreOf(m.h)
	if m.store == nil {
		return errors.New("dirroster: the roster module must run (and start first)")
	}
	m.cancel = d.Watch(m.apply)
	if s := d.Current(); s != nil {
		// A snapshot taken before Start (e.g. by an access check) is
		// applied now; later ones arrive through Watch.
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.apply(nil, s)
		}()
	}
	return nil
}

// Stop stops watching.
func (m *Module) Stop(context.Context) error {
	if m.cancel != nil {
		m.cancel()
		m.cancel = nil
	}
	m.wg.Wait()
	return nil
}

// want is, per owner localpart, contact bare JID → managed groups.
type want map[string]map[string][]string

// desired computes the managed roster items of every enabled user.
func (m *Module) desired(s *directory.Snapshot) want {
	out := want{}
	if s == nil {
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
	for _, rg := range m.dir.Config().RosterGroups {
		var members []string
		for _, u := range s.Groups[rg.Group] {
			if s.Enabled(u) {
				members = append(members, u)
			}
		}
		for _, o := range members {
			for _, c := range members {
				add(o, c+"@"+host, rg.Name)
			}
		}
	}
	for name, u := range s.Users {
		if u.Disabled {
			continue
		}
		for _, c := range m.dir.StaticRoster(s, u, host) {
			j, err := jid.Parse(c)
			if err != nil {
				continue
			}
			if j.Domain() == host {
				if !s.Enabled(j.Local()) {
					continue
				}
				// Local contacts get the reverse entry so that presence
				// flows both ways.
				add(j.Local(), name+"@"+host, StaticGroup)
			}
			add(name, j.String(), StaticGroup)
		}
	}
	return out
}

// apply brings every roster whose managed items changed in line with s.
func (m *Module) apply(old, s *directory.Snapshot) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	now := m.desired(s)
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
		if err := m.sync(ctx, o, now[o]); err != nil {
			m.h.Log.Warn("dirroster: roster update failed", "owner", o+"@"+m.h.Domain, "err", err)
		}
	}
}

// sync makes owner's managed items exactly w.
func (m *Module) sync(ctx context.Context, owner string, w map[string][]string) error {
	ownerJID, err := jid.New(owner, m.h.Domain, "")
	if err != nil {
		return err
	}
	kv := m.h.Store.KV()
	stored, err := kv.List(ctx, Bucket, ownerJID.String())
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
		added, err := m.syncItem(ctx, ownerJID, cj, managed[c], w[c])
		if err != nil {
			return err
		}
		if len(w[c]) > 0 {
			err = kv.Set(ctx, Bucket, ownerJID.String(), c, []byte(strings.Join(w[c], "\n")))
		} else {
			err = kv.Delete(ctx, Bucket, ownerJID.String(), c)
		}
		if err != nil {
			return err
		}
		if added {
			share = append(share, cj)
		}
	}
	// Deliver the current presence of newly added contacts that are online
	// (routed after the roster lock is released, as roster.Store requires).
	for _, cj := range share {
		for _, s := range m.h.Router.Sessions(cj) {
			if p := s.Presence(); p != nil {
				m.h.Router.Route(ctx, p.WithAttr("from", s.JID().String()).WithAttr("to", ownerJID.String()))
			}
		}
	}
	return nil
}

// syncItem changes one roster item from the managed groups old to now,
// keeping groups the user added. It reports whether the contact's presence
// is newly shared.
func (m *Module) syncItem(ctx context.Context, owner, contact jid.JID, old, now []string) (bool, error) {
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
		if after.Name == "" {
			after.Name = m.displayName(contact)
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

func (m *Module) displayName(contact jid.JID) string {
	if contact.Domain() != m.h.Domain {
		return ""
	}
	s := m.dir.Current()
	if s == nil {
		return ""
	}
	return m.dir.DisplayName(s.Users[contact.Local()])
}
