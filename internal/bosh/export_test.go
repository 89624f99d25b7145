package bosh

// Requests reports, for the tests of package bosh_test, how many requests
// session sid holds (processed, not yet answered) and how many wait ahead
// of a gap in the rids, and whether it has ended; ok is false for an
// unknown sid. Tests wait on it instead of sleeping until a request they
// sent in the background has reached the session.
func (h *Handler) Requests(sid string) (held, waiting int, closed, ok bool) {
	s := h.lookup(sid)
	if s == nil {
		return 0, 0, false, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.held), len(s.waiting), s.closed, true
}
