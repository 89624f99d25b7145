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
// reader), so every field is guarded by mu.
//
// Order: a flush and the stanza that triggered it are appended to out as
// one sequence under mu, and one goroutine at a time (the one that set
// delivering) hands out to Session.Deliver, outside mu. Any stanza offered
// meanwhile, active or not, queues behind in out instead of overtaking, so
// the session sees stanzas in the order they were offered, held ones at
// the position of the stanza that released them. Deliver is not called
// under mu because it is not only a queue append: with stream management
// a full unacknowledged queue closes the session, which fires "unbound"
// (and so end) in the same goroutine, and a session that ended hands
// stanzas back to the router as undelivered.
type state struct {
	mu       sync.Mutex
	inactive bool
	ended    bool // the session is gone: hold nothing more
	held     []heldStanza
	live     int            // entries of held that are not superseded
	bytes    int            // serialized size of the live entries
	index    map[string]int // verdict key → its entry in held
	// out is what awaits Session.Deliver, in order; delivering is true
	// while a goroutine is draining it.
	out        []*xml.Element
	delivering bool
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

// offer is the Outbound decision for el. It reports whether the stanza
// was taken (held, or queued behind a delivery in progress); false leaves
// it to the caller's normal delivery, which is then in order.
func (st *state) offer(s module.Session, el *xml.Element, lim limits, now time.Time) bool {
	st.mu.Lock()
	if !st.inactive || st.ended {
		// Active sessions hold nothing (going active released
		// everything), but a delivery may still be under way.
		if !st.delivering {
			st.mu.Unlock()
			return false
		}
		st.out = append(st.out, el)
		st.mu.Unlock()
		return true
	}
	v := classify(el, s.JID().String())
	if v.hold {
		size := el.Size()
		live, bytes := st.live+1, st.bytes+size
		if i, ok := st.index[v.key]; ok && v.key != "" {
			live, bytes = live-1, bytes-st.held[i].size
		}
		// Full means deliver rather than drop, and start over. Bounding
		// bytes too keeps a sender of large presences or chat states
		// (anyone can send chat states) from parking megabytes per
		// session.
		if live <= lim.stanzas && bytes <= lim.bytes {
			st.hold(el, v, size, now, lim)
			st.mu.Unlock()
			return true
		}
	}
	st.supersede(v.key)
	st.release(s)
	st.out = append(st.out, el)
	st.deliver(s)
	return true
}

// hold appends el to the buffer, superseding the held stanza with the
// same key. Called with mu held.
func (st *state) hold(el *xml.Element, v verdict, size int, now time.Time, lim limits) {
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

// release moves everything held, in arrival order, to out and empties the
// buffer (its memory is released: an idle session keeps none). Called
// with mu held.
func (st *state) release(s module.Session) {
	for _, h := range st.held {
		if h.el == nil {
			continue
		}
		el := h.el
		if h.stamp && el.Child(stanza.NSDelay, "delay") == nil {
			el = el.WithChildren(stanza.Delay(s.JID().Domain(), h.since, ""))
		}
		st.out = append(st.out, el)
	}
	st.held, st.index, st.live, st.bytes = nil, nil, 0, 0
}

// deliver hands out to Session.Deliver until it stays empty, unless
// another goroutine is doing so already (it will deliver what was just
// appended, in order). Called with mu held; returns with it released.
func (st *state) deliver(s module.Session) {
	if st.delivering {
		st.mu.Unlock()
		return
	}
	st.delivering = true
	for len(st.out) > 0 {
		batch := st.out
		st.out = nil
		st.mu.Unlock()
		for _, el := range batch {
			s.Deliver(el)
		}
		st.mu.Lock()
	}
	st.delivering = false
	st.mu.Unlock()
}

// setInactive records <inactive/>.
func (st *state) setInactive() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.ended {
		st.inactive = true
	}
}

// setActive records <active/> (or a resumed stream, which starts active):
// what was held is queued before anything offered afterwards (XEP-0352
// §5.1, in-order processing), and holding stops.
func (st *state) setActive(s module.Session) {
	st.mu.Lock()
	st.release(s)
	st.inactive = false
	st.deliver(s)
}

// end discards what is held for a session that is gone. What is held
// only ever mattered to this resource: contacts' presence and
// notifications addressed to it, which RFC 6121 drops for a resource that
// is not there, and chat states, which XEP-0160 does not store offline. A
// delivery under way finishes: the session hands those (urgent) stanzas
// on as undelivered.
func (st *state) end() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.ended, st.inactive = true, false
	st.held, st.index, st.live, st.bytes = nil, nil, 0, 0
}
