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
	"time"

	"github.com/coder/websocket"

	"parley/internal/c2s"
	"parley/internal/httpfront"
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
	// The front door resolved the client's address and whether it came
	// encrypted (directly or through a trusted proxy).
	t := newTransport(ws, httpfront.ClientAddr(r), r.TLS, httpfront.Secure(r), lim, h.cfg)
	defer t.stopPings()
	if !h.srv.ServeTransport(t) {
		_ = ws.Close(websocket.StatusGoingAway, "the server is shutting down")
	}
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
