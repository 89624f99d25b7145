package module

import (
	"sort"
	"sync"
)

// Hook is a named, priority-ordered list of handlers for events of type E,
// after Prosody's event design: handlers run from the highest priority down,
// and the first one that returns true stops the chain ("handled").
//
// Handlers are registered at module start and rarely after, while Fire runs
// on every stanza, so the handler lists are copy-on-write: Fire takes a read
// lock only long enough to fetch the current slice.
type Hook[E any] struct {
	mu    sync.RWMutex
	lists map[string][]entry[E]
	seq   int
}

type entry[E any] struct {
	prio int
	seq  int // registration order: equal priorities run first-registered first
	fn   func(E) bool
}

// On registers fn for event name at priority prio and returns a function that
// removes it again (modules call it on Stop).
func (h *Hook[E]) On(name string, prio int, fn func(E) bool) (off func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.lists == nil {
		h.lists = make(map[string][]entry[E])
	}
	h.seq++
	seq := h.seq
	next := append(append([]entry[E](nil), h.lists[name]...), entry[E]{prio: prio, seq: seq, fn: fn})
	sort.SliceStable(next, func(i, j int) bool {
		if next[i].prio != next[j].prio {
			return next[i].prio > next[j].prio
		}
		return next[i].seq < next[j].seq
	})
	h.lists[name] = next
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		cur := h.lists[name]
		out := make([]entry[E], 0, len(cur))
		for _, e := range cur {
			if e.seq != seq {
				out = append(out, e)
			}
		}
		h.lists[name] = out
	}
}

// Fire runs the handlers of name in priority order and reports whether one of
// them handled the event.
func (h *Hook[E]) Fire(name string, e E) bool {
	h.mu.RLock()
	list := h.lists[name]
	h.mu.RUnlock()
	for _, en := range list {
		if en.fn(e) {
			return true
		}
	}
	return false
}

// Has reports whether any handler is registered for name.
func (h *Hook[E]) Has(name string) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.lists[name]) > 0
}
