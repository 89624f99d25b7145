// Package ping answers XEP-0199 XMPP Ping requests addressed to the server
// itself, or by a client to its own bare JID or with no 'to' (which §4.2
// says is the same as pinging the server). Clients use them to test that
// their stream is still alive; pings to a user's full JID are routed to
// that client by the core like any other IQ.
package ping

import (
	"context"

	"parley/internal/module"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// NS is the XEP-0199 namespace.
const NS = "urn:xmpp:ping"

// Ping is the module of one host.
type Ping struct {
	h *module.Host
}

var _ module.Module = (*Ping)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) { return &Ping{h: h}, nil }

// Name implements module.Module.
func (*Ping) Name() string { return "ping" }

// Start registers the IQ handlers: the host's, which also announces
// urn:xmpp:ping in the host's disco#info (XEP-0199 §7), and the one for a
// client's ping without 'to' or to its own bare JID (§4.2: "handled by the
// server on behalf of the connected user's bare JID, which in the case of
// IQ stanzas is equivalent to directing the IQ-get to the server itself").
// The latter is TargetSelf, so pings to other accounts' bare JIDs still
// get the core's service-unavailable and accounts announce nothing.
func (p *Ping) Start(context.Context) error {
	p.h.RegisterIQ(stanza.TypeGet, module.TargetHost, NS, p.handle)
	p.h.RegisterIQ(stanza.TypeGet, module.TargetSelf, NS, p.handle)
	return nil
}

// Stop implements module.Module. IQ handlers live as long as the host; the
// module API has no way to unregister them.
func (*Ping) Stop(context.Context) error { return nil }

// handle answers a ping with an empty result (XEP-0199 §4.2 "Client-to-Server
// Ping"), from the address the ping was sent to (none when it had no 'to').
func (*Ping) handle(ev *module.StanzaEvent, _ *xml.Element) *xml.Element {
	return stanza.IQResult(ev.Stanza, nil)
}
