// Package disco implements XEP-0030 Service Discovery for a host and for its
// accounts' bare JIDs. It keeps no list of features of its own: everything
// it announces comes from the host's registries, which other modules fill by
// registering IQ handlers (module.Host.RegisterIQ) or announcing features,
// identities and items explicitly.
package disco

import (
	"context"

	"parley/internal/module"
	"parley/internal/xmpp/stanza"
)

// XEP-0030 namespaces.
const (
	NSInfo  = "http://jabber.org/protocol/disco#info"
	NSItems = "http://jabber.org/protocol/disco#items"
)

// ServerName is the name of the host's server/im identity.
const ServerName = "Parley"

// Disco is the module of one host.
type Disco struct {
	h *module.Host
}

var _ module.Module = (*Disco)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) { return &Disco{h: h}, nil }

// Name implements module.Module.
func (*Disco) Name() string { return "disco" }

// Start registers the handlers. Registering them is also what puts
// disco#info and disco#items into the host's and the accounts' feature
// lists (XEP-0030 §3.1: every entity supports at least disco#info).
// disco#items is answered for bare JIDs that name no account too (§8: an
// empty result, as for an account the requester may not see); disco#info
// to them is left to the core's service-unavailable, which is §8's answer.
func (d *Disco) Start(context.Context) error {
	d.h.RegisterIQ(stanza.TypeGet, module.TargetHost, NSInfo, d.hostInfo)
	d.h.RegisterIQ(stanza.TypeGet, module.TargetHost, NSItems, d.hostItems)
	d.h.RegisterIQ(stanza.TypeGet, module.TargetBare, NSInfo, d.accountInfo)
	d.h.RegisterIQ(stanza.TypeGet, module.TargetBare, NSItems, d.accountItems)
	d.h.RegisterIQ(stanza.TypeGet, module.TargetUnknown, NSItems, d.unknownItems)
	return nil
}

// Stop implements module.Module. IQ handlers live as long as the host; the
// module API has no way to unregister them.
func (*Disco) Stop(context.Context) error { return nil }
