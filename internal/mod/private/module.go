// Package private implements XEP-0049 Private XML Storage: an account keeps
// arbitrary XML fragments on the server, one per element name and
// namespace, readable and writable only by the account itself (bookmarks,
// XEP-0048, are the best-known user).
package private

import (
	"context"

	"parley/internal/module"
	"parley/internal/xmpp/stanza"
)

// NS is the jabber:iq:private namespace.
const NS = "jabber:iq:private"

// maxNamespaces bounds how many distinct fragments one account may store,
// so that an account cannot fill the disk with many small ones (each one is
// bounded by limits.max_private_bytes). Real clients use a handful.
const maxNamespaces = 64

// kvBucket is the KV bucket that indexes an account's stored keys: the
// Private store has no way to list or count them.
const kvBucket = "private"

// Private is the module of one host.
type Private struct {
	h *module.Host
}

var _ module.Module = (*Private)(nil)

// New builds the module for h.
func New(h *module.Host) (module.Module, error) { return &Private{h: h}, nil }

// Name implements module.Module.
func (*Private) Name() string { return "private" }

// Start registers the handlers for every bare JID, not only the sender's
// own, so that a request aimed at another account gets the forbidden that
// XEP-0049 prefers over the core's service-unavailable. A side effect is
// that jabber:iq:private is listed in accounts' disco#info, which is true:
// the server stores private XML for the account.
func (p *Private) Start(context.Context) error {
	p.h.RegisterIQ(stanza.TypeGet, module.TargetBare, NS, p.get)
	p.h.RegisterIQ(stanza.TypeSet, module.TargetBare, NS, p.set)
	return nil
}

// Stop implements module.Module. IQ handlers live as long as the host; the
// module API has no way to unregister them.
func (*Private) Stop(context.Context) error { return nil }
