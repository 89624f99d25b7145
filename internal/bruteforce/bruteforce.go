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
// Attempts are counted while they are in progress, not only when they
// have failed: an attempt holds a slot from Begin until End, and a source
// gets no more slots than failures it has left before the pause
// (PauseAfter minus its failures). Otherwise every attempt sent at once
// would pass the check before the first failure was recorded, and a
// client opening a hundred connections would have a hundred passwords
// checked where the policy allows ten. A further attempt waits for a slot
// (legitimate logins from one address behind NAT just queue briefly).
//
// Memory is bounded: at most MaxSources addresses are tracked, the least
// recently seen is forgotten first, and entries expire with the window;
// attempts in progress are bounded by the connections that make them.
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
	// Refuse: the source is paused (or, with Busy, its attempts in
	// progress did not leave a slot free in time); answer without
	// checking credentials.
	Refuse bool
	Busy   bool
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

	mu       sync.Mutex
	entries  map[netip.Addr]*entry
	lru      *list.List               // front: most recently seen
	inflight map[netip.Addr]*inflight // attempts between Begin and End, per source
}

// inflight is a source's attempts in progress. freed is closed when one
// of them ends, for the attempts of the same source waiting for a slot
// (nil when none waits): an attempt ending wakes its own source's
// waiters, never another's.
type inflight struct {
	n     int
	freed chan struct{}
}

// New returns a limiter. now may be nil (time.Now); tests pass a fake clock.
func New(cfg Config, obs Observer, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	if cfg.MaxSources < 1 {
		cfg.MaxSources = 1
	}
	return &Limiter{cfg: cfg, obs: obs, now: now, entries: make(map[netip.Addr]*entry), lru: list.New(), inflight: make(map[netip.Addr]*inflight)}
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

// Check decides how to treat a new attempt from addr, without taking a
// slot (Begin does, for an attempt that will check credentials).
func (l *Limiter) Check(addr net.Addr) Decision {
	k, ok := Key(addr)
	if !ok {
		return Decision{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	d, _ := l.decideLocked(k)
	return d
}

// decideLocked is Check's decision for source k, and the failures it has
// recorded. l.mu is held.
func (l *Limiter) decideLocked(k netip.Addr) (Decision, int) {
	e := l.lookup(k)
	if e == nil {
		return Decision{}, 0
	}
	if l.now().Before(e.pausedUntil) {
		return Decision{Refuse: true}, e.failures
	}
	if e.failures >= l.cfg.DelayAfter {
		return Decision{Delay: l.cfg.Delay}, e.failures
	}
	return Decision{}, e.failures
}

// Attempt is one credential check from a source, holding one of its
// slots from Begin until End. A nil Attempt (an address the limiter does
// not track) is valid and does nothing.
type Attempt struct {
	l      *Limiter
	k      netip.Addr
	failed bool
	ended  bool
}

// Begin admits an attempt from addr that will check credentials and
// takes a slot for it: it waits while the source's recorded failures and
// its attempts in progress together reach PauseAfter, until deadline at
// most (then it refuses, Busy). The caller answers a refusal without
// looking at the credentials, waits the Delay before answering otherwise,
// marks a failed check with Fail and always calls End.
func (l *Limiter) Begin(addr net.Addr, deadline time.Time) (*Attempt, Decision) {
	k, ok := Key(addr)
	if !ok {
		return nil, Decision{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		d, failures := l.decideLocked(k)
		if d.Refuse {
			l.note(l.obs.Refused)
			return nil, d
		}
		in := l.inflight[k]
		if in == nil {
			in = &inflight{}
			l.inflight[k] = in
		}
		if failures+in.n < max(l.cfg.PauseAfter, 1) {
			in.n++
			if d.Delay > 0 {
				l.note(l.obs.Delayed)
			}
			return &Attempt{l: l, k: k}, d
		}
		if !l.waitLocked(in, deadline) {
			l.note(l.obs.Refused)
			return nil, Decision{Refuse: true, Busy: true}
		}
	}
}

// waitLocked waits, releasing l.mu, until an attempt of in's source ends
// or deadline passes; it reports false on the deadline. l.mu is held, and
// in has an attempt in progress (so it stays in l.inflight until that
// attempt ends and closes freed).
func (l *Limiter) waitLocked(in *inflight, deadline time.Time) bool {
	if in.freed == nil {
		in.freed = make(chan struct{})
	}
	freed := in.freed
	wait := time.Until(deadline)
	if wait <= 0 {
		return false
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	l.mu.Unlock()
	defer l.mu.Lock()
	select {
	case <-freed:
		return true
	case <-t.C:
		return false
	}
}

// Fail marks the attempt's credential check as failed; End records it.
func (a *Attempt) Fail() {
	if a != nil {
		a.failed = true
	}
}

// End records the attempt's failure, if it failed, and frees its slot.
// Only the first call counts.
func (a *Attempt) End() {
	if a == nil || a.ended {
		return
	}
	a.ended = true
	l := a.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.failed {
		l.failLocked(a.k)
	}
	in := l.inflight[a.k]
	if in.freed != nil {
		close(in.freed)
		in.freed = nil
	}
	if in.n--; in.n == 0 {
		delete(l.inflight, a.k)
	}
}

// Fail records a failed attempt from addr.
func (l *Limiter) Fail(addr net.Addr) {
	k, ok := Key(addr)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.failLocked(k)
}

// failLocked records a failed attempt from source k. l.mu is held.
func (l *Limiter) failLocked(k netip.Addr) {
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
