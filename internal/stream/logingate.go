package stream

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"parley/internal/bruteforce"
)

// LoginGate bounds the connections that are negotiating at once (TLS
// handshake, authentication, resource binding): the admission control of
// issue 15's login storms.
//
// Without it a server offered more logins than its CPU can handle accepts
// them all, and every handshake and PBKDF2 gets a shrinking share of the
// CPU: all logins slow down together, past the clients' timeouts, and the
// retries make it worse. With it, an accept loop takes a slot for each
// connection it accepts before it accepts the next; when every slot is
// taken, new connections wait in the kernel's listen backlog, and the admitted ones finish at the speed of an idle
// server. A slot is given back when its connection has logged in (or
// ended).
//
// Two bounds keep the gate from being a cheap way to shut logins out,
// which idle pre-authentication connections would otherwise be:
//
//   - hold: a slot held this long without finishing the login is given up;
//     the connection goes on (within limits.preauth_timeout) without one.
//     So a slow mobile client is not cut off, and a connection that sends
//     nothing keeps a slot for hold, not for the whole pre-auth time.
//   - perAddr: one source address (IPv4 address, IPv6 /64) holds at most
//     perAddr slots. Its further connections, once accepted, give their
//     slot back and wait for one of their own address's slots to free
//     (at most hold, then they go on without one), so other addresses keep
//     the rest of the gate.
//
// The zero value is not usable; NewLoginGate makes one. A nil *LoginGate
// admits everything at once (no bound), so callers need no branch.
type LoginGate struct {
	slots   chan struct{}
	perAddr int
	hold    time.Duration
	// InUse, if set, follows the slots taken; Expired, if set, counts
	// slots given up after hold.
	inUse    interface{ Set(float64) }
	reportMu sync.Mutex
	expired  interface{ Inc() }

	mu     sync.Mutex
	byAddr map[netip.Addr]*addrSlots
}

// addrSlots is one source address's share of the gate. wake is closed (and
// replaced) whenever n goes down, waking the connections of that address
// that wait for their share.
type addrSlots struct {
	n    int
	wake chan struct{}
}

// LoginGateMetrics are the collectors a gate reports to; both optional.
type LoginGateMetrics struct {
	InUse   interface{ Set(float64) }
	Expired interface{ Inc() }
}

// NewLoginGate returns a gate of max slots, at most perAddr of them held by
// one source address, each held at most hold. max < 1 returns nil: no gate.
func NewLoginGate(max, perAddr int, hold time.Duration, m LoginGateMetrics) *LoginGate {
	if max < 1 {
		return nil
	}
	if perAddr < 1 || perAddr > max {
		perAddr = max
	}
	return &LoginGate{slots: make(chan struct{}, max), perAddr: perAddr, hold: hold,
		inUse: m.InUse, expired: m.Expired, byAddr: make(map[netip.Addr]*addrSlots)}
}

// Take waits for a free slot for a connection just accepted. It reports
// false, holding nothing, when done is closed first (the server is
// stopping).
func (g *LoginGate) Take(done <-chan struct{}) bool {
	if g == nil {
		return true
	}
	select {
	case g.slots <- struct{}{}:
		g.report()
		return true
	case <-done:
		return false
	}
}

// Untake gives back a slot taken by Take that no connection will use.
func (g *LoginGate) Untake() {
	if g != nil {
		<-g.slots
		g.report()
	}
}

// Admit turns the slot Take gave into the connection's LoginSlot, counted
// against addr's share. If addr already holds its share, the slot goes
// back to the gate and the connection waits (in its own goroutine, not in
// the accept loop) for its address to be under its share and for a free
// slot, at most hold: then it goes on without a slot (nil, true), as a
// holder does whose slot expired, so many clients behind one NAT address
// are slowed by at most hold, never shut out. It reports false, holding
// nothing, if deadline passes or done closes first. Release the slot when
// the login is over.
func (g *LoginGate) Admit(addr net.Addr, deadline time.Time, done <-chan struct{}) (*LoginSlot, bool) {
	if g == nil {
		return nil, true
	}
	key, keyed := bruteforce.Key(addr)
	if !keyed {
		// Not an IP transport (tests with pipes): the global bound only.
		return g.slot(nil, key), true
	}
	var timeout, patience <-chan time.Time
	for {
		g.mu.Lock()
		st := g.byAddr[key]
		if st == nil {
			st = &addrSlots{}
			g.byAddr[key] = st
		}
		if st.n < g.perAddr {
			st.n++
			g.mu.Unlock()
			return g.slot(st, key), true
		}
		if st.wake == nil {
			st.wake = make(chan struct{})
		}
		wake := st.wake
		g.mu.Unlock()

		// Over its share: the slot goes back while this connection waits.
		g.Untake()
		if timeout == nil {
			t := time.NewTimer(time.Until(deadline))
			defer t.Stop()
			timeout = t.C
			if g.hold > 0 {
				p := time.NewTimer(g.hold)
				defer p.Stop()
				patience = p.C
			}
		}
		select {
		case <-wake:
		case <-patience:
			g.gaveUp()
			return nil, true
		case <-timeout:
			return nil, false
		case <-done:
			return nil, false
		}
		select {
		case g.slots <- struct{}{}:
			g.report()
		case <-patience:
			g.gaveUp()
			return nil, true
		case <-timeout:
			return nil, false
		case <-done:
			return nil, false
		}
	}
}

func (g *LoginGate) slot(st *addrSlots, key netip.Addr) *LoginSlot {
	s := &LoginSlot{g: g, st: st, key: key, taken: time.Now()}
	if g.hold > 0 {
		s.timer = time.AfterFunc(g.hold, s.expire)
	}
	return s
}

// gaveUp counts a connection that waited hold for its address's share
// and goes on without a slot, like an expired one.
func (g *LoginGate) gaveUp() {
	if g.expired != nil {
		g.expired.Inc()
	}
}

// report sets the gauge to the slots taken. The count is read under
// reportMu, so of two reports racing the one that sets last has read
// last: the gauge never stays behind the gate.
func (g *LoginGate) report() {
	if g.inUse != nil {
		g.reportMu.Lock()
		g.inUse.Set(float64(len(g.slots)))
		g.reportMu.Unlock()
	}
}

// LoginSlot is one connection's place in the gate. Release is idempotent
// and safe from any goroutine; a nil *LoginSlot is a slot of no gate.
type LoginSlot struct {
	g     *LoginGate
	st    *addrSlots
	key   netip.Addr
	timer *time.Timer
	once  sync.Once
	// taken is when the connection got the slot: where its login's time
	// on the server starts (parley_login_seconds), after any wait at the
	// gate or in the listen backlog.
	taken time.Time
}

// Taken returns when the connection got its slot; zero for a nil slot.
func (s *LoginSlot) Taken() time.Time {
	if s == nil {
		return time.Time{}
	}
	return s.taken
}

// Release gives the slot back: the connection has logged in, or ended.
func (s *LoginSlot) Release() {
	if s == nil {
		return
	}
	s.once.Do(func() {
		if s.timer != nil {
			s.timer.Stop()
		}
		s.free()
	})
}

// expire gives the slot back after hold, the connection not logged in yet.
func (s *LoginSlot) expire() {
	s.once.Do(func() {
		s.g.gaveUp()
		s.free()
	})
}

func (s *LoginSlot) free() {
	g := s.g
	if s.st != nil {
		g.mu.Lock()
		s.st.n--
		if s.st.wake != nil {
			close(s.st.wake)
			s.st.wake = nil
		}
		if s.st.n == 0 && g.byAddr[s.key] == s.st {
			// Waiters woken above find no entry and make a fresh one.
			delete(g.byAddr, s.key)
		}
		g.mu.Unlock()
	}
	<-g.slots
	g.report()
}
