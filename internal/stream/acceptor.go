package stream

import (
	"errors"
	"net"
	"sync"
	"time"

	"parley/internal/sockio"
)

// Why an Acceptor closed a connection without serving it.
const (
	// RefusedPerAddress: the source address already has PerIP's maximum.
	RefusedPerAddress = "per-address"
	// RefusedFull: the acceptor already serves Max connections.
	RefusedFull = "full"
	// RefusedClosing: Close was called (the server is shutting down).
	RefusedClosing = "closing"
)

// Acceptor is the accept side shared by the stream servers (c2s, component,
// s2s incoming): accept, per-address admission, registration unless the
// server is shutting down, one goroutine per connection, and the bookkeeping
// Shutdown needs to find and wait for every stream. What differs by kind
// (how a connection is set up and served, what a refusal logs or counts) is
// passed in. Set the fields before the first Accept; the zero value of the
// unexported state is ready to use.
type Acceptor[C comparable] struct {
	// WG counts every goroutine the acceptor starts, so the server's
	// Shutdown can wait for them; it is the server's own group.
	WG *sync.WaitGroup
	// PerIP bounds the open connections per source address; nil: no bound.
	// A connection over the bound is closed before anything is read or
	// allocated for it.
	PerIP *ConnLimiter
	// Max bounds the registered connections; 0: no bound.
	Max int
	// Gauge, if set, counts the registered connections.
	Gauge interface {
		Inc()
		Dec()
	}
	// AcceptError handles an Accept failure other than a closed listener
	// (log it, back off); the loop then accepts again. Nil: ignored.
	AcceptError func(err error)
	// Refused, if set, is told of a connection closed unserved and why
	// (RefusedPerAddress, RefusedFull, RefusedClosing), before the close.
	Refused func(nc net.Conn, reason string)
	// Serve runs one registered connection until its stream ends.
	Serve func(c C)
	// Gate, if set, bounds the connections negotiating at once: an accept
	// loop takes a slot for each connection it accepts before it accepts
	// the next, so over the bound new connections wait in the listen
	// backlog (LoginGate).
	Gate *LoginGate
	// GateWait bounds how long an accepted connection whose address holds
	// its share of the gate waits for a slot before it is closed (the
	// kind's pre-authentication time).
	GateWait time.Duration
	// Gated hands a registered connection its slot, before Serve; the
	// connection releases it when its login is over or it ends (whichever
	// comes first). Without Gated the slot is released at registration:
	// the gate then covers only what open does (a direct TLS handshake).
	Gated func(c C, slot *LoginSlot)

	mu       sync.Mutex
	closing  bool
	conns    map[C]*accepted
	doneOnce sync.Once
	done     chan struct{} // closed by Close: wakes accept loops waiting at the gate
}

// Accept serves l in a goroutine of its own until l is closed. open turns
// each admitted connection into the kind's connection; it runs in the
// connection's goroutine, so a slow step (a TLS handshake) delays no other
// accept. When open reports false it has closed nc itself and the
// connection is dropped.
func (a *Acceptor[C]) Accept(l net.Listener, open func(nc net.Conn) (C, bool)) {
	a.WG.Add(1)
	go func() {
		defer a.WG.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				if a.AcceptError != nil {
					a.AcceptError(err)
				}
				continue
			}
			// The gate is taken after the accept, not before: a loop
			// waiting in Accept must not hold a slot (a server has several
			// listeners). So at most one accepted connection per listener
			// waits here; the rest wait in the listen backlog.
			if !a.Gate.Take(a.doneCh()) {
				_ = nc.Close()
				return
			}
			release, ok := a.PerIP.Acquire(nc.RemoteAddr())
			if !ok {
				a.Gate.Untake()
				a.refuse(nc, RefusedPerAddress)
				continue
			}
			a.WG.Add(1)
			// Stanza streams read and write without waking the
			// runtime's system monitor (package sockio).
			go a.serve(sockio.Wrap(nc), open, release)
		}
	}()
}

// serve is the goroutine of one accepted connection, until the
// connection ends or detaches (Detach). It and run are the bottom frames of
// every connection's stack while it waits for input, so they are kept
// small: the garbage collector halves a waiting goroutine's stack only when
// less than a quarter of it is in use.
func (a *Acceptor[C]) serve(nc net.Conn, open func(net.Conn) (C, bool), release func()) {
	end := func() { release(); a.WG.Done() }
	slot, ok := a.admit(nc)
	if !ok {
		_ = nc.Close()
		end()
		return
	}
	c, ok := open(nc)
	if !ok {
		slot.Release()
		end()
		return
	}
	if reason := a.register(c, end, false); reason != "" {
		slot.Release()
		a.refuse(nc, reason)
		end()
		return
	}
	// The connection owns its slot from here (this frame stays under
	// every idle session, so it keeps no reference).
	if a.Gated != nil {
		a.Gated(c, slot)
	} else {
		slot.Release()
	}
	slot = nil
	a.run(c)
}

// admit waits for the connection's login slot (none without a Gate). It
// is a function of its own, never inlined, so that its arguments and
// locals are not part of serve's frame, which stays under every idle
// session.
//
//go:noinline
func (a *Acceptor[C]) admit(nc net.Conn) (*LoginSlot, bool) {
	if a.Gate == nil {
		return nil, true
	}
	return a.Gate.Admit(nc.RemoteAddr(), time.Now().Add(a.GateWait), a.doneCh())
}

// run serves a registered connection, counted by the gauge, and forgets it
// when its stream ends, unless Serve detached it.
func (a *Acceptor[C]) run(c C) {
	if a.Gauge != nil {
		a.Gauge.Inc()
	}
	a.Serve(c)
	a.mu.Lock()
	// Gone already: c detached and its stream ended, on another
	// goroutine, before Serve returned here.
	e := a.conns[c]
	detached := e == nil || e.detached
	a.mu.Unlock()
	if !detached {
		a.finish(c)
	}
}

// Detach is called by Serve, on its own goroutine, when c goes on without
// it: c2s ends an idle session's reader goroutine and starts another when
// bytes arrive, so that an idle session keeps no deep stack. Serve then
// returns while c is still open, and the acceptor keeps counting and
// tracking c (the gauge, Conns, Shutdown's wait, the per-address count)
// until the returned end is called, once, when c's stream has ended.
func (a *Acceptor[C]) Detach(c C) (end func()) {
	a.mu.Lock()
	a.conns[c].detached = true
	a.mu.Unlock()
	return func() { a.finish(c) }
}

// finish forgets a connection whose stream has ended and releases what
// its registration held.
func (a *Acceptor[C]) finish(c C) {
	if a.Gauge != nil {
		a.Gauge.Dec()
	}
	a.mu.Lock()
	e := a.conns[c]
	delete(a.conns, c)
	a.mu.Unlock()
	if e != nil && e.end != nil {
		e.end()
	}
}

// ServeConn runs c, a connection accepted by someone else (an HTTP server
// upgrading to WebSocket), with the registration, gauge and shutdown
// tracking of Accept's connections; the caller applies any per-address
// limit itself. It blocks until c's stream ends (or Serve detaches it) and
// reports false, having served nothing, when the acceptor is closing or
// full.
func (a *Acceptor[C]) ServeConn(c C) bool {
	if reason := a.register(c, a.WG.Done, true); reason != "" {
		return false
	}
	a.run(c)
	return true
}

// accepted is what the acceptor keeps of a registered connection.
type accepted struct {
	end      func() // releases the registration's holdings (per-address count, WG)
	detached bool   // Serve returned with the connection still open (Detach)
}

// register adds c to the open connections, or says why it may not. end is
// run when c is forgotten. count adds c to WG, under the lock that Close
// takes before Shutdown waits, so that no Add can race that Wait (the
// accept loop counts its connections itself, before their goroutine).
func (a *Acceptor[C]) register(c C, end func(), count bool) (refused string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.closing:
		return RefusedClosing
	case a.Max > 0 && len(a.conns) >= a.Max:
		return RefusedFull
	}
	if count {
		a.WG.Add(1)
	}
	if a.conns == nil {
		a.conns = make(map[C]*accepted)
	}
	a.conns[c] = &accepted{end: end}
	return ""
}

func (a *Acceptor[C]) refuse(nc net.Conn, reason string) {
	if a.Refused != nil {
		a.Refused(nc, reason)
	}
	_ = nc.Close()
}

// Conns returns the connections registered now.
func (a *Acceptor[C]) Conns() []C {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.snapshot()
}

// Close refuses every later connection and returns the registered ones,
// for the server to end (with <system-shutdown/>). It does not close the
// listeners: the server owns them.
func (a *Acceptor[C]) Close() []C {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.closing {
		close(a.doneCh())
	}
	a.closing = true
	return a.snapshot()
}

// doneCh returns the channel Close closes.
func (a *Acceptor[C]) doneCh() chan struct{} {
	a.doneOnce.Do(func() { a.done = make(chan struct{}) })
	return a.done
}

func (a *Acceptor[C]) snapshot() []C {
	out := make([]C, 0, len(a.conns))
	for c := range a.conns {
		out = append(out, c)
	}
	return out
}

// ListenAll binds a TCP listener on every address, in order, or on none:
// when one fails it closes those already bound and returns the error, so a
// server fails before serving anything.
func ListenAll(addrs ...string) ([]net.Listener, error) {
	ls := make([]net.Listener, 0, len(addrs))
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range ls {
				_ = l.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}
