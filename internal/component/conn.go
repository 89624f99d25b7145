package component

import (
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"parley/internal/stream"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// conn is one component connection. Its goroutine negotiates (header and
// handshake, writing directly) and then reads stanzas; once authenticated
// every write goes through the stream.Writer, including the ones the router
// makes through Deliver.
type conn struct {
	srv    *Server
	nc     net.Conn
	dec    *xml.Decoder
	id     string
	domain string // set once the handshake succeeded
	ctx    context.Context

	mu        sync.Mutex // guards w against closeWith racing the handshake
	w         *stream.Writer
	closeOnce sync.Once
}

// streamErr ends the stream with a condition.
type streamErr struct {
	cond stanza.StreamCondition
	text string
}

func (e *streamErr) Error() string { return string(e.cond) + ": " + e.text }

func (c *conn) logf(msg string, args ...any) {
	c.srv.log.Debug(msg, append([]any{"remote", c.nc.RemoteAddr().String(), "component", c.domain}, args...)...)
}

func (c *conn) serve() {
	c.ctx = context.Background()
	lim := c.srv.cfg.Limits
	// The header and handshake must arrive within the pre-authentication
	// time, like a client's negotiation.
	_ = c.nc.SetReadDeadline(time.Now().Add(lim.PreAuthTimeout.Duration))
	err := c.negotiate()
	if err == nil {
		err = c.readStanzas()
	}
	// Detach before the closing tag goes out: once the component can see
	// its stream end, stanzas for its domain must get the placeholder's
	// answer (service-unavailable), not be queued to a closed stream.
	if c.domain != "" {
		c.srv.detach(c.domain, c)
	}
	c.fail(err)
	if c.domain != "" {
		c.srv.log.Info("component: disconnected", "domain", c.domain)
	}
	c.mu.Lock()
	w := c.w
	c.mu.Unlock()
	if w != nil {
		<-w.Done()
	}
}

// fail turns the error that ended the stream into the right stream error.
func (c *conn) fail(err error) {
	var se *streamErr
	var xe *xml.Error
	var ne net.Error
	switch {
	case err == nil:
		c.closeWith("", "")
	case errors.As(err, &se):
		c.closeWith(se.cond, se.text)
	case errors.As(err, &xe):
		c.closeWith(stanza.StreamCondition(xe.Condition), xe.Text)
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.Is(err, xml.ErrStreamClosed):
		c.closeWith("", "")
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, os.ErrDeadlineExceeded):
		c.closeWith(stanza.StreamConnectionTimeout, "")
	default:
		c.logf("component: connection error", "err", err)
		c.closeWith("", "")
	}
}

// closeWith sends an optional stream error and the closing tag and closes
// the connection: directly before the handshake, through the writer after.
func (c *conn) closeWith(cond stanza.StreamCondition, text string) {
	c.closeOnce.Do(func() {
		if cond != "" {
			c.srv.metrics.StreamErrors.WithLabelValues(string(cond)).Inc()
			c.logf("component: stream error", "condition", cond, "text", text)
		}
		c.mu.Lock()
		w := c.w
		c.mu.Unlock()
		stream.End(w, c.nc, cond, text, stream.DrainsOnEnd(cond))
	})
}

func (c *conn) write(b []byte) error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.Limits.WriteTimeout.Duration))
	_, err := c.nc.Write(b)
	return err
}

// negotiate reads the stream header and the handshake (XEP-0114 §3).
func (c *conn) negotiate() error {
	lim := c.srv.cfg.Limits
	c.dec = xml.NewDecoder(c.nc, xml.Limits{
		MaxStanzaBytes: lim.MaxStanzaBytes,
		MaxDepth:       lim.MaxDepth,
		MaxAttrs:       lim.MaxAttrs,
		MaxHeaderBytes: 8 * 1024,
	})
	h, err := c.dec.ReadHeader()
	if err != nil {
		stream.OpenBeforeError(c.nc, err, stanza.NSComponent, "")
		return err
	}
	c.id = stream.NewID()
	to := strings.ToLower(strings.TrimSuffix(h.To, "."))
	secret, known := c.srv.secrets[to]
	reply := xml.StreamHeader{Space: stanza.NSStream, Local: "stream", DefaultNS: stanza.NSComponent, ID: c.id}
	if known {
		reply.From = to
	}
	// Our header goes first even when the next thing is a stream error
	// (XEP-0114 §3 and RFC 6120 §4.9.1.2).
	if err := c.write(xml.StreamHeaderBytes(reply)); err != nil {
		return err
	}
	switch {
	case h.Space != stanza.NSStream || h.Local != "stream":
		return &streamErr{stanza.StreamInvalidNamespace, ""}
	case h.DefaultNS != stanza.NSComponent:
		return &streamErr{stanza.StreamInvalidNamespace, "this port serves " + stanza.NSComponent}
	case !known:
		return &streamErr{stanza.StreamHostUnknown, "no component is configured for " + h.To}
	}
	c.dec.SetContentNamespace(stanza.NSComponent)
	el, err := c.dec.Next()
	if err != nil {
		return err
	}
	if el.Space != "" || el.Local != "handshake" {
		return &streamErr{stanza.StreamNotAuthorized, "send <handshake/> first"}
	}
	if !handshakeOK(c.id, secret, el.Text()) {
		c.srv.log.Warn("component: handshake failed", "domain", to, "remote", c.nc.RemoteAddr().String())
		return &streamErr{stanza.StreamNotAuthorized, ""}
	}
	c.domain = to
	w := stream.NewWriter(c.nc, lim.OutputQueue, lim.WriteTimeout.Duration, stanza.NSComponent)
	w.Drains = c.srv.drains
	w.OnOverflow = func() {
		c.srv.metrics.QueueDrops.Inc()
		go c.closeWith(stanza.StreamPolicyViolation, "output queue overflow: the component does not read")
	}
	w.OnWrite = func(el *xml.Element) { c.srv.metrics.CountStanzaOut(el.Local) }
	c.mu.Lock()
	c.w = w
	c.mu.Unlock()
	w.Send(xml.New("", "handshake"))
	if old := c.srv.attach(to, c); old != nil {
		old.closeWith(stanza.StreamConflict, "replaced by a new connection for "+to)
	}
	c.srv.log.Info("component: connected", "domain", to, "remote", c.nc.RemoteAddr().String())
	return nil
}

// handshakeOK checks the XEP-0114 credential: lowercase hex
// SHA-1(stream ID + secret), compared in constant time.
func handshakeOK(streamID, secret, got string) bool {
	sum := sha1.Sum([]byte(streamID + secret))
	want := hex.EncodeToString(sum[:])
	got = strings.ToLower(strings.TrimSpace(got))
	return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
}

// Handshake returns the XEP-0114 handshake value for a stream ID and secret
// (for tests and tools that act as a component).
func Handshake(streamID, secret string) string {
	sum := sha1.Sum([]byte(streamID + secret))
	return hex.EncodeToString(sum[:])
}

func (c *conn) readStanzas() error {
	idle := c.srv.cfg.Limits.IdleTimeout.Duration
	_ = c.nc.SetReadDeadline(time.Time{})
	for {
		if idle > 0 {
			_ = c.nc.SetReadDeadline(time.Now().Add(idle))
		}
		el, err := c.dec.Next()
		if err != nil {
			return err
		}
		if err := c.handleStanza(el); err != nil {
			return err
		}
	}
}

// handleStanza checks the addressing rules of XEP-0114 §3 (every stanza has
// 'from' and 'to'; the 'from' is at the component's domain) and routes it.
func (c *conn) handleStanza(el *xml.Element) error {
	if !stanza.IsStanza(el) {
		return &streamErr{stanza.StreamUnsupportedStanzaType, ""}
	}
	c.srv.metrics.CountStanzaIn(el.Local)
	f, t := el.Attr("from"), el.Attr("to")
	if f == "" || t == "" {
		// RFC 6120 §4.9.3.7: a stanza between servers without 'to' or
		// 'from'; XEP-0114 applies the jabber:server rule.
		return &streamErr{stanza.StreamImproperAddressing, "stanzas from a component need 'from' and 'to'"}
	}
	from, err := jid.Parse(f)
	if err != nil || from.Domain() != c.domain {
		return &streamErr{stanza.StreamInvalidFrom, "'from' must be at " + c.domain}
	}
	el = el.WithAttr("from", from.String())
	to, err := jid.Parse(t)
	if err != nil {
		if reply := stanza.ErrorReply(el.WithAttr("to", ""), stanza.JIDMalformed, ""); reply != nil {
			c.Send(reply.WithAttr("from", c.domain))
		}
		return nil
	}
	el = el.WithAttr("to", to.String())
	if el.Local == stanza.KindIQ {
		if err := stanza.ValidateIQ(el); err != nil {
			if reply := stanza.ErrorReply(el, stanza.BadRequest, err.Error()); reply != nil {
				c.Send(reply)
			}
			return nil
		}
	}
	c.srv.router.Route(c.ctx, el)
	return nil
}

// Send queues a stanza for the component.
func (c *conn) Send(el *xml.Element) {
	c.mu.Lock()
	w := c.w
	c.mu.Unlock()
	if w != nil {
		w.Send(el)
	}
}

// Deliver implements router.Component: stanzas addressed to the component's
// domain are written to its stream unchanged.
func (c *conn) Deliver(_ context.Context, el *xml.Element, _, _ jid.JID) {
	c.Send(el)
}
