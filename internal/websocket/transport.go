package websocket

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"parley/internal/c2s"
	"parley/internal/stream"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// transport is one client stream over one WebSocket (c2s.Transport).
// Reads happen on the connection's goroutine (c2s's read loop); writes go
// through nc, the library's net.Conn view of the WebSocket, in which every
// Write is one text message: directly during negotiation, through the
// session's stream.Writer after bind.
type transport struct {
	ws     *websocket.Conn
	nc     net.Conn
	remote net.Addr
	tls    *tls.ConnectionState
	secure bool // see c2s.Transport.Secure
	lim    xml.Limits
	cfg    Config
	rate   *rate.Limiter // nil: no throttling

	mu       sync.Mutex
	deadline time.Time   // read deadline (SetReadDeadline)
	ping     *time.Timer // next keepalive ping; nil when pings are off or stopped
	stopped  bool
}

var _ c2s.Transport = (*transport)(nil)

func newTransport(ws *websocket.Conn, remote net.Addr, st *tls.ConnectionState, secure bool, lim xml.Limits, cfg Config) *transport {
	// The two sizes the library's read limit follows, never unbounded.
	def := xml.DefaultLimits()
	if lim.MaxStanzaBytes <= 0 {
		lim.MaxStanzaBytes = def.MaxStanzaBytes
	}
	if lim.MaxHeaderBytes <= 0 {
		lim.MaxHeaderBytes = def.MaxHeaderBytes
	}
	t := &transport{
		secure: secure,
		ws:     ws,
		nc:     websocket.NetConn(context.Background(), ws, websocket.MessageText),
		remote: remote,
		tls:    st,
		lim:    lim,
		cfg:    cfg,
	}
	// After NetConn, which turns the library's read limit off.
	ws.SetReadLimit(readLimit(lim.MaxStanzaBytes))
	if cfg.RateBytesPerSecond > 0 {
		t.rate = rate.NewLimiter(rate.Limit(cfg.RateBytesPerSecond), max(cfg.RateBurstBytes, 1))
	}
	t.armPing()
	return t
}

// readLimit is the library's limit on one message for a parser limit of
// n bytes. The parser refuses a message over n with the stream error a
// TCP client would get (policy-violation); the library stops reading far
// beyond that, at twice the size, and closes with 1009 (RFC 6455 §7.4.1),
// so memory per connection stays bounded whatever a client sends, a
// message of many fragments or a frame that announces terabytes included.
func readLimit(n int) int64 { return 2*int64(n) + 1024 }

func (t *transport) RemoteAddr() net.Addr      { return t.remote }
func (t *transport) TLS() *tls.ConnectionState { return t.tls }
func (t *transport) Secure() bool              { return t.secure }

func (t *transport) SetReadDeadline(tm time.Time) error {
	t.mu.Lock()
	t.deadline = tm
	t.mu.Unlock()
	return nil
}

// read returns the next message's element. The read deadline becomes the
// read's context (the library closes the WebSocket when it expires, which
// is what a timeout means here anyway); the rate limit is paid after the
// message, so a flood is slowed down, not buffered.
func (t *transport) read() (*xml.Element, error) {
	data, err := t.readMessage()
	if err != nil {
		return nil, err
	}
	return xml.ParseDocument(data, t.lim, stanza.NSClient)
}

// readMessage returns the next text message's bytes.
func (t *transport) readMessage() ([]byte, error) {
	t.mu.Lock()
	dl := t.deadline
	t.mu.Unlock()
	ctx := context.Background()
	if !dl.IsZero() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, dl)
		defer cancel()
	}
	typ, data, err := t.ws.Read(ctx)
	if err != nil {
		return nil, readErr(err, ctx.Err() != nil)
	}
	t.armPing()
	if t.rate != nil {
		_ = t.rate.WaitN(context.Background(), min(len(data), t.rate.Burst()))
	}
	if typ != websocket.MessageText {
		return nil, &xml.Error{Condition: xml.CondBadFormat, Text: "RFC 7395 streams use text messages"}
	}
	return data, nil
}

// ReadHeader reads an <open/> (RFC 7395 §3.3.1) and maps it to a stream
// header; anything else comes back under its own name, which c2s refuses
// with invalid-namespace.
//
// An <open/> is held to max_header_bytes, as a TCP stream's header is:
// the library's limit is lowered for this one message.
func (t *transport) ReadHeader() (xml.StreamHeader, error) {
	t.ws.SetReadLimit(readLimit(t.lim.MaxHeaderBytes))
	data, err := t.readMessage()
	t.ws.SetReadLimit(readLimit(t.lim.MaxStanzaBytes))
	if err != nil {
		return xml.StreamHeader{}, err
	}
	if len(data) > t.lim.MaxHeaderBytes {
		return xml.StreamHeader{}, &xml.Error{Condition: xml.CondPolicyViolation, Text: "the <open/> is larger than the stream header limit"}
	}
	el, err := xml.ParseDocument(data, t.lim, stanza.NSClient)
	if err != nil {
		return xml.StreamHeader{}, err
	}
	h := xml.StreamHeader{Space: el.Space, Local: el.Local, Attrs: el.Attrs}
	if el.Space == NSFraming && el.Local == "open" {
		h.Space, h.Local, h.DefaultNS = stanza.NSStream, "stream", stanza.NSClient
	}
	h.To, h.From, h.ID, h.Version = el.Attr("to"), el.Attr("from"), el.Attr("id"), el.Attr("version")
	for _, a := range el.Attrs {
		if a.Space == xml.NSXML && a.Local == "lang" {
			h.Lang = a.Value
		}
	}
	return h, nil
}

// Next returns the next element; <close/> is the end of the stream.
func (t *transport) Next() (*xml.Element, error) {
	el, err := t.read()
	if err != nil {
		return nil, err
	}
	if el.Space == NSFraming && el.Local == "close" {
		return nil, xml.ErrStreamClosed
	}
	return el, nil
}

// WriteHeader answers with our <open/>.
func (t *transport) WriteHeader(h xml.StreamHeader) error {
	return t.write(openElement(h).AppendTo(nil))
}

func openElement(h xml.StreamHeader) *xml.Element {
	el := xml.New(NSFraming, "open")
	for _, a := range [][2]string{{"from", h.From}, {"to", h.To}, {"id", h.ID}, {"version", h.Version}} {
		if a[1] != "" {
			el.SetAttr(a[0], a[1])
		}
	}
	if h.Lang != "" {
		el.Attrs = append(el.Attrs, xml.Attr{Space: xml.NSXML, Local: "lang", Value: h.Lang})
	}
	return el
}

func (t *transport) WriteElement(el *xml.Element) error { return t.write(encode(nil, el)) }

func (t *transport) write(b []byte) error {
	_ = t.nc.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
	_, err := t.nc.Write(b)
	return err
}

// OpenBeforeError sends an <open/> so that the stream error that follows
// belongs to a stream (RFC 7395 §3.6 and RFC 6120 §4.9.1.2), for the
// failures that get one: bad XML and timeouts.
func (t *transport) OpenBeforeError(err error, from string) {
	var xe *xml.Error
	var ne net.Error
	if errors.As(err, &xe) || errors.As(err, &ne) && ne.Timeout() {
		_ = t.write(openElement(xml.StreamHeader{From: from, ID: stream.NewID(), Version: "1.0"}).AppendTo(nil))
	}
}

func (t *transport) NewWriter(maxQueue int, timeout time.Duration) *stream.Writer {
	return stream.NewMessageWriter(t.nc, maxQueue, timeout, encode)
}

// End sends the stream error (its own message) and <close/> (RFC 7395
// §3.6), then closes the WebSocket.
func (t *transport) End(w *stream.Writer, errEl *xml.Element, drain bool) {
	var parts [][]byte
	if errEl != nil {
		parts = append(parts, encode(nil, errEl))
	}
	parts = append(parts, xml.New(NSFraming, "close").AppendTo(nil))
	t.stopPings()
	if w != nil {
		w.Close(drain, parts...)
		return
	}
	for _, p := range parts {
		if t.write(p) != nil {
			break
		}
	}
	stream.CloseConn(t.nc)
}

// encode writes el as a message of its own: stanzas with
// xmlns='jabber:client', stream-level elements as <stream:features
// xmlns:stream='…'> (the prefixed form clients look for, RFC 7395 §3.3.3
// examples), everything else with its namespace.
func encode(dst []byte, el *xml.Element) []byte {
	switch el.Space {
	case stanza.NSStream:
		p := stream.Prefixed(el)
		p.Attrs = append(p.Attrs, xml.Attr{Local: "xmlns:stream", Value: stanza.NSStream})
		return p.AppendTo(dst)
	case "":
		return el.AppendStandalone(dst, stanza.NSClient)
	default:
		return el.AppendTo(dst)
	}
}

// armPing (re)schedules the keepalive: a connection that was silent for
// PingInterval is pinged, and one that does not answer within another
// interval is closed (the read loop then sees the transport lost). A timer,
// not a goroutine per connection, waits in between.
func (t *transport) armPing() {
	if t.cfg.PingInterval <= 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return
	}
	if t.ping != nil {
		t.ping.Reset(t.cfg.PingInterval)
		return
	}
	t.ping = time.AfterFunc(t.cfg.PingInterval, t.sendPing)
}

func (t *transport) sendPing() {
	ctx, cancel := context.WithTimeout(context.Background(), t.cfg.PingInterval)
	defer cancel()
	if err := t.ws.Ping(ctx); err != nil {
		_ = t.ws.CloseNow()
		return
	}
	t.armPing()
}

func (t *transport) stopPings() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.stopped = true
	if t.ping != nil {
		t.ping.Stop()
	}
}
