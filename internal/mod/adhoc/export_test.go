package adhoc

import "time"

// SetClock replaces the session table's clock (session expiry tests).
func SetClock(a *Adhoc, now func() time.Time) {
	a.sessions.mu.Lock()
	defer a.sessions.mu.Unlock()
	a.sessions.now = now
}

// Pending is the number of pending command sessions.
func Pending(a *Adhoc) int { return a.sessions.len() }
