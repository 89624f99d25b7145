package adhoc

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"parley/internal/xmpp/jid"
)

// session is a command between two stages.
type session struct {
	owner   jid.JID // the full JID that started it: nobody else may continue it
	node    string
	state   any
	expires time.Time
}

// sessions is the bounded table of pending sessions of one host.
type sessions struct {
	mu       sync.Mutex
	now      func() time.Time
	ttl      time.Duration
	max      int
	maxOwner int
	m        map[string]*session
}

var (
	errUnknown = errors.New("unknown session")
	errExpired = errors.New("session expired")
	errFull    = errors.New("too many pending command sessions")
)

func newSessions(now func() time.Time, ttl time.Duration, max, maxOwner int) *sessions {
	return &sessions{now: now, ttl: ttl, max: max, maxOwner: maxOwner, m: make(map[string]*session)}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// take removes and returns the session id of owner for node. A session of
// someone else is reported unknown, so ids cannot be probed.
func (s *sessions) take(id string, owner jid.JID, node string) (*session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.m[id]
	if ss == nil || ss.owner != owner || ss.node != node {
		return nil, errUnknown
	}
	delete(s.m, id)
	if !s.now().Before(ss.expires) {
		return nil, errExpired
	}
	return ss, nil
}

// put stores a session under id (a new one when id is ""), expired ones
// being swept first; it refuses when the host's or the owner's share is
// used up.
func (s *sessions) put(id string, owner jid.JID, node string, state any) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	n := 0
	for k, ss := range s.m {
		if !now.Before(ss.expires) {
			delete(s.m, k)
			continue
		}
		if ss.owner == owner {
			n++
		}
	}
	if len(s.m) >= s.max || n >= s.maxOwner {
		return "", errFull
	}
	if id == "" {
		id = newID()
	}
	s.m[id] = &session{owner: owner, node: node, state: state, expires: now.Add(s.ttl)}
	return id, nil
}

// dropOwner forgets every session of owner.
func (s *sessions) dropOwner(owner jid.JID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, ss := range s.m {
		if ss.owner == owner {
			delete(s.m, k)
		}
	}
}

// len is the number of sessions held (tests).
func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}
