package stream

import (
	"net"
	"sync"
	"time"

	"parley/internal/xmpp/xml"
)

// Writer owns the write side of an established stream: a bounded queue
// drained into the connection by a goroutine that works for it only while
// there is something to write (a new one per burst, or one from Drains).
// Send never blocks: when the queue is full the peer is not reading, and
// the stream is closed instead of letting memory grow (OnOverflow reports
// it).
//
// Memory matters here because most sessions are idle most of the time: an
// idle Writer has no goroutine, no serialisation buffer (drains borrow one
// from a pool) and at most a small empty queue. Everything queued by the
// time a drain takes the queue goes out in one Write on a byte stream, so
// a burst of stanzas costs one syscall.
type Writer struct {
	conn    net.Conn
	max     int
	timeout time.Duration
	// encode appends an element's wire form; messages: every element (and
	// every part of the final bytes) is written with a Write of its own,
	// for message-oriented transports (RFC 7395: one stanza per WebSocket
	// message). Otherwise a batch goes out in one Write.
	encode   func(dst []byte, el *xml.Element) []byte
	messages bool
	done     chan struct{}

	mu      sync.Mutex
	queue   []*xml.Element
	spare   []*xml.Element // the last drained batch, for reuse
	running bool           // a drain is running (on a goroutine of Drains or its own)
	closing bool
	final   [][]byte
	drain   bool
	// released: Release stopped the writer; the connection is not its
	// to write to or close any more.
	released bool

	// failed is set by the drain goroutine (one at a time, ordered by mu)
	// when a write failed; nothing more is written.
	failed bool

	// OnOverflow is called (once per dropped stanza) when the queue is full.
	OnOverflow func()
	// OnWrite is called for every stanza written (metrics).
	OnWrite func(*xml.Element)
	// Drains runs the drains (nil: a new goroutine for each); set before
	// the first Send.
	Drains *DrainPool
}

// Queue slices and write buffers larger than these are not kept once
// drained, so a burst does not pin memory on an idle session.
const (
	maxKeptQueue = 8
	maxPooledBuf = 64 << 10
)

// writeBufs lends serialisation buffers to drains. A sync.Pool is a cache,
// not shared state: a buffer belongs to one drain between Get and Put.
var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// NewWriter returns a writer for conn, a byte stream, with a queue of at
// most max stanzas; each write must finish within timeout. Stanzas are
// written in contentNS (their namespace is the stream's).
func NewWriter(conn net.Conn, max int, timeout time.Duration, contentNS string) *Writer {
	return newWriter(conn, max, timeout, func(dst []byte, el *xml.Element) []byte {
		return el.AppendToNS(dst, contentNS)
	}, false)
}

// NewMessageWriter is NewWriter for a message-oriented conn, where every
// Write is one message: each element is encoded by encode and written on
// its own.
func NewMessageWriter(conn net.Conn, max int, timeout time.Duration, encode func(dst []byte, el *xml.Element) []byte) *Writer {
	return newWriter(conn, max, timeout, encode, true)
}

func newWriter(conn net.Conn, max int, timeout time.Duration, encode func([]byte, *xml.Element) []byte, messages bool) *Writer {
	return &Writer{
		conn:     conn,
		max:      max,
		timeout:  timeout,
		encode:   encode,
		messages: messages,
		done:     make(chan struct{}),
	}
}

// start reports whether the caller must start a drain (Drains.start);
// w.mu is held.
func (w *Writer) start() bool {
	if w.running {
		return false
	}
	w.running = true
	return true
}

// Send queues el; it reports false when the stream is closing or the queue
// was full (the stream is then being closed by OnOverflow's owner).
func (w *Writer) Send(el *xml.Element) bool {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return false
	}
	if len(w.queue) >= w.max {
		w.mu.Unlock()
		if w.OnOverflow != nil {
			w.OnOverflow()
		}
		return false
	}
	w.queue = append(w.queue, el)
	start := w.start()
	w.mu.Unlock()
	if start {
		w.Drains.start(w)
	}
	return true
}

// Close writes final (a stream error and/or the closing tag; on a message
// writer each part is one message) after what is queued when drain is true
// (or instead of it when false: the peer is not reading anyway), and closes
// the connection. Only the first call counts.
func (w *Writer) Close(drain bool, final ...[]byte) {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return
	}
	w.closing, w.final, w.drain = true, final, drain
	if !drain {
		w.queue = nil
	}
	start := w.start()
	w.mu.Unlock()
	if start {
		w.Drains.start(w)
	}
}

// Release stops the writer without writing anything more or closing the
// connection, which goes back to its owner: a session whose resource
// binding failed after its writer was made. Stanzas still queued are
// dropped. Release after Close (or a second Release) does nothing.
func (w *Writer) Release() {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return
	}
	w.closing, w.released, w.queue = true, true, nil
	start := w.start()
	w.mu.Unlock()
	if start {
		w.Drains.start(w)
	}
}

// Done is closed when the writer has closed the connection (or, after
// Release, has stopped).
func (w *Writer) Done() <-chan struct{} { return w.done }

// run drains the queue until it is empty (the goroutine is then done with
// this writer) or the writer is closing (it then writes the end, closes
// the connection and closes done).
func (w *Writer) run() {
	var bp *[]byte
	defer func() {
		if bp != nil && cap(*bp) <= maxPooledBuf {
			writeBufs.Put(bp)
		}
	}()
	var prev []*xml.Element // the batch just written, returned as spare
	for {
		w.mu.Lock()
		if prev != nil && cap(prev) <= maxKeptQueue {
			w.spare = prev[:0]
		}
		batch := w.queue
		w.queue, w.spare = w.spare, nil
		closing, final, released := w.closing, w.final, w.released
		if len(batch) == 0 && !closing {
			// Idle: this drain ends; the next Send starts another.
			w.running = false
			if cap(batch) <= maxKeptQueue {
				w.spare = batch
			}
			w.mu.Unlock()
			return
		}
		w.mu.Unlock()
		if released {
			close(w.done)
			return
		}
		if !w.failed && len(batch) > 0 {
			if bp == nil {
				bp = writeBufs.Get().(*[]byte)
			}
			var err error
			*bp, err = w.writeElements(*bp, batch)
			if err != nil {
				w.failed = true
				_ = w.conn.Close()
			}
		}
		clear(batch) // drop references so delivered stanzas can be collected
		prev = batch
		if closing {
			w.mu.Lock()
			rest := w.queue
			w.queue, w.spare = nil, nil
			w.mu.Unlock()
			if !w.failed {
				if bp == nil {
					bp = writeBufs.Get().(*[]byte)
				}
				w.finish(*bp, rest, final)
			}
			CloseConn(w.conn)
			close(w.done)
			return
		}
	}
}

// writeElements writes els: in one Write on a byte stream, one Write each
// on a message writer. It returns buf for reuse.
func (w *Writer) writeElements(buf []byte, els []*xml.Element) ([]byte, error) {
	buf = buf[:0]
	for _, el := range els {
		if w.OnWrite != nil {
			w.OnWrite(el)
		}
		buf = w.encode(buf, el)
		if w.messages {
			if err := w.write(buf); err != nil {
				return buf, err
			}
			buf = buf[:0]
		}
	}
	if w.messages || len(buf) == 0 {
		return buf, nil
	}
	return buf, w.write(buf)
}

// finish writes what was still queued at Close and the final parts.
func (w *Writer) finish(buf []byte, rest []*xml.Element, final [][]byte) {
	if w.messages {
		if _, err := w.writeElements(buf, rest); err != nil {
			return
		}
		for _, f := range final {
			if w.write(f) != nil {
				return
			}
		}
		return
	}
	buf = buf[:0]
	for _, el := range rest {
		buf = w.encode(buf, el)
	}
	for _, f := range final {
		buf = append(buf, f...)
	}
	_ = w.write(buf)
}

func (w *Writer) write(b []byte) error {
	_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
	_, err := w.conn.Write(b)
	return err
}

// CloseConn closes a connection, sending TLS close_notify when it is TLS,
// without waiting long for a peer that stopped reading.
func CloseConn(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.Close()
}
