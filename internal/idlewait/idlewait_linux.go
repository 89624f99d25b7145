//go:build linux

package idlewait

import (
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
)

// Set is a kernel readiness set (epoll) of sockets whose owners wait for
// them to become readable. One goroutine waits on the whole set through
// the runtime poller.
//
// Lock order: an owner's own lock may be held around Add (c2s holds its
// transport's); Set.mu is taken inside it and never held while a ready
// function runs, so ready functions may take their owner's lock.
type Set struct {
	ep   *os.File        // the epoll instance; its closing ends the loop
	eprc syscall.RawConn // ep's raw conn: every use of the epoll fd holds it open
	done chan struct{}   // closed when the loop has ended and every wait with it

	mu     sync.Mutex
	waits  map[uint64]*Wait
	next   uint64 // tokens are never reused: a stale kernel event finds nothing
	closed bool
}

// New creates a Set and starts its goroutine.
func New() (*Set, error) {
	ep, eprc, err := newEpoll()
	if err != nil {
		return nil, err
	}
	return start(ep, eprc), nil
}

// newEpoll creates an epoll instance the runtime poller watches.
func newEpoll() (*os.File, syscall.RawConn, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("idlewait: epoll_create1: %w", err)
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		_ = syscall.Close(fd)
		return nil, nil, fmt.Errorf("idlewait: %w", err)
	}
	ep := os.NewFile(uintptr(fd), "idlewait")
	// A file the runtime poller cannot watch takes no deadline; then the
	// loop could only block a thread in epoll_wait, which this package
	// does not do.
	if err := ep.SetReadDeadline(time.Time{}); err != nil {
		_ = ep.Close()
		return nil, nil, fmt.Errorf("idlewait: the runtime poller cannot watch an epoll set: %w", err)
	}
	eprc, err := ep.SyscallConn()
	if err != nil {
		_ = ep.Close()
		return nil, nil, fmt.Errorf("idlewait: %w", err)
	}
	return ep, eprc, nil
}

// start makes the Set of the epoll instance ep and starts its goroutine.
func start(ep *os.File, eprc syscall.RawConn) *Set {
	s := &Set{ep: ep, eprc: eprc, done: make(chan struct{}), waits: make(map[uint64]*Wait)}
	go s.loop()
	return s
}

// Add registers rc's socket; ready is called exactly once, on a goroutine
// of the Set's (it must not block: start a goroutine for real work), when
// the socket is readable, has reached end of file or failed, when deadline
// passes (zero: no deadline), when Wake is called, or when the Set closes.
// An error (the socket or the Set is closed) means no registration and no
// call.
func (s *Set) Add(rc syscall.RawConn, deadline time.Time, ready func()) (*Wait, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	s.next++
	w := &Wait{s: s, token: s.next, rc: rc, ready: ready}
	s.waits[w.token] = w
	s.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT}
	ev.Fd, ev.Pad = int32(uint32(w.token)), int32(uint32(w.token>>32))
	// Every wait that ended left the set (finish), unless its socket or
	// the set was closed, so an open socket is never registered twice.
	err := s.ctl(rc, syscall.EPOLL_CTL_ADD, &ev)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waits[w.token] != w {
		// Finished meanwhile, which before the registration only Close
		// does (the registration then failed): ready has run, and runs
		// once, so this is not an error for the caller to act on.
		return w, nil
	}
	if err != nil {
		delete(s.waits, w.token)
		return nil, err
	}
	// The deadline starts after the registration, so a wait is never
	// finished before the kernel knows of it.
	if !deadline.IsZero() {
		token := w.token
		w.timer = time.AfterFunc(time.Until(deadline), func() { s.finish(token) })
	}
	return w, nil
}

// ctl runs epoll_ctl for rc's socket with both descriptors held open, so
// neither number can be closed and reused underneath it.
func (s *Set) ctl(rc syscall.RawConn, op int, ev *syscall.EpollEvent) error {
	var opErr error
	err := s.eprc.Control(func(epfd uintptr) {
		if err := rc.Control(func(fd uintptr) {
			opErr = syscall.EpollCtl(int(epfd), op, int(fd), ev)
		}); err != nil {
			opErr = err
		}
	})
	if err != nil {
		return ErrClosed
	}
	return opErr
}

// finish ends the wait of token, if it has not ended: it leaves the
// kernel's set (when its socket is still open) and its ready runs.
func (s *Set) finish(token uint64) {
	s.mu.Lock()
	w := s.waits[token]
	delete(s.waits, token)
	var timer *time.Timer
	if w != nil {
		timer = w.timer
	}
	s.mu.Unlock()
	if w == nil {
		return
	}
	if timer != nil {
		timer.Stop()
	}
	// A closed socket has left the set with its last descriptor; ctl then
	// fails, which is fine.
	_ = s.ctl(w.rc, syscall.EPOLL_CTL_DEL, &syscall.EpollEvent{})
	w.ready()
}

// loop waits on the epoll set through the runtime poller and finishes the
// waits whose sockets the kernel reports, until Close. If it ever ends
// otherwise (epoll_wait failing, which it does not on an open set), the
// Set closes itself: every wait wakes, and later Adds fail, so their
// owners wait some other way instead of never waking.
func (s *Set) loop() {
	defer s.shut()
	events := make([]syscall.EpollEvent, 128)
	for {
		var n int
		var waitErr error
		err := s.eprc.Read(func(epfd uintptr) bool {
			n, waitErr = syscall.EpollWait(int(epfd), events, 0)
			if waitErr == syscall.EINTR {
				n, waitErr = 0, nil
			}
			// Nothing ready: back to the poller, which wakes this
			// goroutine when the set has events.
			return n > 0 || waitErr != nil
		})
		if err != nil || waitErr != nil {
			return
		}
		for _, ev := range events[:n] {
			s.finish(uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32)
		}
	}
}

// shut marks the Set closed and finishes every wait left; the loop runs
// it as it ends.
func (s *Set) shut() {
	s.mu.Lock()
	s.closed = true
	left := make([]uint64, 0, len(s.waits))
	for token := range s.waits {
		left = append(left, token)
	}
	s.mu.Unlock()
	for _, token := range left {
		s.finish(token)
	}
	close(s.done)
}

// Len is the number of sockets waiting (tests, metrics).
func (s *Set) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waits)
}

// Close stops the Set: its goroutine ends, and every wait still registered
// ends with its ready function called.
func (s *Set) Close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	_ = s.ep.Close() // ends the loop, which finishes the waits left
	<-s.done
}
