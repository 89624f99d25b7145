package blocking

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
)

// blockSet is one account's blocklist. It is never changed once other
// goroutines can see it: a change builds a new one (clone), so readers need
// no lock.
type blockSet struct {
	items map[jid.JID]struct{}
}

// emptySet is the list of an account that blocked nothing.
func emptySet() *blockSet { return &blockSet{items: map[jid.JID]struct{}{}} }

func (s *blockSet) len() int { return len(s.items) }

func (s *blockSet) has(j jid.JID) bool {
	_, ok := s.items[j]
	return ok
}

// blocks reports whether the list blocks communication with j, by the
// matching rules of XEP-0191 §5 (those of XEP-0016): an item blocks the
// exact JID it names; a bare JID item every resource of that account; a
// domain item the domain, every account at it and every resource of the
// domain. An item domain/resource names that one entity of the domain,
// which the exact match covers. Subdomains are other domains.
func (s *blockSet) blocks(j jid.JID) bool {
	if len(s.items) == 0 || j.IsZero() {
		return false
	}
	if s.has(j) {
		return true
	}
	if j.Local() != "" && j.Resource() != "" && s.has(j.Bare()) {
		return true
	}
	return s.has(j.DomainJID())
}

// clone returns a copy to build a changed list in.
func (s *blockSet) clone() *blockSet { return &blockSet{items: maps.Clone(s.items)} }

// sorted returns the items in a stable order (by their string form), for
// the blocklist answer.
func (s *blockSet) sorted() []jid.JID {
	out := slices.Collect(maps.Keys(s.items))
	slices.SortFunc(out, func(a, b jid.JID) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// lists holds the blocklists of the host's accounts that have sessions: the
// filters consult a list for every stanza to and from its account, so it
// must not cost a storage read each time. The list of an account without
// sessions is read from storage when needed (a message to an offline
// user), which bounds memory to the online accounts.
type lists struct {
	h *module.Host
	// mu guards the map; lookups, one per stanza, share it.
	mu sync.RWMutex
	// online maps an account with sessions to its entry. Entries are
	// added at bind and removed after the last session ends.
	online map[jid.JID]*entry
}

// entry is one online account's list.
type entry struct {
	// mu serialises changes of the list with their storage writes, so two
	// resources blocking at once cannot lose each other's items.
	mu sync.Mutex
	// set is the current list, nil until first needed (or after a storage
	// failure left it unknown). Readers load it without a lock.
	set atomic.Pointer[blockSet]
}

func newLists(h *module.Host) *lists {
	return &lists{h: h, online: make(map[jid.JID]*entry)}
}

func (l *lists) entry(user jid.JID) *entry {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.online[user]
}

// track makes user's list one kept in memory (a session was bound).
func (l *lists) track(user jid.JID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.online[user] == nil {
		l.online[user] = &entry{}
	}
}

// forget drops user's list from memory if the account has no session
// left. The check is made under l.mu, which track also takes, so a session
// bound meanwhile either is seen here or re-creates the entry after.
// Changes come from the account's own sessions, on their goroutines, before
// they end, so no change is under way on an entry forgotten here.
func (l *lists) forget(user jid.JID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.h.Router.Sessions(user)) == 0 {
		delete(l.online, user)
	}
}

// reset makes the next check of user's list read storage again.
func (l *lists) reset(user jid.JID) {
	if e := l.entry(user); e != nil {
		e.set.Store(nil)
	}
}

// get returns user's list: from memory for an account with sessions
// (loading it at the first call), else from storage.
func (l *lists) get(ctx context.Context, user jid.JID) (*blockSet, error) {
	e := l.entry(user)
	if e == nil {
		return l.load(ctx, user)
	}
	if s := e.set.Load(); s != nil {
		return s, nil
	}
	s, err := l.load(ctx, user)
	if err != nil {
		return nil, err
	}
	// A change that stored its list meanwhile is newer than what was read
	// before it: only an unset list is filled in.
	if !e.set.CompareAndSwap(nil, s) {
		if cur := e.set.Load(); cur != nil {
			return cur, nil
		}
	}
	return s, nil
}

// change applies fn to user's current list with changes serialised. fn
// writes storage and returns the list as it now is in storage (also after
// a partial failure, with its error), or nil when it changed nothing. That
// list becomes the one in memory.
func (l *lists) change(ctx context.Context, user jid.JID, fn func(cur *blockSet) (*blockSet, error)) error {
	e := l.entry(user)
	if e == nil {
		// No session (changes come from sessions, so only in a race with
		// the last one ending): nothing in memory to keep current.
		e = &entry{}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	cur := e.set.Load()
	if cur == nil {
		var err error
		if cur, err = l.load(ctx, user); err != nil {
			return err
		}
	}
	next, err := fn(cur)
	if next != nil {
		e.set.Store(next)
	}
	return err
}

// load reads user's list from storage. Keys are written in canonical form;
// one that does not parse (a damaged store) is logged and skipped rather
// than making the whole list unreadable. The read does not end with the
// caller's context: the list is kept for every later stanza, and a sender
// whose connection is closing must not make it unreadable (which the
// filters treat as blocking).
func (l *lists) load(ctx context.Context, user jid.JID) (*blockSet, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	kv, err := l.h.Store.KV().List(context.WithoutCancel(ctx), kvBucket, user.String())
	if err != nil {
		return nil, errors.Join(errors.New("blocking: read the list of "+user.String()), err)
	}
	s := emptySet()
	for k := range kv {
		j, err := jid.Parse(k)
		if err != nil {
			l.h.Log.Error("blocking: stored item is not a JID; ignored", "owner", user.String(), "item", k)
			continue
		}
		s.items[j] = struct{}{}
	}
	return s, nil
}
