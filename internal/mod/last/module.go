// Package last implements XEP-0012 Last Activity for the server (its
// uptime) and for accounts' bare JIDs (how long ago the account's last
// session ended, and the status it left with). Queries to full JIDs are
// client idle-time queries, which the core routes to the client when the
// requester may see the account's presence; anyone else gets forbidden
// from the server (§4).
package last

import (
	"context"

	"parley/internal/module"
	"parley/internal/xmpp/stanza"
)

// NS is the XEP-0012 namespace.
const NS = "jabber:iq:last"

// kvBucket holds one record per account (owner: bare JID, key: kvKey).
const (
	kvBucket = "last"
	kvKey    = "logout"
)

// observePriority is far above what other modules use for out/presence, so
// the status of an outgoing unavailable presence is seen before a presence
// module consumes the stanza; the handler only reads and never stops the
// chain.
const observePriority = 1 << 20

// guardPriority runs the full-JID check after the blocking and federation
// filters (1000 and more), which answer a blocked or refused sender their
// own way, and before the core's delivery.
const guardPriority = 100

// Last is the module of one host.
type Last struct {
	h    *module.Host
	offs []func()
}

var _ module.Module = (*Last)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) {
	h.Moves(statusKey{})
	return &Last{h: h}, nil
}

// Name implements module.Module.
func (*Last) Name() string { return "last" }

// Start registers the IQ handlers (which announce jabber:iq:last on the
// host and on accounts), the check of requests to full JIDs and the hooks
// that record logouts.
func (l *Last) Start(context.Context) error {
	l.h.RegisterIQ(stanza.TypeGet, module.TargetHost, NS, l.uptime)
	l.h.RegisterIQ(stanza.TypeGet, module.TargetBare, NS, l.account)
	l.offs = append(l.offs,
		l.h.Stanzas.On("iq/full", guardPriority, l.guardFull),
		l.h.Stanzas.On("out/presence", observePriority, l.onOutPresence),
		l.h.Sessions.On(module.EventSessionUnbound, 0, l.onUnbound),
	)
	return nil
}

// Stop removes the hooks. IQ handlers live as long as the host; the module
// API has no way to unregister them.
func (l *Last) Stop(context.Context) error {
	for i := len(l.offs) - 1; i >= 0; i-- {
		l.offs[i]()
	}
	l.offs = nil
	return nil
}
