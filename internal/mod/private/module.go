// Package private implements XEP-0049 Private XML Storage: an account keeps
// arbitrary XML fragments on the server, one per element name and
// namespace, readable and writable only by the account itself (bookmarks,
// XEP-0048, are the best-known user).
package private

import (
	"context"
	"sync"

	"parley/internal/module"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
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

// Service is the key under which the module publishes itself, for modules
// that keep another view of some private XML in step with it (bookmarks:
// XEP-0402 §compat between XEP-0049 and PEP).
var Service = module.NewServiceKey[*Private]("private")

// Of returns the private module of h, or nil when it does not run.
func Of(h *module.Host) *Private {
	p, _ := module.Lookup(h, Service)
	return p
}

// Private is the module of one host.
type Private struct {
	h *module.Host

	mu       sync.Mutex
	watchers map[string][]Watcher // storage key → watchers
}

// Watcher hears of an element a client stored (after it was stored).
type Watcher func(ctx context.Context, owner jid.JID, el *xml.Element)

var _ module.Module = (*Private)(nil)

// New builds the module for h and publishes it (Of).
func New(h *module.Host) (module.Module, error) {
	p := &Private{h: h, watchers: make(map[string][]Watcher)}
	module.Provide(h, Service, p)
	return p, nil
}

// Watch registers fn for elements named {space}local that clients store.
// Call it from New or Start.
func (p *Private) Watch(space, local string, fn Watcher) {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := local + " " + space
	p.watchers[k] = append(p.watchers[k], fn)
}

func (p *Private) watchersOf(el *xml.Element) []Watcher {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.watchers[key(el)]
}

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
