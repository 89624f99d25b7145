// Package websocket carries XMPP client streams over WebSocket (RFC 7395).
// It only frames: every WebSocket text message is one XML document (an
// <open/>, a <close/>, a stanza or another top-level element), parsed under
// the same limits and restricted-XML rules as a TCP stream, and handed to
// the c2s package as a c2s.Transport. Negotiation (SASL, bind), sessions,
// stream management and everything after are c2s's, exactly as on TCP;
// STARTTLS does not exist here, TLS being the HTTPS listener's.
package websocket

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/coder/websocket"

	"parley/internal/c2s"
)

// Subprotocol is the WebSocket subprotocol of RFC 7395 §3.1; a handshake
// without it is refused.
const Subprotocol = "xmpp"

// NSFraming is the namespace of <open/> and <close/> (RFC 7395 §3.3).
const NSFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// Config bounds and shapes the WebSocket endpoint.
type Config struct {
	// OriginPatterns lists the web origins (host patterns, e.g.
	// "chat.example.com" or "*.example.com") whose pages may open a stream;
	// empty: only pages served from the same host as the endpoint. A
	// browser sends Origin on every handshake, so this is what keeps
	// another site's scripts from using a visitor's credentials.
	OriginPatterns []string
	// PingInterval: a connection silent this long is pinged; no pong
	// within another interval ends it as lost (0: no pings).
	PingInterval time.Duration
	// RateBytesPerSecond and RateBurstBytes throttle what one connection
	// may make the server parse, as on TCP (limits.rate_*).
	RateBytesPerSecond, RateBurstBytes int
	// WriteTimeout bounds each write (limits.write_timeout).
	WriteTimeout time.Duration
	// Secure reports whether r reached the server encrypted: over its own
	// TLS or through a trusted TLS-terminating proxy (httpfront.Secure);
	// nil: r.TLS != nil.
	Secure func(r *http.Request) bool
	// ClientAddr returns the client's address for r (the HTTPS listener
	// knows whether to trust a proxy's X-Forwarded-For); nil: r.RemoteAddr.
	ClientAddr func(r *http.Request) net.Addr
}

// Handler accepts WebSocket handshakes and serves each as a client stream.
type Handler struct {
	srv *c2s.Server
	cfg Config
	log *slog.Logger
}

// NewHandler returns the handler for the XMPP WebSocket endpoint.
func NewHandler(srv *c2s.Server, cfg Config, log *slog.Logger) *Handler {
	return &Handler{srv: srv, cfg: cfg, log: log}
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:   []string{Subprotocol},
		OriginPatterns: h.cfg.OriginPatterns,
	})
	if err != nil {
		// Accept has answered (403 for a foreign origin, 400/426 for a
		// bad handshake).
		h.log.Debug("websocket: handshake refused", "remote", r.RemoteAddr, "origin", r.Header.Get("Origin"), "err", err)
		return
	}
	if ws.Subprotocol() != Subprotocol {
		_ = ws.Close(websocket.StatusPolicyViolation, "the xmpp subprotocol is required (RFC 7395)")
		return
	}
	lim := h.srv.StreamLimits()
	// The parser refuses a message over max_stanza_bytes with the stream
	// error a TCP client would get (policy-violation); the library stops
	// reading far beyond that, at twice the size, and closes with 1009, so
	// memory per connection stays bounded whatever a client sends.
	ws.SetReadLimit(2*int64(lim.MaxStanzaBytes) + 1024)
	secure := r.TLS != nil
	if h.cfg.Secure != nil {
		secure = h.cfg.Secure(r)
	}
	t := newTransport(ws, h.clientAddr(r), r.TLS, secure, lim, h.cfg)
	defer t.stopPings()
	if !h.srv.ServeTransport(t) {
		_ = ws.Close(websocket.StatusGoingAway, "the server is shutting down")
	}
}

func (h *Handler) clientAddr(r *http.Request) net.Addr {
	if h.cfg.ClientAddr != nil {
		if a := h.cfg.ClientAddr(r); a != nil {
			return a
		}
	}
	return parseAddr(r.RemoteAddr)
}

// parseAddr turns "ip:port" into a *net.TCPAddr (an unparsable one into an
// address nobody else shares, so limits still apply per connection).
func parseAddr(s string) net.Addr {
	host, port, err := net.SplitHostPort(s)
	if err == nil {
		if ip := net.ParseIP(host); ip != nil {
			p, _ := strconv.Atoi(port)
			return &net.TCPAddr{IP: ip, Port: p}
		}
	}
	return &net.TCPAddr{IP: net.IPv6unspecified}
}

// errLost is what Next reports when the WebSocket ended without <close/>:
// the transport was lost, as a TCP reset is.
var errLost = errors.New("websocket: connection lost")

// readErr maps the library's read errors onto what c2s distinguishes:
// timeouts, a lost transport, or the peer's clean close of the WebSocket.
func readErr(err error, timedOut bool) error {
	switch {
	case timedOut:
		return os.ErrDeadlineExceeded
	case websocket.CloseStatus(err) == websocket.StatusNormalClosure, websocket.CloseStatus(err) == websocket.StatusGoingAway:
		return net.ErrClosed
	}
	return errors.Join(errLost, err)
}
