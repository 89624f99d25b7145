package csi

import "parley/internal/module"

// Held reports how many stanzas are held for s and whether the session
// has CSI state that is still live (not ended), for the external tests.
func Held(s module.Session) (n int, live bool) {
	st := stateOf(s)
	if st == nil {
		return 0, false
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.live, !st.ended
}
