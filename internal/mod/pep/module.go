// Package pep implements XEP-0163 Personal Eventing Protocol: every account
// of the host is a virtual publish-subscribe service at its bare JID (the
// XEP-0060 engine of internal/pubsub, one service per account). Contacts
// with a presence subscription are subscribed automatically and receive
// events for the nodes their clients advertised interest in with a
// "<node>+notify" feature in their XEP-0115 capabilities (learnt by the
// caps module); the account's own resources are notified the same way.
// New resources and new subscribers get each node's last item.
package pep

import (
	"context"
	"errors"
	"sync"

	"parley/internal/mod/caps"
	"parley/internal/module"
	"parley/internal/pubsub"
	"parley/internal/storage"
	"parley/internal/xmpp/jid"
	"parley/internal/xmpp/stanza"
	"parley/internal/xmpp/xml"
)

// Priority is the priority of the module's presence observer: below the
// caps module (60), which must have seen a presence's capabilities first,
// and below the presence module's subscription handling (100).
const Priority = 50

// MaxRecipients bounds the contact resources remembered per account (the
// full JIDs that sent the account available presence); presence from
// further ones is not remembered and they get no events until others go
// away. A roster has at most 2000 items, so this only bites on contacts
// with unusually many resources.
const MaxRecipients = 1000

// Service is the key under which the module publishes its pubsub service,
// for modules that publish on a user's behalf (bookmarks conversion).
var Service = module.NewServiceKey[*PEP]("pep")

// Of returns the PEP module of h, or nil when it does not run.
func Of(h *module.Host) *PEP {
	p, _ := module.Lookup(h, Service)
	return p
}

// PEP is the module of one host.
type PEP struct {
	h    *module.Host
	svc  *pubsub.Service
	caps *caps.Caps
	offs []func()

	// Listeners of events, besides delivery (Subscribe).
	listeners []func(context.Context, *pubsub.Event)
	// guards vet clients' set requests (Guard).
	guards []Guard

	mu sync.Mutex
	// seen holds, per account, the full JIDs of contacts that sent it
	// available presence with their priority (XEP-0163 §4.3.1 point 4:
	// "if the PEP service has presence information about the intended
	// recipient"); seenBy is the reverse index, so a contact's change of
	// capabilities finds the accounts that know it.
	seen   map[jid.JID]map[jid.JID]int
	seenBy map[jid.JID]map[jid.JID]struct{}
}

var _ module.Module = (*PEP)(nil)

// New builds the module for h and publishes it (Of).
func New(h *module.Host) (module.Module, error) {
	p := &PEP{
		h:      h,
		seen:   make(map[jid.JID]map[jid.JID]int),
		seenBy: make(map[jid.JID]map[jid.JID]struct{}),
	}
	l := h.Config.Limits
	p.svc = pubsub.New(pubsub.Options{
		Store: h.Store.PubSub(),
		Limits: pubsub.Limits{
			MaxNodes:         l.MaxPEPNodes,
			MaxItems:         l.MaxPEPItems,
			MaxItemBytes:     l.MaxPEPItemBytes,
			MaxSubscriptions: l.MaxPEPSubscriptions,
		},
		Defaults: pubsub.DefaultConfig(),
		Relation: p.relation,
		Notify:   p.notify,
		// Stored payloads are the server's own data; read them back
		// under generous limits so lowering a limit later does not make
		// them unreadable.
		ParseLimits: xml.Limits{MaxStanzaBytes: 2 * max(l.MaxPEPItemBytes, l.MaxStanzaBytes), MaxDepth: l.MaxDepth + 1, MaxAttrs: l.MaxAttrs},
		Log:         h.Log,
	})
	module.Provide(h, Service, p)
	return p, nil
}

// Name implements module.Module.
func (*PEP) Name() string { return "pep" }

// PubSub returns the engine, for modules acting on a user's behalf.
func (p *PEP) PubSub() *pubsub.Service { return p.svc }

// Subscribe adds a listener that hears every event after it was delivered
// (bookmarks conversion keeps private XML storage in step with it).
// Call it from New or Start.
func (p *PEP) Subscribe(fn func(context.Context, *pubsub.Event)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.listeners = append(p.listeners, fn)
}

// Start registers the pubsub IQ handlers on every account (registering
// them is what announces the pubsub namespaces there), the features the
// engine and this module implement, the pubsub/pep identity (XEP-0163
// §6.1), the account's nodes in disco, and the hooks that drive
// notifications. The caps module must run: without it no client could
// express interest, and no event would be sent.
func (p *PEP) Start(context.Context) error {
	p.caps = caps.Of(p.h)
	if p.caps == nil {
		return errors.New("pep: the caps module must run (it learns which resources want which events)")
	}
	for _, typ := range []string{stanza.TypeGet, stanza.TypeSet} {
		p.h.RegisterIQ(typ, module.TargetBare, pubsub.NS, p.handle)
		p.h.RegisterIQ(typ, module.TargetBare, pubsub.NSOwner, p.handle)
	}
	for _, f := range p.svc.Features() {
		p.h.AddAccountFeature(f)
	}
	// What this module adds to the engine (XEP-0060 §9, XEP-0163 §4).
	for _, f := range []string{"auto-subscribe", "filtered-notifications", "last-published", "presence-notifications", "presence-subscribe"} {
		p.h.AddAccountFeature(pubsub.Feature(f))
	}
	p.h.AddAccountIdentity(module.Identity{Category: "pubsub", Type: "pep"})
	p.h.AddAccountNodes(accountNodes{p})
	p.offs = append(p.offs,
		p.h.Stanzas.On("presence/bare", Priority, p.presence),
		p.h.Stanzas.On("message/bare", Priority, p.bounce),
		p.h.Sessions.On(module.EventSessionAvailable, Priority, p.sessionAvailable),
		p.h.Subscriptions.On(module.EventSubscriptionChanged, Priority, p.subscriptionChanged),
		p.h.Accounts.On(module.EventAccountDeleted, Priority, p.accountDeleted),
		p.caps.Changes.On(caps.EventChanged, Priority, p.capsChanged),
	)
	return nil
}

// Stop removes the hooks. IQ handlers and features stay registered: the
// module API cannot unregister them, and the host is discarded after Stop.
func (p *PEP) Stop(context.Context) error {
	for _, off := range p.offs {
		off()
	}
	p.offs = nil
	return nil
}

// Guard vets a client's pubsub set request on a node of owner's service
// before the engine sees it: op is the request's element (publish,
// retract, create, configure, delete, purge, subscribe, ...) and node the
// node it names. A non-nil error refuses the request with that error.
// Guards see only requests from the network: modules calling the engine
// directly (PubSub) act on the user's behalf and are not vetted.
type Guard func(ctx context.Context, owner, from jid.JID, op, node string) *pubsub.Error

// AddGuard registers g. Call it from New or Start.
func (p *PEP) AddGuard(g Guard) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.guards = append(p.guards, g)
}

// guard runs the guards on a set request; nil lets it through.
func (p *PEP) guard(ctx context.Context, owner, from jid.JID, payload *xml.Element) *pubsub.Error {
	p.mu.Lock()
	gs := p.guards
	p.mu.Unlock()
	if len(gs) == 0 {
		return nil
	}
	for _, el := range payload.Elements() {
		node := el.Attr("node")
		if node == "" {
			continue
		}
		for _, g := range gs {
			if err := g(ctx, owner, from, el.Local, node); err != nil {
				return err
			}
		}
	}
	return nil
}

// handle answers a pubsub or pubsub#owner IQ addressed to an account's bare
// JID (or sent without 'to' by the account itself).
func (p *PEP) handle(ev *module.StanzaEvent, payload *xml.Element) *xml.Element {
	owner := ev.To.Bare()
	if ev.Stanza.Attr("type") == stanza.TypeSet {
		if err := p.guard(ev.Ctx, owner, ev.From, payload); err != nil {
			return pubsub.ErrorReply(ev.Stanza, err)
		}
	}
	res, err := p.svc.HandleIQ(ev.Ctx, owner.String(), ev.From, ev.Stanza.Attr("type"), payload)
	if err != nil {
		var pe *pubsub.Error
		if !errors.As(err, &pe) {
			p.h.Log.Error("pep: request failed", "owner", owner.String(), "from", ev.From.String(), "err", err)
		}
		return pubsub.ErrorReply(ev.Stanza, err)
	}
	return stanza.IQResult(ev.Stanza, res)
}

// relation tells the engine what the account's roster says of a requester:
// the account itself owns its service; a contact's presence subscription
// and roster groups drive the presence and roster access models.
func (p *PEP) relation(ctx context.Context, service string, who jid.JID) (pubsub.Relation, error) {
	if who.Bare().String() == service {
		return pubsub.Relation{Owner: true}, nil
	}
	it, err := p.h.Store.Roster().Get(ctx, service, who.Bare().String())
	if errors.Is(err, storage.ErrNotFound) {
		return pubsub.Relation{}, nil
	}
	if err != nil {
		return pubsub.Relation{}, err
	}
	return relationOf(it), nil
}

func relationOf(it storage.RosterItem) pubsub.Relation {
	return pubsub.Relation{
		Subscriber: it.Subscription == storage.SubFrom || it.Subscription == storage.SubBoth,
		Groups:     it.Groups,
	}
}
