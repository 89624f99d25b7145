package c2s

import (
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"parley/internal/idlewait"
	"parley/internal/xmpp/xml"
)

// Parking idle readers (docs/ARCHITECTURE.md, "The hot path and memory per
// session"). A bound session's reader goroutine that has waited
// limits.park_idle_after without a byte, between stanzas, ends; the socket
// waits in the server's idle set (internal/idlewait), and when it becomes
// readable a new goroutine runs the read loop again. An idle session then
// holds no goroutine at all, instead of the 4-8 KiB stack its read loop
// grew (crypto/tls's read path is deep); where there is no idle set, a
// goroutine of a few small frames waits for it. Parking costs an active
// session nothing: the wait is a read deadline the reader sets once per
// park_idle_after, not per stanza.

// errParked ends a read when the session's reader parks: a timeout, which
// the decoder treats as not final while it waits between stanzas.
var errParked error = parkedError{}

type parkedError struct{}

func (parkedError) Error() string   { return "c2s: idle reader parked" }
func (parkedError) Timeout() bool   { return true }
func (parkedError) Temporary() bool { return true }

// parker is a transport whose bound session's reader can park. tcpTransport
// is one when its socket gives a raw connection to wait on; the message
// transports (WebSocket, BOSH) are not.
type parker interface {
	// startParking arms parking after the given silence; false when this
	// connection cannot park.
	startParking(after time.Duration) bool
	// park prepares the connection for its reader to end: the socket's
	// read deadline goes back to the caller's own (SetReadDeadline).
	park()
	// awaitReadable calls then, on a goroutine of its own, once the socket
	// has bytes or an error, is closed, or the caller's read deadline
	// passes; whichever, the read loop's next read tells which. Until
	// then the session holds no goroutine where the idle set is available
	// (idlewait, Linux), and one in a few small frames elsewhere.
	awaitReadable(then func())
	// resume re-arms parking for the read loop that follows.
	resume()
}

// idleReader sits between a TCP session's decoder and its connection (the
// TLS layer or the raw socket). Until parking is armed it only passes reads
// through; after, it ends a read with errParked when nothing at all was
// read for a whole park interval and the decoder is between stanzas. Any
// other expiry of the park deadline (bytes were read, or a stanza is half
// read) re-arms it and reads on, so a slow stanza is never cut.
type idleReader struct {
	nc    net.Conn
	dec   *xml.Decoder
	after time.Duration // 0: parking off
	// own is the read deadline the stream layer asked for (pre-auth time,
	// idle timeout), zero for none; parkBy the park deadline. The socket's
	// deadline is the earlier of the two.
	own, parkBy time.Time
	reads       int // reads that returned bytes since parkBy was armed
}

func (r *idleReader) Read(p []byte) (int, error) {
	for {
		n, err := r.nc.Read(p)
		if n > 0 {
			r.reads++
		}
		if err == nil || r.after == 0 || !xml.IsTimeout(err) {
			return n, err
		}
		now := time.Now()
		if !r.own.IsZero() && !now.Before(r.own) {
			return n, err // the stream layer's own deadline
		}
		if n == 0 && r.reads == 0 && r.dec != nil && r.dec.Waiting() {
			return 0, errParked
		}
		if err := r.arm(now); err != nil {
			return n, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// setDeadline is the stream layer's SetReadDeadline.
func (r *idleReader) setDeadline(t time.Time) error {
	r.own = t
	return r.nc.SetReadDeadline(r.deadline())
}

// arm starts a park interval at now.
func (r *idleReader) arm(now time.Time) error {
	r.parkBy, r.reads = now.Add(r.after), 0
	return r.nc.SetReadDeadline(r.deadline())
}

func (r *idleReader) deadline() time.Time {
	if r.after == 0 || (!r.own.IsZero() && r.own.Before(r.parkBy)) {
		return r.own
	}
	return r.parkBy
}

func (t *tcpTransport) startParking(after time.Duration) bool {
	if after <= 0 || !parkSupported {
		return false
	}
	sc, ok := t.raw.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	t.rc = rc
	t.ir.after = after
	_ = t.ir.arm(time.Now())
	return true
}

func (t *tcpTransport) park() { _ = t.nc.SetReadDeadline(t.ir.own) }

func (t *tcpTransport) resume() { _ = t.ir.arm(time.Now()) }

func (t *tcpTransport) awaitReadable(then func()) {
	if t.idle != nil && t.cw != nil {
		t.cw.park(t.idle, t.rc, t.ir.own, then)
		return
	}
	go func() {
		awaitReadable(t.rc)
		then()
	}()
}

// closeWatch is a client TCP connection under its TLS layer: every Close,
// from whichever layer or goroutine (the session's writer after a stream
// error, a conflict, a shutdown), passes here. A parked reader registered
// in the idle set must hear of it, because the kernel drops a closed
// socket from the set without an event.
type closeWatch struct {
	net.Conn
	mu     sync.Mutex
	closed bool
	parked *idlewait.Wait // the last registration; Wake is a no-op once it ended
}

func (c *closeWatch) Close() error {
	err := c.Conn.Close()
	c.mu.Lock()
	c.closed = true
	w := c.parked
	c.parked = nil
	c.mu.Unlock()
	if w != nil {
		w.Wake()
	}
	return err
}

var _ syscall.Conn = (*closeWatch)(nil) // startParking finds the socket through it

// SyscallConn is the socket's, for the waits.
func (c *closeWatch) SyscallConn() (syscall.RawConn, error) {
	sc, ok := c.Conn.(syscall.Conn)
	if !ok {
		return nil, errors.ErrUnsupported
	}
	return sc.SyscallConn()
}

// park registers the socket in set, to run then when it wakes (on a
// goroutine of its own); at once when the connection is already closed
// or cannot be registered.
func (c *closeWatch) park(set *idlewait.Set, rc syscall.RawConn, deadline time.Time, then func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		w, err := set.Add(rc, deadline, func() { go then() })
		if err == nil {
			c.parked = w
			return
		}
	}
	go then()
}
