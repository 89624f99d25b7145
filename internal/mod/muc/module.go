// Package muc implements XEP-0045 Multi-User Chat as a service on its own
// domain (conference.<host> by default), with XEP-0410 self-ping answered by
// the service, XEP-0203 delay stamps on discussion history and XEP-0004 data
// forms for room configuration.
//
// The service is a router.Component: every stanza addressed to its domain
// or to a room under it is handed to Service.Deliver in the sender's
// goroutine. Each room has one mutex that is held while the room changes
// state and while it routes the stanzas that change produces, so occupants
// see presence, history and live messages in the order the room decided
// them. The router never calls back into the service from Route (the
// service refuses to address stanzas to its own domain), so holding the
// room lock across Route cannot deadlock.
//
// Lock order: room.mu, then Service.mu. Service.mu guards only the room
// map and is never held while a room lock is taken.
package muc

import (
	"context"
	"errors"
	"fmt"

	"parley/internal/module"
	"parley/internal/router"
)

// Namespaces used by the service.
const (
	NS           = "http://jabber.org/protocol/muc"
	NSUser       = NS + "#user"
	NSAdmin      = NS + "#admin"
	NSOwner      = NS + "#owner"
	NSUnique     = NS + "#unique"
	NSRoomConfig = NS + "#roomconfig"
	NSRoomInfo   = NS + "#roominfo"
	NSSelfPing   = NS + "#self-ping-optimization"
	// NSStableID: the room reflects every message with the id its sender
	// gave it (XEP-0045 §7.4), subject changes included.
	NSStableID   = NS + "#stable_id"
	NSData       = "jabber:x:data"
	NSDiscoInfo  = "http://jabber.org/protocol/disco#info"
	NSDiscoItems = "http://jabber.org/protocol/disco#items"
	NSPing       = "urn:xmpp:ping"
	NSConference = "jabber:x:conference" // XEP-0249 direct invitations
)

// components is the part of the core router the module needs to serve its
// own domain. *router.Router implements it; module.Router does not, so the
// module asserts it at start and fails clearly when it is missing.
type components interface {
	AddComponent(domain string, c router.Component) router.Component
	RemoveComponent(domain string, c router.Component)
}

// Module runs the MUC service of one host.
type Module struct {
	h   *module.Host
	svc *Service
	// unwatch stops following the directory's rooms (directory.go).
	unwatch func()
}

var _ module.Module = (*Module)(nil)

// New builds the module for h. A host with [host.muc] enabled = false gets
// a module that does nothing.
func New(h *module.Host) (module.Module, error) {
	m := &Module{h: h}
	module.Provide(h, Key, m)
	return m, nil
}

// Name implements module.Module.
func (*Module) Name() string { return "muc" }

// Start loads the persistent rooms, routes the service domain to the
// service and announces it in the host's disco#items.
func (m *Module) Start(ctx context.Context) error {
	if m.h.HostCfg == nil || !m.h.HostCfg.MUC.On() {
		return nil
	}
	comps, ok := m.h.Router.(components)
	if !ok {
		return errors.New("muc: the router cannot serve component domains")
	}
	svc := newService(m.h, m.h.HostCfg.MUC)
	if a, ok := module.Lookup(m.h, ArchiveKey); ok {
		svc.archive = a
	}
	if rec, ok := module.Lookup(m.h, RecorderKey); ok {
		svc.recorder = rec
	}
	if err := svc.loadOccupantKey(ctx); err != nil {
		return fmt.Errorf("muc: occupant-id key: %w", err)
	}
	if err := svc.load(ctx); err != nil {
		return fmt.Errorf("muc: loading rooms: %w", err)
	}
	if err := svc.loadVCards(ctx); err != nil {
		return fmt.Errorf("muc: loading room vCards: %w", err)
	}
	if old := comps.AddComponent(svc.domain, svc); old != nil {
		comps.AddComponent(svc.domain, old)
		return fmt.Errorf("muc: domain %s is already served by another component", svc.domain)
	}
	m.svc = svc
	m.unwatch = svc.directoryRooms(ctx)
	m.h.AddItem(module.DiscoItem{JID: svc.domain, Name: svc.cfg.Name})
	return nil
}

// Stop unroutes the service domain. Persistent rooms are already stored;
// temporary rooms end with the process.
func (m *Module) Stop(ctx context.Context) error {
	if m.svc == nil {
		return nil
	}
	if m.unwatch != nil {
		m.unwatch()
		m.unwatch = nil
	}
	if comps, ok := m.h.Router.(components); ok {
		comps.RemoveComponent(m.svc.domain, m.svc)
	}
	m.svc = nil
	return nil
}

// ServerClosing implements module.ClosingNotifier: every occupant is told
// that the service goes away (XEP-0045 §9.10 "Service removes user
// because of service shut down", status 332), so that clients, remote
// ones above all, whose streams stay up, do not believe themselves in a
// room that no longer serves them, and rejoin when it is back. In a
// cluster the rooms move to the other nodes instead (internal/cluster
// tells the occupants of rooms whose node died).
func (m *Module) ServerClosing(ctx context.Context) {
	if m.svc == nil || m.h.Config.Cluster.Enabled {
		return
	}
	m.svc.closing(ctx)
}

// Service returns the running service (tests), or nil.
func (m *Module) Service() *Service { return m.svc }
