package module

import (
	"sort"
	"sync"
	"sync/atomic"
)

// Hook is a named, priority-ordered list of handlers for events of type E,
// after Prosody's event design: handlers run from the highest priority down,
// and the first one that returns true stops the chain ("handled").
//
// Handlers are registered at module start and rarely after, while Fire runs
// on every stanza, so the whole table is copy-on-write: On and its off
// function build a new table under mu and publish it atomically, and Fire
// and Has only load the current one (no lock on the stanza path).
type Hook[E any] struct {
	mu    sync.Mutex // serialises On and off
	lists atomic.Pointer[map[string][]entry[E]]
	seq   int
}

type entry[E any] struct {
	prio int
	seq  int // registration order: equal priorities run first-registered first
	fn   func(E) bool
}

// table returns the current handler lists (nil before the first On).
func (h *Hook[E]) table() map[string][]entry[E] {
	if p := h.lists.Load(); p != nil {
		return *p
	}
	return nil
}

// replace publishes a copy of the table with name's list set to list.
// Callers hold mu.
func (h *Hook[E]) replace(name string, list []entry[E]) {
	cur := h.table()
	next := make(map[string][]entry[E], len(cur)+1)
	for k, v := range cur {
		next[k] = v
	}
	next[name] = list
	h.lists.Store(&next)
}

// On registers fn for event name at priority prio and returns a function that
// removes it again (modules call it on Stop).
func (h *Hook[E]) On(name string, prio int, fn func(E) bool) (off func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	seq := h.seq
	next := append(append([]entry[E](nil), h.table()[name]...), entry[E]{prio: prio, seq: seq, fn: fn})
	sort.SliceStable(next, func(i, j int) bool {
		if next[i].prio != next[j].prio {
			return next[i].prio > next[j].prio
		}
		return next[i].seq < next[j].seq
	})
	h.replace(name, next)
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		cur := h.table()[name]
		out := make([]entry[E], 0, len(cur))
		for _, e := range cur {
			if e.seq != seq {
				out = append(out, e)
			}
		}
		h.replace(name, out)
	}
}

// Fire runs the handlers of name in priority order and reports whether one of
// them handled the event.
func (h *Hook[E]) Fire(name string, e E) bool {
	for _, en := range h.table()[name] {
		if en.fn(e) {
			return true
		}
	}
	return false
}

// Has reports whether any handler is registered for name.
func (h *Hook[E]) Has(name string) bool {
	return len(h.table()[name]) > 0
}
