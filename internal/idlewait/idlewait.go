// Package idlewait tells when idle sockets become readable, many sockets to
// one goroutine.
//
// Why: an idle client session needs nothing but to notice its client's
// next bytes. Waiting for them in the runtime poller costs a goroutine per
// session, and the smallest goroutine stack is 2 KiB: with TLS that was
// the eighth part of an idle session's memory. A Set keeps the sockets in
// one kernel readiness set (epoll) instead, which the runtime poller
// watches as a single file, so the only per-socket state is a few words
// here and an entry in the kernel.
//
// It is not a network layer: it never reads or writes. The sockets stay
// Go net.Conns (crypto/tls above them is untouched), and a woken owner
// reads with ordinary blocking reads again. A socket is registered for
// one wake-up at a time (level-triggered, one-shot): bytes already waiting
// when it is added wake it at once, so nothing that arrived between the
// owner's last read and its registration is missed.
//
// Only Linux has it (New returns errors.ErrUnsupported elsewhere); callers
// keep a goroutine-per-socket wait for the rest.
package idlewait

import (
	"errors"
	"syscall"
	"time"
)

// ErrClosed: the Set is closed.
var ErrClosed = errors.New("idlewait: set closed")

// Wait is one socket's registration in a Set, from Add until its ready
// function has been called.
type Wait struct {
	s     *Set
	token uint64
	rc    syscall.RawConn
	ready func()
	timer *time.Timer // the deadline, nil without one (Set.mu guards it)
}

// Wake ends the wait now, calling its ready function, unless it has ended
// already. The owner calls it when it closes the socket itself: a closed
// socket leaves the kernel's set silently and would never wake it.
func (w *Wait) Wake() { w.s.finish(w.token) }
