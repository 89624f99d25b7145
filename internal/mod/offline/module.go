// Package offline stores messages for accounts that have no available
// resource and delivers them when the account comes back, following
// XEP-0160 Best Practices for Handling Offline Messages, with the XEP-0203
// Delayed Delivery stamp that tells the client when the server took the
// message.
package offline

import (
	"context"

	"parley/internal/module"
)

// Feature is the disco#info feature of XEP-0160 §4.
const Feature = "msgoffline"

// priority places the message/bare handler after every module that may
// still take a message (carbons, archives, filters run at higher
// priorities) and just before the core's delivery rules: offline storage is
// the last resort before the core bounces the message.
const priority = module.PriorityDeliver + 100

// Offline is the module of one host.
type Offline struct {
	h    *module.Host
	offs []func()
}

var _ module.Module = (*Offline)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) { return &Offline{h: h}, nil }

// Name implements module.Module.
func (*Offline) Name() string { return "offline" }

// Start announces msgoffline and installs the store and delivery hooks.
func (o *Offline) Start(context.Context) error {
	o.h.AddFeature(Feature)
	o.offs = append(o.offs,
		o.h.Stanzas.On("message/bare", priority, o.onMessage),
		o.h.Sessions.On(module.EventSessionAvailable, 0, o.onAvailable),
		o.h.Sessions.On(module.EventSessionResumed, 0, o.onMovedHere),
	)
	return nil
}

// Stop removes the hooks (the feature stays announced; the host registry
// has no removal, and Stop only runs at shutdown).
func (o *Offline) Stop(context.Context) error {
	for i := len(o.offs) - 1; i >= 0; i-- {
		o.offs[i]()
	}
	o.offs = nil
	return nil
}
