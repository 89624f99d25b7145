package stream

import (
	"bufio"
	"net"
	"sync"
	"time"

	"parley/internal/xmpp/xml"
)

// Writer owns the write side of an established stream: one goroutine drains
// a bounded queue into the connection. Send never blocks: when the queue is
// full the peer is not reading, and the stream is closed instead of letting
// memory grow (OnOverflow reports it).
type Writer struct {
	conn      net.Conn
	queue     chan *xml.Element
	closeReq  chan []byte
	done      chan struct{}
	timeout   time.Duration
	contentNS string

	closeOnce  sync.Once
	OnOverflow func()
	// OnWrite is called for every stanza written (metrics).
	OnWrite func(*xml.Element)
}

// NewWriter starts the writer goroutine for conn with a queue of size
// stanzas; each flush must finish within timeout.
func NewWriter(conn net.Conn, size int, timeout time.Duration, contentNS string) *Writer {
	w := &Writer{
		conn:      conn,
		queue:     make(chan *xml.Element, size),
		closeReq:  make(chan []byte, 1),
		done:      make(chan struct{}),
		timeout:   timeout,
		contentNS: contentNS,
	}
	go w.run()
	return w
}

// Send queues el; it reports false when the queue was full (the stream is
// then being closed).
func (w *Writer) Send(el *xml.Element) bool {
	select {
	case w.queue <- el:
		return true
	case <-w.done:
		return false
	default:
		if w.OnOverflow != nil {
			w.OnOverflow()
		}
		return false
	}
}

// Close writes final (a stream error and/or the closing tag), flushes what
// is queued when drain is true, and closes the connection. Only the first
// call has an effect.
func (w *Writer) Close(final []byte, drain bool) {
	w.closeOnce.Do(func() {
		if !drain {
			// Drop what is queued: the peer is not reading it anyway.
			for {
				select {
				case <-w.queue:
					continue
				default:
				}
				break
			}
		}
		w.closeReq <- final
	})
}

// Done is closed when the writer has closed the connection.
func (w *Writer) Done() <-chan struct{} { return w.done }

func (w *Writer) run() {
	defer close(w.done)
	bw := bufio.NewWriterSize(w.conn, 16*1024)
	write := func(el *xml.Element) error {
		if w.OnWrite != nil {
			w.OnWrite(el)
		}
		_, err := el.WriteToNS(bw, w.contentNS)
		return err
	}
	flush := func() error {
		_ = w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		return bw.Flush()
	}
	var failed bool
	for {
		select {
		case el := <-w.queue:
			if failed {
				continue
			}
			if err := write(el); err != nil {
				failed = true
				_ = w.conn.Close()
				continue
			}
			if len(w.queue) == 0 && flush() != nil {
				failed = true
				_ = w.conn.Close()
			}
		case final := <-w.closeReq:
			if !failed {
				// Drain what is still queued (for a clean close; an overflow
				// close emptied the queue first).
			drain:
				for {
					select {
					case el := <-w.queue:
						if write(el) != nil {
							break drain
						}
					default:
						break drain
					}
				}
				_, _ = bw.Write(final)
				_ = flush()
			}
			CloseConn(w.conn)
			return
		}
	}
}

// CloseConn closes a connection, sending TLS close_notify when it is TLS,
// without waiting long for a peer that stopped reading.
func CloseConn(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.Close()
}
