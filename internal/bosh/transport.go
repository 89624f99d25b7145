package bosh

import (
	"bytes"
	"crypto/tls"
	"net"
	"os"
	"time"

	"parley/internal/c2s"
	"parley/internal/stream"
	"parley/internal/xmpp/xml"
)

// The session is its stream's c2s.Transport: c2s reads what the client's
// requests carried and writes into the session's output queue, which the
// responses to held requests empty.
var _ c2s.Transport = (*session)(nil)

func (s *session) RemoteAddr() net.Addr      { return s.remote }
func (s *session) TLS() *tls.ConnectionState { return s.tls }
func (s *session) Secure() bool              { return s.secure }

func (s *session) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.readDeadline = t
	s.mu.Unlock()
	return nil
}

// read returns the next input item, waiting for a request to bring one
// until the read deadline. A session that has ended reads as a closed
// connection, which c2s treats as a lost transport.
func (s *session) read() (inItem, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return inItem{}, net.ErrClosed
		}
		if len(s.in) > 0 {
			it := s.in[0]
			s.in[0] = inItem{}
			s.in = s.in[1:]
			if len(s.in) == 0 {
				s.in = nil // let the backing array go
			}
			s.inBytes -= it.size
			s.mu.Unlock()
			return it, nil
		}
		dl, ready := s.readDeadline, s.inReady
		s.mu.Unlock()
		var expired <-chan time.Time
		if !dl.IsZero() {
			d := time.Until(dl)
			if d <= 0 {
				return inItem{}, os.ErrDeadlineExceeded
			}
			t := time.NewTimer(d)
			expired = t.C
			defer t.Stop()
		}
		select {
		case <-ready:
		case <-s.done:
		case <-expired:
			return inItem{}, os.ErrDeadlineExceeded
		}
	}
}

// errUnexpectedRestart is a restart request where c2s expected stanzas:
// over TCP that would be a second stream header inside the stream.
var errUnexpectedRestart = &xml.Error{Condition: xml.CondPolicyViolation, Text: "xmpp:restart when no stream restart was due"}

// ReadHeader returns the stream header a session creation or xmpp:restart
// request stands for (XEP-0206 §3, §5). Anything else comes back under its
// own name, which c2s refuses with invalid-namespace as it would on TCP.
func (s *session) ReadHeader() (xml.StreamHeader, error) {
	it, err := s.read()
	switch {
	case err != nil:
		return xml.StreamHeader{}, err
	case it.header != nil:
		return *it.header, nil
	case it.closing:
		return xml.StreamHeader{}, xml.ErrStreamClosed
	}
	return xml.StreamHeader{Space: it.el.Space, Local: it.el.Local, Attrs: it.el.Attrs}, nil
}

// Next returns the next payload; a terminate request ends the stream after
// its payloads (XEP-0124 §13).
func (s *session) Next() (*xml.Element, error) {
	it, err := s.read()
	switch {
	case err != nil:
		return nil, err
	case it.header != nil:
		return nil, errUnexpectedRestart
	case it.closing:
		return nil, xml.ErrStreamClosed
	}
	return it.el, nil
}

// WriteHeader records our side of the stream: its from, id and version
// are attributes of the session creation response; a restart's header
// has no wire form of its own (its features are the restart's response).
func (s *session) WriteHeader(h xml.StreamHeader) error {
	s.mu.Lock()
	s.hdr = h
	s.mu.Unlock()
	return nil
}

func (s *session) WriteElement(el *xml.Element) error {
	return s.enqueue(encode(nil, el), time.Now().Add(s.h.cfg.WriteTimeout))
}

// OpenBeforeError does nothing: the session creation opened the stream as
// far as the client can see, and a stream error goes into a response of
// its own (remote-stream-error) whenever it comes.
func (s *session) OpenBeforeError(error, string) {}

// NewWriter returns the bound session's writer: one element per Write into
// the output queue, which then holds at most maxQueue elements.
func (s *session) NewWriter(maxQueue int, timeout time.Duration) *stream.Writer {
	s.mu.Lock()
	s.maxItems = maxQueue
	s.mu.Unlock()
	return stream.NewMessageWriter(outConn{s}, maxQueue, timeout, encode)
}

// End records the stream error (nil for none) for the session's last
// response and ends the session: through w once there is one, so the
// output queued before the end goes first (when drain is set); w closes
// the output conn when done, which finishes the session.
func (s *session) End(w *stream.Writer, errEl *xml.Element, drain bool) {
	s.mu.Lock()
	s.ending = true
	if errEl != nil && s.streamErr == nil {
		s.streamErr = encode(nil, errEl)
	}
	s.mu.Unlock()
	if w != nil {
		w.Close(drain)
		return
	}
	s.mu.Lock()
	s.finishLocked("", false)
	s.mu.Unlock()
}

// enqueue adds an encoded element to the output queue. A full queue (by
// count or bytes) makes it wait for a response to empty it, until deadline:
// a client that stops polling is a TCP peer that stopped reading, and c2s's
// writer ends the stream when the write times out.
func (s *session) enqueue(b []byte, deadline time.Time) error {
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return net.ErrClosed
		}
		if len(s.out) == 0 || (s.maxItems <= 0 || len(s.out) < s.maxItems) && s.outBytes+len(b) <= s.h.cfg.MaxQueuedBytes {
			break
		}
		space := s.space
		s.mu.Unlock()
		if err := waitFor(space, s.done, deadline); err != nil {
			return err
		}
		s.mu.Lock()
	}
	now := time.Now()
	if len(s.out) == 0 {
		s.flushAt = now.Add(flushDelay)
	}
	s.out = append(s.out, bytes.Clone(b))
	s.outBytes += len(b)
	s.outStream = s.outStream || isStreamLevel(b)
	if len(s.held) > 0 && !s.held[0].terminate {
		if s.outBytes >= flushBytes {
			s.answer(s.held[0], true, nil)
		}
		s.rearm(now)
	}
	s.mu.Unlock()
	return nil
}

// waitFor waits until ch or done is closed, or deadline passes.
func waitFor(ch, done <-chan struct{}, deadline time.Time) error {
	var expired <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-ch:
		return nil
	case <-done:
		return net.ErrClosed
	case <-expired:
		return os.ErrDeadlineExceeded
	}
}

// outConn is the net.Conn c2s's writer writes to: every Write is one
// element for the output queue. Closing it ends the session: normally
// after End (the writer has written the last output), otherwise because
// the writer failed, which means the client stopped polling.
type outConn struct{ s *session }

func (c outConn) Write(b []byte) (int, error) {
	if string(b) == xml.StreamClose {
		// c2s closes a writer it no longer needs with the TCP stream's
		// closing tag; on BOSH the end of a stream is the session's end.
		return len(b), nil
	}
	c.s.mu.Lock()
	dl := c.s.writeDeadline
	c.s.mu.Unlock()
	if err := c.s.enqueue(b, dl); err != nil {
		return 0, err
	}
	return len(b), nil
}

func (c outConn) Close() error {
	s := c.s
	s.mu.Lock()
	s.finishLocked("", !s.ending)
	s.mu.Unlock()
	return nil
}

func (c outConn) SetWriteDeadline(t time.Time) error {
	c.s.mu.Lock()
	c.s.writeDeadline = t
	c.s.mu.Unlock()
	return nil
}

func (c outConn) Read([]byte) (int, error)        { return 0, net.ErrClosed }
func (c outConn) LocalAddr() net.Addr             { return boshAddr{} }
func (c outConn) RemoteAddr() net.Addr            { return c.s.remote }
func (c outConn) SetDeadline(t time.Time) error   { return c.SetWriteDeadline(t) }
func (c outConn) SetReadDeadline(time.Time) error { return nil }
func (boshAddr) Network() string                  { return "bosh" }
func (boshAddr) String() string                   { return "bosh" }

// boshAddr is the local address of an outConn: there is no socket.
type boshAddr struct{}
