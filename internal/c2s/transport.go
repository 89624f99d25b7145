package c2s

import (
	"bytes"
	"crypto/tls"
	"net"
	"sync"
	"syscall"
	"time"

	"parley/internal/idlewait"
	"parley/internal/stream"
	"parley/internal/tlsfrag"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Transport carries one client stream between the wire and the
// negotiation and session code of this package, which never touches bytes
// itself. TCP (STARTTLS and direct TLS) is tcpTransport, below; WebSocket
// (RFC 7395) lives in its own package and hands each accepted connection to
// Server.ServeTransport. Everything a transport reads is a whole element
// parsed under the stream limits (restricted XML included), and everything
// it writes is serialised from Parley's own trees, whatever the framing.
type Transport interface {
	// RemoteAddr is the client's address (connection limits, brute-force
	// limiter, logs).
	RemoteAddr() net.Addr
	// TLS is this server's TLS state protecting the stream, nil when there
	// is none (channel binding and client certificates need it).
	TLS() *tls.ConnectionState
	// Secure reports whether the stream is encrypted: by TLS() or by a
	// trusted TLS-terminating proxy in front of the server (then TLS() is
	// nil: there is no channel of ours to bind to). PLAIN and the other
	// "only over TLS" decisions go by Secure.
	Secure() bool
	// ReadHeader reads the client's opening of a new stream (the first,
	// and each restart after STARTTLS or SASL), mapped to a stream header
	// whatever the framing.
	ReadHeader() (xml.StreamHeader, error)
	// Next reads the next top-level element of the stream.
	Next() (*xml.Element, error)
	// SetReadDeadline bounds the reads that follow (zero: none).
	SetReadDeadline(t time.Time) error
	// WriteHeader opens our side of the stream. A transport may keep the
	// header and send it with its next write (the features, in one system
	// call), and at the latest before its next read.
	WriteHeader(h xml.StreamHeader) error
	// WriteElement writes one element directly (negotiation, before a
	// session writer exists).
	WriteElement(el *xml.Element) error
	// OpenBeforeError opens our side of the stream when ReadHeader failed
	// with err and a stream error will follow (RFC 6120 §4.9.1.2).
	OpenBeforeError(err error, from string)
	// NewWriter returns the writer of a bound session on this transport.
	NewWriter(max int, timeout time.Duration) *stream.Writer
	// End sends the stream error errEl (nil for none) and the end of the
	// stream, through w once there is one, and closes the transport.
	End(w *stream.Writer, errEl *xml.Element, drain bool)
}

// tlsUpgrader is implemented by transports that can start TLS inside the
// stream (RFC 6120 §5); others offer no <starttls/>.
type tlsUpgrader interface {
	// StartTLS runs the server side of a TLS handshake that must finish by
	// deadline. discarded is how many bytes the client had sent after
	// <starttls/>: they are dropped, never interpreted (the STARTTLS
	// command-injection attack).
	StartTLS(cfg *tls.Config, deadline time.Time) (discarded int, err error)
}

// tcpTransport is a client stream on a TCP connection: raw is the
// rate-limited socket, nc the same or its TLS layer.
type tcpTransport struct {
	raw, nc net.Conn
	dec     *xml.Decoder
	ir      idleReader // what dec reads from: nc, and parking (park.go)
	rc      syscall.RawConn
	// cw is the connection under TLS, which hears every close (park.go);
	// idle the set a parked reader waits in, nil: a goroutine waits.
	cw           *closeWatch
	idle         *idlewait.Set
	lim          xml.Limits
	writeTimeout time.Duration
	tls          *tls.ConnectionState
	// header is our stream header, not yet written: it goes out with the
	// next write (the features, as a rule: one system call, one TLS
	// record, instead of two per stream restart), or before the next read.
	// hmu guards it: End may run on another goroutine (Shutdown).
	hmu    sync.Mutex
	header []byte
}

func (t *tcpTransport) RemoteAddr() net.Addr               { return t.raw.RemoteAddr() }
func (t *tcpTransport) TLS() *tls.ConnectionState          { return t.tls }
func (t *tcpTransport) Secure() bool                       { return t.tls != nil }
func (t *tcpTransport) SetReadDeadline(tm time.Time) error { return t.ir.setDeadline(tm) }
func (t *tcpTransport) Next() (*xml.Element, error) {
	if err := t.flushHeader(); err != nil {
		return nil, err
	}
	return t.dec.Next()
}

// WriteHeader keeps our header until the next write or read (header).
func (t *tcpTransport) WriteHeader(h xml.StreamHeader) error {
	b := xml.StreamHeaderBytes(h)
	t.hmu.Lock()
	t.header = b
	t.hmu.Unlock()
	return nil
}

// takeHeader returns the kept header, if any, and forgets it: whoever
// takes it writes it.
func (t *tcpTransport) takeHeader() []byte {
	t.hmu.Lock()
	defer t.hmu.Unlock()
	h := t.header
	t.header = nil
	return h
}

// flushHeader writes a header WriteHeader kept, on its own.
func (t *tcpTransport) flushHeader() error {
	if h := t.takeHeader(); len(h) > 0 {
		return t.writeRaw(h)
	}
	return nil
}

// ReadHeader starts a new decoder: after STARTTLS and SASL the stream
// restarts, and nothing the old decoder had buffered carries over.
func (t *tcpTransport) ReadHeader() (xml.StreamHeader, error) {
	if err := t.flushHeader(); err != nil {
		return xml.StreamHeader{}, err
	}
	t.dec = xml.NewDecoder(&t.ir, t.lim)
	t.ir.nc, t.ir.dec = t.nc, t.dec
	t.dec.SetContentNamespace(stanza.NSClient)
	return t.dec.ReadHeader()
}

func (t *tcpTransport) WriteElement(el *xml.Element) error {
	var buf bytes.Buffer
	_, _ = stream.Prefixed(el).WriteToNS(&buf, stanza.NSClient)
	return t.write(buf.Bytes())
}

// write writes b, after a kept header if there is one.
func (t *tcpTransport) write(b []byte) error {
	if h := t.takeHeader(); len(h) > 0 {
		b = append(h, b...)
	}
	return t.writeRaw(b)
}

func (t *tcpTransport) writeRaw(b []byte) error {
	_ = t.nc.SetWriteDeadline(time.Now().Add(t.writeTimeout))
	_, err := t.nc.Write(b)
	return err
}

func (t *tcpTransport) OpenBeforeError(err error, from string) {
	stream.OpenBeforeError(t.nc, err, stanza.NSClient, from)
}

func (t *tcpTransport) NewWriter(max int, timeout time.Duration) *stream.Writer {
	_ = t.flushHeader()
	return stream.NewWriter(t.nc, max, timeout, stanza.NSClient)
}

func (t *tcpTransport) End(w *stream.Writer, errEl *xml.Element, drain bool) {
	_ = t.flushHeader() // a stream error follows our header (RFC 6120 §4.9.1.2)
	stream.EndWith(w, t.nc, errEl, drain)
}

func (t *tcpTransport) StartTLS(cfg *tls.Config, deadline time.Time) (int, error) {
	if err := t.flushHeader(); err != nil {
		return 0, err
	}
	discarded := t.dec.Buffered()
	tc := tls.Server(tlsfrag.Server(t.raw), cfg)
	_ = tc.SetDeadline(deadline)
	if err := tc.Handshake(); err != nil {
		_ = t.raw.Close()
		return discarded, err
	}
	_ = tc.SetWriteDeadline(time.Time{})
	st := tc.ConnectionState()
	t.nc, t.ir.nc, t.tls = tc, tc, &st
	return discarded, nil
}
