package module

import "sync"

// MovingKey is a Session value key whose value goes with the session when
// its client resumes it (XEP-0198) on another node of a cluster: the
// holder encodes it into the handover, the new node decodes it onto the
// session it builds. Values that matter after a session moves are these:
// whom it sent directed presence (so they learn when it ends), whether it
// announced itself, its status for XEP-0012, whether it asked for the
// block list, and the shared values (carbons, caps). Stream state that a
// resumption resets anyway (XEP-0352) does not move. A module registers
// its keys with Host.Moves, so the new node can find them by name.
type MovingKey interface {
	MovingName() string
	Encode(v any) string
	Decode(s string) any
}

// movingKeys is a host's registry of MovingKeys by name.
type movingKeys struct {
	mu   sync.RWMutex
	keys map[string]MovingKey
}

// Moves registers k: values of sessions under k move with them. Modules
// call it when they are built.
func (h *Host) Moves(k MovingKey) {
	h.moving.mu.Lock()
	defer h.moving.mu.Unlock()
	if h.moving.keys == nil {
		h.moving.keys = make(map[string]MovingKey)
	}
	h.moving.keys[k.MovingName()] = k
}

// MovingKeyNamed returns the registered MovingKey called name, or nil.
func (h *Host) MovingKeyNamed(name string) MovingKey {
	h.moving.mu.RLock()
	defer h.moving.mu.RUnlock()
	return h.moving.keys[name]
}
