// Package carbons implements XEP-0280 Message Carbons (urn:xmpp:carbons:2):
// a client that enables carbons gets a copy of every instant message its
// account receives on another resource (<received/>) and of every one its
// account's other resources send (<sent/>), so that all of a user's
// devices see both sides of every conversation.
//
// The state is per session (Session.Value), so it ends with the session, as
// the XEP intends: a client enables carbons after each login.
package carbons

import (
	"context"

	"parley/internal/module"
	"parley/internal/xmpp/stanza"
)

// NS is the XEP-0280 namespace, also its disco#info feature (§3).
const NS = "urn:xmpp:carbons:2"

// Priorities of the module's stanza handlers.
const (
	// priorityGuard places the carbon-spoofing checks before every module
	// that could keep or act on a message (offline storage, archives):
	// nothing downstream ever sees a forged carbon wrapper. Filters that
	// drop whole stanzas (blocking) run higher still.
	priorityGuard = 900
	// priorityCopy places the copying just above offline storage and the
	// core's delivery rules, after every module that might still take or
	// refuse the message, so that copies are made only of messages that
	// go on to be delivered (or stored) under RFC 6121. Offline storage
	// takes messages no resource can receive, and the XEP still wants the
	// copies then (a carbons-enabled resource with negative priority
	// receives no bare-JID message but gets the copy).
	priorityCopy = module.PriorityDeliver + 200
)

// Carbons is the module of one host.
type Carbons struct {
	h    *module.Host
	offs []func()
}

var _ module.Module = (*Carbons)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) {
	h.Moves(enabledKey{})
	return &Carbons{h: h}, nil
}

// Name implements module.Module.
func (*Carbons) Name() string { return "carbons" }

// Start registers the enable/disable handlers and the message hooks. The
// handler is registered for requests without 'to' (the XEP's form) and for
// requests to the server's domain, which some clients send; the latter
// registration is also what announces urn:xmpp:carbons:2 in the host's
// disco#info (§3).
func (c *Carbons) Start(context.Context) error {
	c.h.RegisterIQ(stanza.TypeSet, module.TargetSelf, NS, c.set)
	c.h.RegisterIQ(stanza.TypeSet, module.TargetHost, NS, c.set)
	c.offs = append(c.offs,
		c.h.Stanzas.On("out/message", priorityGuard, c.refuseWrapped),
		c.h.Stanzas.On("out/message", priorityCopy, c.outbound),
		c.h.Stanzas.On("message/bare", priorityGuard, c.stripForged),
		c.h.Stanzas.On("message/full", priorityGuard, c.stripForged),
		c.h.Stanzas.On("message/bare", priorityCopy, c.inbound),
		c.h.Stanzas.On("message/full", priorityCopy, c.inbound),
	)
	return nil
}

// Stop removes the hooks. IQ handlers and the feature live as long as the
// host; the module API has no way to unregister them, and Stop only runs at
// shutdown.
func (c *Carbons) Stop(context.Context) error {
	for i := len(c.offs) - 1; i >= 0; i-- {
		c.offs[i]()
	}
	c.offs = nil
	return nil
}
