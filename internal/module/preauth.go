package module

import (
	"context"
	"net"

	"parley/internal/xmpp/xml"
)

// PreAuthConn describes a client connection that has not authenticated yet,
// for the few protocols that run before authentication (XEP-0077 in-band
// registration; XEP-0078 legacy authentication).
type PreAuthConn struct {
	Ctx        context.Context
	Host       *Host
	RemoteAddr net.Addr
	// Encrypted is true once TLS is established on the stream.
	Encrypted bool
	StreamID  string
}

// PreAuthIQHandler answers an IQ sent before authentication. It returns the
// reply to write on the stream (never routed: the client has no address yet).
type PreAuthIQHandler func(c *PreAuthConn, iq, payload *xml.Element) *xml.Element

// RegisterPreAuthIQ registers the handler for IQs whose payload namespace is
// ns on unauthenticated streams of this host. Without a handler, such IQs
// end the stream with <not-authorized/> (RFC 6120 §6.4.8... stanzas before
// authentication are not allowed).
func (h *Host) RegisterPreAuthIQ(ns string, fn PreAuthIQHandler) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.preAuthIQ == nil {
		h.preAuthIQ = make(map[string]PreAuthIQHandler)
	}
	h.preAuthIQ[ns] = fn
}

// PreAuthIQ returns the pre-authentication handler for ns, or nil.
func (h *Host) PreAuthIQ(ns string) PreAuthIQHandler {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.preAuthIQ[ns]
}

// AddPreAuthStreamFeature registers a stream feature offered next to the SASL
// mechanisms (e.g. <register xmlns='http://jabber.org/features/iq-register'/>);
// fn may return nil to offer nothing on this connection.
func (h *Host) AddPreAuthStreamFeature(fn func(c *PreAuthConn) *xml.Element) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.preAuthFeatures = append(h.preAuthFeatures, fn)
}

// PreAuthStreamFeatures returns the pre-authentication features for c.
func (h *Host) PreAuthStreamFeatures(c *PreAuthConn) []*xml.Element {
	h.mu.RLock()
	fns := append([]func(*PreAuthConn) *xml.Element(nil), h.preAuthFeatures...)
	h.mu.RUnlock()
	var out []*xml.Element
	for _, fn := range fns {
		if el := fn(c); el != nil {
			out = append(out, el)
		}
	}
	return out
}
