// Package bruteforce slows down and then pauses password guessing from one
// source address. It counts failed logins per IP (SASL and XEP-0078 alike):
// after DelayAfter failures within Window each further attempt waits Delay
// before it is answered; after PauseAfter failures the address is paused and
// every attempt is refused, without looking at the credentials, until Pause
// has passed.
//
// There is no per-account lockout: locking an account after N failures lets
// anyone lock any user out, which is a worse attack than the one it stops.
//
// Memory is bounded: at most MaxSources addresses are tracked, the least
// recently seen is forgotten first, and entries expire with the window.
// There is no package-level state; each server owns its Limiter.
package bruteforce

import (
	"container/list"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Config is the limiter's policy (config.BruteForce).
type Config struct {
	Window     time.Duration
	DelayAfter int
	Delay      time.Duration
	PauseAfter int
	Pause      time.Duration
	MaxSources int
}

// Observer receives counter updates (Prometheus in the server); nil fields
// are ignored.
type Observer struct {
	Delayed func() // an attempt was delayed
	Refused func() // an attempt was refused because its source is paused
	Paused  func() // a source was paused
	Tracked func(n int)
}

// Decision is what to do with a new attempt.
type Decision struct {
	// Refuse: the source is paused; answer without checking credentials.
	Refuse bool
	// Delay to wait before answering (0 for none).
	Delay time.Duration
}

type entry struct {
	key         netip.Addr
	failures    int
	windowStart time.Time
	pausedUntil time.Time
	elem        *list.Element
}

// Limiter tracks failures per source address. Safe for concurrent use.
type Limiter struct {
	cfg Config
	obs Observer
	now func() time.Time

	mu      sync.Mutex
	entries map[netip.Addr]*entry
	lru     *list.List // front: most recently seen
}

// New returns a limiter. now may be nil (time.Now); tests pass a fake clock.
func New(cfg Config, obs Observer, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	if cfg.MaxSources < 1 {
		cfg.MaxSources = 1
	}
	return &Limiter{cfg: cfg, obs: obs, now: now, entries: make(map[netip.Addr]*entry), lru: list.New()}
}

// Key maps a remote address to the tracked key. IPv6 addresses are grouped
// by /64, since one host usually owns a whole /64 and could otherwise
// rotate through it.
func Key(addr net.Addr) (netip.Addr, bool) {
	var ip netip.Addr
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(a.IP)
	default:
		ap, err := netip.ParseAddrPort(addr.String())
		if err != nil {
			return netip.Addr{}, false
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap()
	if !ip.IsValid() {
		return netip.Addr{}, false
	}
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		ip = p.Addr()
	}
	return ip, true
}

// Check decides how to treat a new attempt from addr.
func (l *Limiter) Check(addr net.Addr) Decision {
	k, ok := Key(addr)
	if !ok {
		return Decision{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.lookup(k)
	if e == nil {
		return Decision{}
	}
	now := l.now()
	if now.Before(e.pausedUntil) {
		l.note(l.obs.Refused)
		return Decision{Refuse: true}
	}
	if e.failures >= l.cfg.DelayAfter {
		l.note(l.obs.Delayed)
		return Decision{Delay: l.cfg.Delay}
	}
	return Decision{}
}

// Fail records a failed attempt from addr.
func (l *Limiter) Fail(addr net.Addr) {
	k, ok := Key(addr)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	e := l.lookup(k)
	if e == nil {
		e = &entry{key: k, windowStart: now}
		e.elem = l.lru.PushFront(e)
		l.entries[k] = e
		for l.lru.Len() > l.cfg.MaxSources {
			l.remove(l.lru.Back().Value.(*entry))
		}
	}
	e.failures++
	if e.failures >= l.cfg.PauseAfter && !now.Before(e.pausedUntil) {
		e.pausedUntil = now.Add(l.cfg.Pause)
		// A new window starts when the pause ends, so one more failure
		// after it does not pause again at once.
		e.failures = 0
		e.windowStart = e.pausedUntil
		l.note(l.obs.Paused)
	}
	if l.obs.Tracked != nil {
		l.obs.Tracked(len(l.entries))
	}
}

// Tracked returns how many sources are tracked.
func (l *Limiter) Tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries)
}

// lookup returns the live entry for k, dropping it when expired, and marks
// it as recently seen. l.mu is held.
func (l *Limiter) lookup(k netip.Addr) *entry {
	e := l.entries[k]
	if e == nil {
		return nil
	}
	now := l.now()
	if now.After(e.pausedUntil) && now.Sub(e.windowStart) > l.cfg.Window {
		l.remove(e)
		return nil
	}
	l.lru.MoveToFront(e.elem)
	return e
}

func (l *Limiter) remove(e *entry) {
	l.lru.Remove(e.elem)
	delete(l.entries, e.key)
	if l.obs.Tracked != nil {
		l.obs.Tracked(len(l.entries))
	}
}

func (l *Limiter) note(fn func()) {
	if fn != nil {
		fn()
	}
}
