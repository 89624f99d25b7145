package blocking

import (
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
//
// In a cluster an account's sessions may be on other nodes, and any of its
// sessions may change its list. So a node also keeps the lists of accounts
// online elsewhere (remote, each for at most remoteTTL, swept of accounts
// gone offline as it grows), a change is followed by a notice that makes
// every other node drop its copy of that list, and a list read from
// storage is kept only if no notice arrived while it was being read
// (epoch), so a read that raced a change cannot keep the old list. A
// notice can be lost (a node cut off from NATS misses it): such a node has
// closed its client streams, which drops its own accounts' lists, and its
// copies of other nodes' accounts expire after remoteTTL.
type lists struct {
	h *module.Host
	// notify tells the other nodes that user's list changed; nil without
	// a cluster.
	notify func(user jid.JID)
	// epoch counts the notices received; see above.
	epoch atomic.Uint64
	// mu guards the maps; lookups, one per stanza, share it.
	mu sync.RWMutex
	// online maps an account with sessions to its entry. Entries are
	// added at bind and removed after the last session ends.
	online map[jid.JID]*entry
	// remote holds the lists of accounts with sessions only on other
	// nodes (cluster only); sweepAt is the size at which it is next
	// swept of accounts without sessions.
	remote  map[jid.JID]remoteList
	sweepAt int
}

// remoteList is a copy of the list of an account online on another node.
type remoteList struct {
	set    *blockSet
	loaded time.Time
}

// remoteTTL bounds how long a copy of another node's account's list is
// used without reading storage again, should a notice be lost.
const remoteTTL = time.Minute

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
	return &lists{h: h, online: make(map[jid.JID]*entry), remote: make(map[jid.JID]remoteList), sweepAt: 64}
}

// changed drops every copy of user's list this node keeps, after a notice
// that another node changed it (or deleted the account).
func (l *lists) changed(user jid.JID) {
	l.epoch.Add(1)
	l.reset(user)
	l.mu.Lock()
	delete(l.remote, user)
	l.mu.Unlock()
}

// cachedRemote returns this node's copy of the list of user, online on
// another node, if it has a current one.
func (l *lists) cachedRemote(user jid.JID) *blockSet {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if r, ok := l.remote[user]; ok && time.Since(r.loaded) < remoteTTL {
		return r.set
	}
	return nil
}

// keepRemote keeps s, read from storage when the epoch was epoch, as the
// list of user if user is online on another node and no notice arrived
// since. The map is swept of accounts no longer online whenever it has
// doubled, so it stays within twice the accounts online in the cluster.
func (l *lists) keepRemote(user jid.JID, s *blockSet, epoch uint64) {
	if len(l.h.Router.Sessions(user)) == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.epoch.Load() != epoch || l.online[user] != nil {
		return
	}
	if len(l.remote) >= l.sweepAt {
		for u, r := range l.remote {
			if time.Since(r.loaded) >= remoteTTL || len(l.h.Router.Sessions(u)) == 0 {
				delete(l.remote, u)
			}
		}
		l.sweepAt = max(64, 2*len(l.remote))
	}
	l.remote[user] = remoteList{set: s, loaded: time.Now()}
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
	// From now on the entry is the list; a copy made while the account
	// was online only elsewhere must not outlive it.
	delete(l.remote, user)
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
		if l.notify == nil {
			return l.load(ctx, user)
		}
		if s := l.cachedRemote(user); s != nil {
			return s, nil
		}
		epoch := l.epoch.Load()
		s, err := l.load(ctx, user)
		if err == nil {
			l.keepRemote(user, s, epoch)
		}
		return s, err
	}
	if s := e.set.Load(); s != nil {
		return s, nil
	}
	epoch := l.epoch.Load()
	s, err := l.load(ctx, user)
	if err != nil {
		return nil, err
	}
	if l.epoch.Load() != epoch {
		// Another node changed some list while this one was read: use
		// it for this stanza, keep nothing.
		return s, nil
	}
	// A change that stored its list meanwhile is newer than what was read
	// before it: only an unset list is filled in.
	if !e.set.CompareAndSwap(nil, s) {
		if cur := e.set.Load(); cur != nil {
			return cur, nil
		}
	} else if l.epoch.Load() != epoch {
		// A notice came between the check above and the swap: its reset
		// may have run before the swap, so undo it.
		e.set.CompareAndSwap(s, nil)
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
	epoch := l.epoch.Load()
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
		if l.epoch.Load() != epoch {
			// Another node changed a list while this change was built on
			// cur: storage has both changes (one key per item), next
			// only this one, and that node's notice may have come before
			// the Store above. Read storage again at the next check.
			e.set.CompareAndSwap(next, nil)
		}
		l.mu.Lock()
		delete(l.remote, user)
		l.mu.Unlock()
		if l.notify != nil {
			l.notify(user)
		}
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
