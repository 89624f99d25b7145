// Package vcard implements XEP-0054 vcard-temp: each account stores one
// vCard, which it alone may change and anybody may read by sending an IQ to
// the account's bare JID (the server answers on the account's behalf).
package vcard

import (
	"context"
	"sync"

	"parley/internal/module"
	"parley/internal/xmpp/stanza"
)

// NS is the vcard-temp namespace.
const NS = "vcard-temp"

// VCard is the module of one host.
type VCard struct {
	h *module.Host

	mu       sync.Mutex
	watchers []Watcher
}

var _ module.Module = (*VCard)(nil)

// New builds the module for h and publishes it (Of).
func New(h *module.Host) (module.Module, error) {
	v := &VCard{h: h}
	module.Provide(h, Service, v)
	return v, nil
}

// Name implements module.Module.
func (*VCard) Name() string { return "vcard" }

// Start registers the handlers. Registering on the account target announces
// vcard-temp in accounts' disco#info; the host handler announces it on the
// domain (XEP-0054 §4 "Determining Support"). The set handler is registered
// for every bare JID, not only the sender's own, so that a set aimed at
// somebody else is answered with forbidden as §3.2 asks rather than with the
// core's generic service-unavailable.
func (v *VCard) Start(context.Context) error {
	v.h.RegisterIQ(stanza.TypeGet, module.TargetBare, NS, v.get)
	v.h.RegisterIQ(stanza.TypeSet, module.TargetBare, NS, v.set)
	v.h.RegisterIQ(stanza.TypeGet, module.TargetHost, NS, v.getHost)
	return nil
}

// Stop implements module.Module. IQ handlers live as long as the host; the
// module API has no way to unregister them.
func (*VCard) Stop(context.Context) error { return nil }
