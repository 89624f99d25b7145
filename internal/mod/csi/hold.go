package csi

import (
	"sync"
	"time"

	"parley/internal/module"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// state is the client state of one session and what is held back for it.
// It lives in the session's module values (module.Session.Value), so it is
// discarded with the session: no map keyed by session, no goroutine, no
// timer.
//
// The Outbound hook runs in whatever goroutine sends to the session (the
// router on behalf of any other session, module code, the session's own
// reader), so every field is guarded by mu. Delivering under mu is what
// keeps the order: a flush and the stanza that triggered it reach the
// writer's queue as one sequence that no concurrent sender can cut into,
// and a stanza held after the flush is necessarily later than all of it.
// Session.Deliver only appends to the output queue and never blocks, and
// nothing else is called with mu held.
type state struct {
	mu       sync.Mutex
	inactive bool
	ended    bool // the session is gone: hold nothing more
	held     []heldStanza
	live     int            // entries of held that are not superseded
	bytes    int            // serialized size of the live entries
	index    map[string]int // verdict key → its entry in held
}

// heldStanza is one entry of the hold buffer in arrival order; el is nil
// once a later stanza with the same key superseded it.
type heldStanza struct {
	el    *xml.Element
	key   string
	size  int
	since time.Time
	stamp bool // add a XEP-0203 <delay/> on delivery (presence)
}

// limits bound one session's hold buffer. Reaching either flushes it.
type limits struct {
	stanzas int // limits.csi_queue
	bytes   int // limits.max_stanza_bytes
}

// offer is the Outbound decision for el while the session may be
// inactive. It reports whether the stanza was taken (held, or delivered
// here after a flush); false leaves it to the caller's normal delivery.
func (st *state) offer(s module.Session, el *xml.Element, lim limits, now time.Time) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.inactive || st.ended {
		// Active sessions hold nothing (going active flushed everything
		// under this lock), so normal delivery keeps the order.
		return false
	}
	v := classify(el, s.JID().String())
	if !v.hold {
		st.supersede(v.key)
		st.flush(s)
		s.Deliver(el)
		return true
	}
	size := el.Size()
	live, bytes := st.live+1, st.bytes+size
	if i, ok := st.index[v.key]; ok && v.key != "" {
		live, bytes = live-1, bytes-st.held[i].size
	}
	if live > lim.stanzas || bytes > lim.bytes {
		// Full: deliver rather than drop, and start over. Bounding bytes
		// too keeps a sender of large presences or chat states (anyone
		// can send chat states) from parking megabytes per session.
		st.supersede(v.key)
		st.flush(s)
		s.Deliver(el)
		return true
	}
	st.supersede(v.key)
	if v.key != "" {
		if st.index == nil {
			st.index = make(map[string]int)
		}
		st.index[v.key] = len(st.held)
	}
	st.held = append(st.held, heldStanza{el: el, key: v.key, size: size, since: now, stamp: v.presence})
	st.live++
	st.bytes += size
	if len(st.held) >= 2*lim.stanzas {
		st.compact()
	}
	return true
}

// supersede drops the held entry with key, if any: a later stanza with the
// same key carries the newer state.
func (st *state) supersede(key string) {
	if key == "" {
		return
	}
	i, ok := st.index[key]
	if !ok {
		return
	}
	st.live--
	st.bytes -= st.held[i].size
	st.held[i] = heldStanza{}
	delete(st.index, key)
}

// compact removes superseded entries, so that a contact whose presence
// flaps all day does not grow the buffer: it runs when superseded entries
// are at least half of it, which keeps it linear overall.
func (st *state) compact() {
	out := st.held[:0]
	for _, h := range st.held {
		if h.el == nil {
			continue
		}
		if h.key != "" {
			st.index[h.key] = len(out)
		}
		out = append(out, h)
	}
	clear(st.held[len(out):]) // release the superseded stanzas
	st.held = out
}

// flush delivers everything held, in arrival order, and empties the
// buffer (its memory is released: an idle session keeps none).
func (st *state) flush(s module.Session) {
	for _, h := range st.held {
		if h.el == nil {
			continue
		}
		el := h.el
		if h.stamp && el.Child(stanza.NSDelay, "delay") == nil {
			el = el.WithChildren(stanza.Delay(s.JID().Domain(), h.since, ""))
		}
		s.Deliver(el)
	}
	st.held, st.index, st.live, st.bytes = nil, nil, 0, 0
}

// setInactive records <inactive/>.
func (st *state) setInactive() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.ended {
		st.inactive = true
	}
}

// setActive records <active/>: what was held is delivered before anything
// the session receives afterwards (XEP-0352 §5.1, in-order processing).
func (st *state) setActive(s module.Session) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.flush(s)
	st.inactive = false
}

// end discards what is held for a session that is gone; its output queue
// is closed, so nothing could be delivered anyway.
func (st *state) end() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ended, st.inactive = true, false
	st.held, st.index, st.live, st.bytes = nil, nil, 0, 0
}
