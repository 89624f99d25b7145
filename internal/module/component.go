package module

import (
	"context"

	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/xml"
)

// Component is an entity served at its own domain (XEP-0114 external
// components, and internal services such as MUC, the XEP-0065 proxy or the
// client proxy): the router hands it every stanza addressed to that domain or
// to a JID under it, with "from" and "to" already parsed. Deliver must not
// block for long: it runs on the sender's goroutine.
type Component interface {
	Deliver(ctx context.Context, el *xml.Element, from, to jid.JID)
}

// AddComponent routes domain to c through the host's router, replacing (and
// returning) an earlier component of that domain. Services call it from
// Start and call RemoveComponent from Stop.
func (h *Host) AddComponent(domain string, c Component) Component {
	return h.Router.AddComponent(domain, c)
}

// RemoveComponent unroutes domain if it is still served by c.
func (h *Host) RemoveComponent(domain string, c Component) {
	h.Router.RemoveComponent(domain, c)
}
