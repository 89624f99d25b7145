// Package roster implements roster management (RFC 6121 §2) with roster
// versioning (XEP-0237, RFC 6121 §2.6) and announces subscription
// pre-approval (RFC 6121 §3.4).
//
// The package also owns the server-side subscription state of every contact
// (the roster item plus pending inbound requests kept outside the roster):
// Store is the single place that reads and writes it, serialises changes per
// owner and sends the roster pushes that every change requires. The presence
// module drives the RFC 6121 subscription state machine through the same
// Store (see StoreOf), so a roster set and a concurrent subscription change
// can never overwrite each other.
package roster

import (
	"context"

	"parley/internal/module"
	"parley/internal/xmpp/xml"
)

// Namespaces.
const (
	// NS is the roster namespace (RFC 6121 §2.1).
	NS = "jabber:iq:roster"
	// NSVersioning is the roster versioning stream feature (RFC 6121 §2.6.1).
	NSVersioning = "urn:xmpp:features:rosterver"
	// NSPreApproval is the subscription pre-approval stream feature
	// (RFC 6121 §3.4.1).
	NSPreApproval = "urn:xmpp:features:pre-approval"
)

// Limits on what a client may store in one roster item. RFC 6121 §2.3.3 asks
// for server-configured limits; these constants are generous for any real
// client and keep one account from filling the database.
const (
	// MaxNameBytes bounds the 'name' attribute of an item.
	MaxNameBytes = 1024
	// MaxGroupBytes bounds one <group/> name.
	MaxGroupBytes = 1024
	// MaxGroups bounds the number of groups of one item.
	MaxGroups = 64
	// MaxItems bounds the number of items in one roster; adding more fails
	// with <resource-constraint/>.
	MaxItems = 2000
)

// Roster is the roster module of one host.
type Roster struct {
	h     *module.Host
	store *Store
	offs  []func()
}

var _ module.Module = (*Roster)(nil)

// New builds the roster module for h.
func New(h *module.Host) (module.Module, error) {
	r := &Roster{h: h, store: newStore(h)}
	module.Provide(h, StoreService, r.store)
	return r, nil
}

// Name implements module.Module.
func (r *Roster) Name() string { return "roster" }

// Start registers the roster IQ handlers and the stream features.
func (r *Roster) Start(ctx context.Context) error {
	r.h.RegisterIQ("get", module.TargetSelf, NS, r.handleGet)
	r.h.RegisterIQ("set", module.TargetSelf, NS, r.handleSet)
	r.h.AddStreamFeature(func(module.Session) *xml.Element { return xml.New(NSVersioning, "ver") })
	r.h.AddStreamFeature(func(module.Session) *xml.Element { return xml.New(NSPreApproval, "sub") })
	return nil
}

// Stop removes the hooks. IQ handlers and stream features stay registered:
// module.Host has no way to unregister them, and the host is discarded
// after Stop anyway.
func (r *Roster) Stop(ctx context.Context) error {
	for _, off := range r.offs {
		off()
	}
	r.offs = nil
	return nil
}

// StoreService publishes the host's roster Store to other modules (the
// presence module drives subscription state through it).
var StoreService = module.NewServiceKey[*Store]("roster.store")

// StoreOf returns the Store of the roster module running on h, or nil if h
// runs no roster module.
func StoreOf(h *module.Host) *Store {
	s, _ := module.Lookup(h, StoreService)
	return s
}
